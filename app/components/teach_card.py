"""The teach card: one suggested span in its text, answered with a key. A Streamlit Components
v2 element with inline JS and CSS, apart from the span annotator (which stays as it is).

Python sends the suggestion as data, its text already cut in three (before, the span, after)
so the browser counts no offsets; the browser sends back one trigger value, `event`, when
the user accepts (under the suggested label or another), rejects, ignores or undoes, with
the milliseconds the suggestion was visible. Texts are rendered with textContent only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.components.common import mount
from app.components.span_annotator import label_palette

COMPONENT_NAME = "fewlabel_teach_card"
ACTIONS = ("accept", "reject", "ignore", "undo")
# What the keys do, shown under the text.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("A / Enter", "accept"),
    ("X", "reject"),
    ("Space / S", "ignore"),
    ("1-9", "accept under that label"),
    ("U", "undo the last answer"),
)


@dataclass(frozen=True)
class TeachEvent:
    """What the user answered about the suggestion (document, start, end, label) shown."""

    action: str
    document_id: int
    start: int
    end: int
    label: str
    as_label: str | None = None  # accept under this label instead
    seconds: float | None = None  # how long the suggestion was visible

    @property
    def key(self) -> tuple[int, int, int, str]:
        return (self.document_id, self.start, self.end, self.label)


def parse_event(raw: object) -> TeachEvent | None:
    """Validate the browser's payload; None when it is not an event we understand. The
    server checks the rest (that this is the suggestion it showed)."""
    if not isinstance(raw, dict) or raw.get("action") not in ACTIONS:
        return None
    try:
        doc, start, end = int(raw["doc"]), int(raw["start"]), int(raw["end"])
        label = str(raw["label"])
    except (KeyError, TypeError, ValueError):
        return None
    as_label = raw.get("as")
    as_label = str(as_label) if isinstance(as_label, str) and as_label else None
    try:
        seconds = float(raw["ms"]) / 1000.0
    except (KeyError, TypeError, ValueError):
        seconds = None
    return TeachEvent(raw["action"], doc, start, end, label, as_label, seconds)


def card_data(
    *,
    document_id: int,
    text: str,
    start: int,
    end: int,
    label: str,
    confidence: float | None,
    origin: str,
    labels: Sequence[str],
    label_colors: Mapping[str, int] | None = None,
    version: str = "",
    seq: int = 0,
    focus: str = "",
) -> dict:
    """The JSON the browser side receives: everything it draws, nothing it must trust."""
    return {
        "doc": document_id,
        "start": start,
        "end": end,
        "label": label,
        "before": text[:start],
        "span": text[start:end],
        "after": text[end:],
        "confidence": confidence,
        "origin": origin,
        "labels": label_palette(labels, label_colors),
        "help": [list(item) for item in SHORTCUTS],
        "version": version,
        "seq": seq,
        "focus": focus,
    }


def teach_card(*, key: str, on_event: Callable[[TeachEvent], None], **data) -> None:
    """Mount the card for one suggestion; `data` are card_data's arguments.

    `on_event` runs as a widget callback, before the next script run. A new `version` is a
    new suggestion (its clock starts); `seq` only forces a redraw (after an error).
    """
    mount(
        COMPONENT_NAME,
        "teach_card",
        key=key,
        data=card_data(**data),
        parse_event=parse_event,
        on_event=on_event,
    )
