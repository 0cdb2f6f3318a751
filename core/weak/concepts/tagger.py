"""What the concept labelers share: the label, word normalisation, and spans from word ranges."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.text import Span, Word, tokenize

CONCEPT = "CONCEPT"  # the concept task (core.tasks) takes its label from here
Labeler = Callable[[str, Sequence[Word]], list[Span]]


def norm(token: str) -> str:
    """Lower-case, with a crude plural folded ("networks" = "network", "studies" = "study")."""
    t = token.lower()
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        return t[:-1]
    return t


class WordRangeTagger:
    """A labeler that picks word ranges (`label_words`) and tags each with `span_label`."""

    span_label: str = CONCEPT

    def label_words(self, words: Sequence[Word]) -> list[tuple[int, int]]:
        raise NotImplementedError

    def label(self, text: str, words: Sequence[Word] | None = None) -> list[Span]:
        """Spans (CONCEPT, or the label given) of the word ranges this tagger picks."""
        words = tokenize(text) if words is None else words
        return [
            Span(words[a].start, words[b - 1].end, self.span_label)
            for a, b in self.label_words(words)
        ]

    def __call__(self, text: str, words: Sequence[Word] | None = None) -> list[Span]:
        return self.label(text, words)
