"""What the two components (the span annotator, the teach card) share on the Python side:
their JS and CSS, each behind the shared common.js / common.css, and their registration.

Components v2 takes a component's JS as one module string, so common.js is put in front of
the component's own JS (which keeps its `export default`); common.css likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import streamlit as st

_HERE = Path(__file__).resolve().parent
E = TypeVar("E")


def source(stem: str, ext: str) -> str:
    """common.<ext> followed by <stem>.<ext>: what the browser gets for that component."""
    return "\n".join(
        (_HERE / f"{name}.{ext}").read_text(encoding="utf-8") for name in ("common", stem)
    )


@st.cache_resource(show_spinner=False)
def renderer(component_name: str, stem: str):
    """Register a component once per process; its JS and CSS are read from disk once."""
    return st.components.v2.component(
        component_name, js=source(stem, "js"), css=source(stem, "css")
    )


def mount(
    component_name: str,
    stem: str,
    *,
    key: str,
    data: dict,
    parse_event: Callable[[object], E | None],
    on_event: Callable[[E], None],
) -> None:
    """Mount a component under `key`; its trigger value `event`, once `parse_event` accepts
    it, reaches `on_event` as a widget callback, before the next script run."""

    def _dispatch() -> None:
        value = st.session_state.get(key)
        raw = value.get("event") if isinstance(value, dict) else None
        event = parse_event(raw)
        if event is not None:
            on_event(event)

    renderer(component_name, stem)(key=key, data=data, on_event_change=_dispatch)
