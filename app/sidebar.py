"""The sidebar on every page: who is labeling, and which project."""

from __future__ import annotations

import streamlit as st

from app import state
from app.ui import md_escape, projects


def render() -> None:
    state.apply_pending_project()
    available = projects()
    with st.sidebar:
        st.text_input(
            "Annotator",
            value=state.DEFAULT_ANNOTATOR,
            key=state.ANNOTATOR_KEY,
            max_chars=100,
            bind="query-params",
            help="Your labels are saved under this name.",
        )
        if not available:
            st.caption("No projects yet.")
            return
        names = [p.name for p in available]
        if st.session_state.get(state.PROJECT_KEY) not in names:
            st.session_state[state.PROJECT_KEY] = names[0]
        name = st.selectbox("Project", names, key=state.PROJECT_KEY, bind="query-params")
        current = next(p for p in available if p.name == name)
        st.caption(
            f"{md_escape(current.task)} · {current.done} of {current.total} labeled · "
            f"{current.skipped} skipped"
        )
