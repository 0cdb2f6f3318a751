"""Evidence: a weak labeler whose tag of every word a model takes as input, with its state.

A model that takes evidence (core.model.backbone.Tagger) sees, for every word, the BIO tag a
weak labeler gives it, as a learned input embedding. The rule's opinion is then one more
input the model weighs, trained on gold labels, rather than a pattern it must rediscover from
a few hundred sentences. For concepts it also brings what a window of 128 sub-tokens cannot
show the model: how often a phrase recurs in its document and how rare it is in the corpus.

An `Evidence` is the one owner of that setting, from the task that offers it (core.tasks) to
the saved model: which labeler (`name`, written to tagger.json as "evidence") and what it
learned from a corpus (`state`, written to evidence.json: the concept keyphrases' IDFs; the
acronym rules learn nothing). No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from core.errors import FewlabelError, NotFoundError
from core.text import Span, Word, spans_to_bio
from core.weak import acronym_labeler
from core.weak.concepts import KeyphraseExtractor

Labeler = Callable[[str, Sequence[Word]], list[Span]]
Docs = Sequence[tuple[str, Sequence[Word]]]

STATE_FILE = "evidence.json"  # beside tagger.json, for evidence that learned from a corpus


def _keyphrases(state: dict | None) -> Labeler:
    return KeyphraseExtractor.from_state(state) if state else KeyphraseExtractor()


def _fit_keyphrases(docs: Docs) -> dict:
    return KeyphraseExtractor().fit(docs).state()


# Each evidence labeler by its saved name: (labeler from its state, fitting or None). The
# names are those tagger.json has always held, so every saved version keeps loading.
_LABELERS: dict[str, tuple[Callable[[dict | None], Labeler], Callable[[Docs], dict] | None]] = {
    "acronym": (lambda state: acronym_labeler(), None),
    "concept": (_keyphrases, _fit_keyphrases),
}


@dataclass(frozen=True)
class Evidence:
    """Which weak labeler a model takes as input (`name`) and what it learned (`state`)."""

    name: str
    state: dict | None = None

    def __post_init__(self) -> None:
        if self.name not in _LABELERS:
            raise FewlabelError(f"unknown evidence {self.name!r}; known: {', '.join(_LABELERS)}")

    @property
    def needs_corpus(self) -> bool:
        """Whether it learns from a corpus: worth reading all of a project's texts for."""
        return _LABELERS[self.name][1] is not None

    def fit(self, docs: Docs) -> Evidence:
        """This evidence with its statistics learned from (text, words) pairs; itself when
        it learns nothing."""
        fitting = _LABELERS[self.name][1]
        return replace(self, state=fitting(docs)) if fitting is not None else self

    def labeler(self) -> Labeler:
        """The labeler behind it, fitted as `state` says (unfitted without one)."""
        return _LABELERS[self.name][0](self.state)

    def tags(self, tags: Sequence[str], docs: Docs) -> list[list[int]]:
        """Per document, the index in `tags` (a model's BIO tags) of the labeler's tag for
        every word; 0 (O) for a tag the model does not have."""
        labeler = self.labeler()
        index = {t: i for i, t in enumerate(tags)}
        return [
            [index.get(t, 0) for t in spans_to_bio(list(words), labeler(text, words))]
            for text, words in docs
        ]

    def save(self, folder: str | Path) -> None:
        """Write the state beside a model (or remove a stale one where there is none)."""
        path = Path(folder) / STATE_FILE
        if self.state is not None:
            path.write_text(json.dumps(self.state))
        else:
            path.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | Path, name: str) -> Evidence:
        """The evidence `name` of the model saved in `folder`, with its state."""
        evidence = cls(name)
        if not evidence.needs_corpus:
            return evidence
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            raise NotFoundError(
                f"{folder} has no {STATE_FILE}: the model cannot compute its {name} evidence "
                "without it; copy the whole model folder"
            )
        return cls(name, json.loads(path.read_text()))

    @staticmethod
    def remove(folder: str | Path) -> None:
        """Remove a saved state from a folder whose model takes no evidence."""
        (Path(folder) / STATE_FILE).unlink(missing_ok=True)
