"""Pre-filled spans and the model's influence on what annotators save.

As in Prodigy's `ner.correct`, the model's confident spans open as spans (Enter keeps them);
the unsure ones stay suggestions that the annotator accepts with a click or A. Each saved
span of a text the model pre-annotated records its `origin`:

- "model": a suggestion saved unchanged (pre-filled or accepted),
- "edited": overlaps a suggestion but differs in extent or label,
- "annotator": no suggestion behind it.

Origins are worked out when saving, against the current model's stored suggestions, not
taken from the browser; a span the annotator marks by hand exactly as the model suggested
counts as "model", which is what measuring the model's influence needs. Texts saved without
a model's suggestions carry no origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.store.schema import Annotation, Document, Project

ORIGINS = ("model", "edited", "annotator")
# A suggestion at or above this confidence (the mean probability of its words' tags) opens as
# a span. High, because Enter saves a pre-filled span unexamined and a few-shot model is
# over-confident: a wrong span kept costs more than a right one accepted with one key (A).
PREFILL_THRESHOLD = 0.95
_SETTING = "prefill_threshold"  # its name in Project.settings


def prefill_threshold(project: Project) -> float:
    """The confidence at or above which a suggestion opens as a span (the default if unset)."""
    value = (project.settings or {}).get(_SETTING)
    return float(value) if isinstance(value, int | float) else PREFILL_THRESHOLD


def set_prefill_threshold(session: Session, project: Project, threshold: float) -> float:
    """Store the project's pre-fill threshold, a number from 0 to 1, and return it."""
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the pre-fill threshold must be a number: {threshold!r}") from exc
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValidationError(f"the pre-fill threshold must be from 0 to 1, not {value}")
    project.settings = {**(project.settings or {}), _SETTING: value}
    session.flush()
    return value


def _confidence(span: dict) -> float | None:
    try:
        value = float(span["confidence"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _overlaps(a: dict, b: dict) -> bool:
    return int(a["start"]) < int(b["end"]) and int(b["start"]) < int(a["end"])


def split_suggestions(
    suggestions: Sequence[dict], threshold: float
) -> tuple[list[dict], list[dict]]:
    """(spans to pre-fill, suggestions left as they are) for a text the annotator opens.

    A suggestion is pre-filled when its confidence is at or above the threshold; one without
    a confidence never is. Of overlapping confident ones the most confident wins; the others
    stay suggestions (hidden under it in the editor, as any suggestion under a span is).
    """
    confident = [s for s in suggestions if (_confidence(s) or -1.0) >= threshold]
    confident.sort(key=lambda s: -(_confidence(s) or 0.0))
    chosen: list[dict] = []
    for s in confident:
        if not any(_overlaps(s, t) for t in chosen):
            chosen.append(s)
    spans = sorted(
        ({"start": s["start"], "end": s["end"], "label": s["label"]} for s in chosen),
        key=lambda s: (s["start"], s["end"]),
    )
    rest = [s for s in suggestions if not any(s is t for t in chosen)]
    return spans, rest


def origin_of(span: dict, suggestions: Sequence[dict]) -> str:
    """Where a saved span came from, given the suggestions the text was opened with."""
    key = (int(span["start"]), int(span["end"]), str(span["label"]))
    if any((int(s["start"]), int(s["end"]), str(s["label"])) == key for s in suggestions):
        return "model"
    return "edited" if any(_overlaps(span, s) for s in suggestions) else "annotator"


def mark_origins(spans: Sequence[dict], suggestions: Sequence[dict]) -> list[dict]:
    """The spans, each with its `origin` (see the module docstring)."""
    return [{**s, "origin": origin_of(s, suggestions)} for s in spans]


@dataclass(frozen=True)
class Influence:
    """How the saved spans of pre-annotated texts relate to the model's suggestions."""

    accepted: int  # saved as the model suggested
    edited: int  # a suggestion changed in extent or label
    added: int  # no suggestion behind it
    texts: int  # saved texts with at least one such span

    @property
    def spans(self) -> int:
        return self.accepted + self.edited + self.added

    def describe(self) -> str:
        if not self.spans:
            return "No spans saved on texts the model pre-annotated yet."
        share = 100.0 * self.accepted / self.spans
        return (
            f"Of {self.spans} spans saved on {self.texts} pre-annotated texts, "
            f"{self.accepted} ({share:.1f}%) are the model's unchanged, {self.edited} edited, "
            f"{self.added} added by annotators."
        )


def model_influence(session: Session, project: Project) -> Influence:
    """Count the origins of the spans in the project's saved (done) annotations."""
    counts = dict.fromkeys(ORIGINS, 0)
    texts = 0
    rows = session.scalars(
        select(Annotation.spans)
        .join(Document)
        .where(Document.project_id == project.id, Annotation.status == "done")
    )
    for spans in rows:
        marked = [s.get("origin") for s in spans or [] if s.get("origin") in counts]
        for origin in marked:
            counts[origin] += 1
        texts += bool(marked)
    return Influence(
        accepted=counts["model"], edited=counts["edited"], added=counts["annotator"], texts=texts
    )
