"""A labeled file read as gold: its spans in a task's labels, snapped to whole words.

The one reader of a gold file for scoring, shared by the benchmarks (core.bench.data) and
`fewlabel weak eval` (core.bench.weak_eval). A labeler and the model tag whole words, so a
gold span that cuts one ("Finite State Automato" in SDU@AAAI-22) is grown to the words it
touches, and one that touches none is dropped; every figure in docs/benchmarks.md was
measured so. `fewlabel import` instead keeps such a span and splits the word
(core.text.words_of): a project's labels are never moved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.io.corpus import read_texts
from core.text import Span, Word, snap_span, words_of


@dataclass(frozen=True)
class LabeledDoc:
    """A text, its words and its gold spans; `labeled` is False for a record without labels."""

    text: str
    words: list[Word]
    spans: list[Span]
    labeled: bool = True


@dataclass
class ReadCounts:
    """What reading changed: gold spans moved to word boundaries (`snapped`), covering no
    word (`dropped`), and labels outside the task (`unmapped`, by label)."""

    snapped: int = 0
    dropped: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)


def read_labeled(
    path: str | Path,
    map_label: Callable[[str], str | None],
    fmt: str = "auto",
    counts: ReadCounts | None = None,
) -> Iterator[LabeledDoc]:
    """Every record of a labeled file (any format `import` reads), its labels mapped by
    `map_label` (core.tasks.Task.gold_label; None drops the span) and its spans snapped.

    Lazy, so a caller that stops early reads no further; `counts` accumulates as it goes."""
    counts = counts if counts is not None else ReadCounts()
    for rec in read_texts(path, fmt):
        words = words_of(rec.text, rec.tokens)
        spans: set[Span] = set()
        for sp in rec.spans or []:
            label = map_label(str(sp["label"]))
            if label is None:
                counts.unmapped[str(sp["label"])] += 1
                continue
            start, end = int(sp["start"]), int(sp["end"])
            snapped = snap_span(start, end, words)
            if snapped is None:
                counts.dropped += 1
                continue
            counts.snapped += snapped != (start, end)
            spans.add(Span(snapped[0], snapped[1], label))
        yield LabeledDoc(rec.text, words, sorted(spans), labeled=rec.spans is not None)
