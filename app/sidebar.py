"""The sidebar on every page: who is labeling (or logged in), and which project."""

from __future__ import annotations

import streamlit as st

from app import auth, presence, services, state
from app.ui import md_escape, projects


def renamed() -> None:
    """Callback of the name field: the old name's claimed texts go back to the queue now,
    unless another browser session is still labeling under it."""
    old, new = state.previous_annotator(), state.annotator()
    state.confirm_annotator(None)  # the new name is checked against other sessions
    if not old or old == new:
        return
    presence.leave(old)
    if presence.active_elsewhere(old) is None:
        services.release_held(old)


def _who() -> None:
    """The logged-in account and its Log out button; without accounts, the name field."""
    account = auth.current()
    if account is not None:
        st.caption(f"Logged in as **{md_escape(account.name)}** · {account.role}")
        st.button("Log out", key="log_out", icon=":material/logout:", on_click=auth.log_out)
        return
    st.text_input(
        "Annotator",
        key=state.ANNOTATOR_KEY,
        max_chars=100,
        bind="query-params",
        placeholder="Choose a name",
        on_change=renamed,
        help="Your labels are saved under this name; everyone picks their own. "
        "The page's address keeps it, so a reload or a bookmark remembers it.",
    )
    state.remember_annotator()


def render() -> None:
    state.apply_pending_project()
    available = projects()
    with st.sidebar:
        _who()
        if not available:
            st.caption("No projects yet.")
            return
        names = [p.name for p in available]
        if st.session_state.get(state.PROJECT_KEY) not in names:
            st.session_state[state.PROJECT_KEY] = names[0]
        name = st.selectbox(
            "Project",
            names,
            key=state.PROJECT_KEY,
            bind="query-params",
            on_change=state.project_changed,  # the annotator takes the keys' focus
        )
        current = next(p for p in available if p.name == name)
        st.caption(
            f"{md_escape(current.task)} · {current.done} of {current.total} labeled · "
            f"{current.skipped} skipped"
        )
