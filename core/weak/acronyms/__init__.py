"""Acronym weak labeler: Schwartz-Hearst style definitions plus standalone short forms.

Labels SHORT (the acronym) and LONG (its expansion). Definitions (core.weak.acronyms.
definitions) come from "long form (SF)", "SF (long form)", glossary lines and cue phrases;
their long forms are aligned letter by letter (long_forms). Standalone short forms are words
shaped like acronyms (short_forms). A short form without a definition gets a long form
elsewhere in the text when the initials of a run of words spell it exactly ("the Question
Answering task ... a QA system").

Everything works on words (core.text.Word), so spans align with the tokenizer that the
model and the export use. Pure Python, deterministic, no downloads; ~8,000 sentences/s.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.text import Span, Word, tokenize
from core.weak.acronyms.definitions import find_definitions, find_pairs
from core.weak.acronyms.long_forms import distant_long_form
from core.weak.acronyms.short_forms import (
    LONG,
    SHORT,
    UNITS,
    heading_words,
    label_short_forms,
    looks_like_short_form,
    short_form_groups,
)

LABELS = (SHORT, LONG)

__all__ = [
    "LABELS",
    "LONG",
    "SHORT",
    "UNITS",
    "find_definitions",
    "label_acronyms",
    "label_short_forms",
    "looks_like_short_form",
]


def _occurrences(toks: Sequence[str], phrase: Sequence[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(toks) - n + 1) if list(toks[i : i + n]) == list(phrase)]


def label_acronyms(
    text: str,
    words: Sequence[Word] | None = None,
    *,
    definitions: bool = True,
    standalone: bool = True,
    units: bool = True,
    distant: bool = True,
) -> list[Span]:
    """SHORT and LONG spans: definitions first, then other mentions of the defined short
    and long forms, then standalone acronym-shaped words. Sorted, non-overlapping,
    aligned to `words` (default: core.text.tokenize)."""
    words = tokenize(text) if words is None else list(words)
    spans: list[Span] = []
    used = [False] * len(words)

    def add(a: int, b: int, label: str) -> None:
        if b > a and not any(used[a:b]):
            spans.append(Span(words[a].start, words[b - 1].end, label))
            used[a:b] = [True] * (b - a)

    if definitions:
        toks = [w.text for w in words]
        pairs = [(a, b) for a, b in find_pairs(toks)]
        for (sa, sb), (la, lb) in pairs:
            if not any(used[sa:sb]) and not any(used[la:lb]):
                add(la, lb, LONG)
                add(sa, sb, SHORT)
        for (sa, sb), _ in pairs:  # later mentions of a defined short form, whatever its shape
            for i in _occurrences(toks, toks[sa:sb]):
                add(i, i + sb - sa, SHORT)
    if standalone:
        skip = heading_words(words) | {i for i, u in enumerate(used) if u}
        if not units:
            skip |= {i for i, w in enumerate(words) if w.text in UNITS}
        groups = short_form_groups(words, skip)
        for a, b in groups:
            add(a, b, SHORT)
        if distant:
            toks = [w.text for w in words]
            for a, b in groups:
                lf = distant_long_form(toks, "".join(toks[a:b]), used)
                if lf is not None:
                    add(lf[0], lf[1], LONG)
    spans.sort()
    return spans
