"""Small pieces every page uses: the current project, flash messages, safe markdown."""

from __future__ import annotations

import re
from datetime import datetime

import streamlit as st

from app import auth, presence, services, state
from app.services import ProjectSummary, list_projects

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def md_escape(text: object) -> str:
    """Text shown literally inside Streamlit markdown (titles, captions): no links, no markup."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def projects() -> list[ProjectSummary]:
    with services.session() as s:
        return list_projects(s)


def current_project() -> ProjectSummary | None:
    """The project chosen in the sidebar, with fresh counts; None when there is none."""
    name = state.project_name()
    return next((p for p in projects() if p.name == name), None)


def require_project() -> ProjectSummary:
    """The current project, or a pointer to the Projects page and the end of this run."""
    project = current_project()
    if project is None:
        if auth.allows("projects"):
            st.info("No project yet. Create one and import some texts first.")
            st.page_link("views/projects.py", label="Go to Projects", icon=":material/folder_open:")
        else:
            st.info("No project yet. An admin creates one and imports its texts.")
        st.stop()
    return project


def require_annotator(permission: str = "annotate") -> str:
    """The name this browser session labels (or reviews) under, or a question and the end of
    this run.

    On a server with accounts it is the logged-in account's, if its role has `permission`.
    Without accounts no name is pre-filled: until one is chosen the page asks for it and shows
    no text. A name another open session labeled under in the last minutes must be confirmed
    first, since two people under one name are handed the same texts.
    """
    account = auth.require_page(permission)
    if account is not None:
        presence.mark(account.name)  # so logging out elsewhere keeps this session's text
        return account.name
    name = state.annotator()
    if not name:
        st.info(
            "Who is labeling? Choose a name: your labels are saved under it, and this browser "
            "remembers it. Everyone on the team needs a name of their own."
        )
        _name_form("Start labeling")
        st.stop()
    if state.confirmed_annotator() != name:
        since = presence.active_elsewhere(name)
        if since is not None:
            minutes = int((datetime.now() - since).total_seconds() // 60)
            ago = f"{minutes} min ago" if minutes else "just now"
            st.warning(
                f"Someone is labeling as **{md_escape(name)}** in another browser session "
                f"(active {ago}). Two people under one name get the same texts and "
                "overwrite each other's work. Choose another name, or continue if that is you "
                "in another tab."
            )
            st.button(
                f"Continue as {md_escape(name)}",
                key="confirm_annotator",
                on_click=state.confirm_annotator,
                args=(name,),
            )
            _name_form("Use this name instead")
            st.stop()
        state.confirm_annotator(name)
    presence.mark(name)
    return name


def _name_form(submit: str) -> None:
    with st.form("choose_annotator", border=False):
        st.text_input("Your name", key=state.NAME_CHOICE_KEY, max_chars=100)
        st.form_submit_button(submit, type="primary", on_click=state.choose_typed_name)


def show_flashes() -> None:
    """Messages left by the previous action (a save, an undo) or its error."""
    for kind, message in state.pop_flashes():
        if kind == "toast":
            st.toast(md_escape(message), icon=":material/check_circle:")
        else:
            getattr(st, kind)(md_escape(message))
