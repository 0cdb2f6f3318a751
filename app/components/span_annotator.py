"""The span-annotator component: a Streamlit Components v2 element, inline JS and CSS.

Python sends the document as data (text, words with offsets, spans, suggestions, labels
with colours); the browser sends back one trigger value, `event`, when the user saves,
skips or undoes, with the seconds since the text was drawn (visible time only: the
annotator's clock; core caps it at core.defaults.IDLE_CAP_S). Texts are rendered in the
browser with textContent only, never as HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.components.common import mount
from app.services import Word

COMPONENT_NAME = "fewlabel_span_annotator"
ACTIONS = ("save", "skip", "undo")

# (background, strong) per label, in legend order. Span text is near-black on the light
# background; tags and key badges are white on the strong colour (contrast >= 4.5:1).
LABEL_COLORS: tuple[tuple[str, str], ...] = (
    ("#ffe08a", "#7a5300"),
    ("#bfdcff", "#1d4ed8"),
    ("#c6f0c2", "#166534"),
    ("#ffc9de", "#9d174d"),
    ("#e2d4ff", "#5b21b6"),
    ("#ffd3b0", "#9a3412"),
    ("#b8f0ec", "#115e59"),
    ("#ead7c3", "#6b4423"),
    ("#e2e4e8", "#374151"),
)
# What each pair is called where a user picks one (Projects page).
LABEL_COLOR_NAMES: tuple[str, ...] = (
    "yellow",
    "blue",
    "green",
    "pink",
    "purple",
    "orange",
    "teal",
    "brown",
    "grey",
)

# What the keys do, shown under the text. The action keys appear only where the action is on.
SHORTCUTS: tuple[tuple[str, str, str | None], ...] = (
    ("drag", "select words (or click the first, then the last; Shift+click extends)", None),
    ("1-9", "label the selection", None),
    ("click", "a span removes it, a suggestion accepts it", None),
    ("A", "accept all suggestions", None),
    ("Enter", "save", "save"),
    ("S", "skip", "skip"),
    ("U", "undo the last save or skip", "undo"),
    ("Ctrl+Z", "undo the last edit", None),
    ("Esc", "clear the selection", None),
)


def shortcuts(actions: Sequence[str] = ACTIONS) -> list[tuple[str, str]]:
    """The keyboard help for an editor offering these actions."""
    return [(key, what) for key, what, needs in SHORTCUTS if needs is None or needs in actions]


def default_color(position: int) -> int:
    """The palette index a label gets by its position in the label set (repeats after nine)."""
    return position % len(LABEL_COLORS)


def label_palette(labels: Sequence[str], chosen: Mapping[str, int] | None = None) -> list[dict]:
    """Labels with their legend colours: the index `chosen` for a label where given, else the
    default order. An index outside the palette falls back to the default."""
    chosen = chosen or {}
    palette = []
    for position, name in enumerate(labels):
        index = chosen.get(name)
        if not (isinstance(index, int) and 0 <= index < len(LABEL_COLORS)):
            index = default_color(position)
        bg, fg = LABEL_COLORS[index]
        palette.append({"name": name, "bg": bg, "fg": fg})
    return palette


@dataclass(frozen=True)
class EditorEvent:
    """What the user asked for in the browser: save these spans, skip, or undo; `seconds`:
    visible time since the text was drawn (None: not measured)."""

    action: str
    document_id: int
    spans: list[dict]
    seconds: float | None = None


def _seconds(raw: object) -> float | None:
    """The event's seconds as a finite number >= 0, else None (core caps it)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) and value >= 0 else None


def parse_event(raw: object) -> EditorEvent | None:
    """Validate the browser's payload; None when it is not an event we understand.

    Spans are only shaped here (ints and a string label); core validates them against the
    text and the label set when saving.
    """
    if not isinstance(raw, dict) or raw.get("action") not in ACTIONS:
        return None
    try:
        doc = int(raw["doc"])
    except (KeyError, TypeError, ValueError):
        return None
    spans = []
    for sp in raw.get("spans") or []:
        if not isinstance(sp, dict):
            continue
        try:
            spans.append(
                {"start": int(sp["start"]), "end": int(sp["end"]), "label": str(sp["label"])}
            )
        except (KeyError, TypeError, ValueError):
            continue
    return EditorEvent(
        action=raw["action"], document_id=doc, spans=spans, seconds=_seconds(raw.get("seconds"))
    )


def component_data(
    *,
    document_id: int,
    text: str,
    words: Iterable[Word],
    spans: Sequence[dict],
    labels: Sequence[str],
    label_colors: Mapping[str, int] | None = None,
    suggestions: Sequence[dict] = (),
    actions: Sequence[str] = ACTIONS,
    version: str = "",
    seq: int = 0,
    dirty: bool = False,
    focus: str = "",
) -> dict:
    """The JSON the browser side receives: everything it draws, nothing it must trust."""
    return {
        "doc": document_id,
        "text": text,
        "words": [[w.start, w.end] for w in words],
        "spans": [dict(s) for s in spans],
        "suggestions": [dict(s) for s in suggestions],
        "labels": label_palette(labels, label_colors),
        "actions": [a for a in actions if a in ACTIONS],
        "help": [list(item) for item in shortcuts(actions)],
        "version": version,
        "seq": seq,
        "dirty": dirty,
        "focus": focus,
    }


def span_annotator(*, key: str, on_event: Callable[[EditorEvent], None], **data) -> None:
    """Mount the annotator for one document; `data` are component_data's arguments.

    `on_event` runs as a widget callback, before the next script run, so the page that
    follows already shows the result (the next text after a save). A new `version` makes
    the browser drop its unsaved edits and start from `spans`; `seq` only forces a redraw
    (after an error, keeping the edits); a new non-empty `focus` makes it take the keyboard's
    focus even from a text field (the project select box, after a project change).
    """
    mount(
        COMPONENT_NAME,
        "span_annotator",
        key=key,
        data=component_data(**data),
        parse_event=parse_event,
        on_event=on_event,
    )
