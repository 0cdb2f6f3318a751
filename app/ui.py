"""Small pieces every page uses: the current project, flash messages, safe markdown."""

from __future__ import annotations

import re

import streamlit as st

from app import services, state
from core.projects import ProjectSummary, list_projects

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
        st.info("No project yet. Create one and import some texts first.")
        st.page_link("views/projects.py", label="Go to Projects", icon=":material/folder_open:")
        st.stop()
    return project


def require_annotator() -> str:
    name = state.annotator()
    if not name:
        st.warning("Enter your name as annotator in the sidebar; labels are stored under it.")
        st.stop()
    return name


def show_flashes() -> None:
    """Messages left by the previous action (a save, an undo) or its error."""
    for kind, message in state.pop_flashes():
        if kind == "toast":
            st.toast(md_escape(message), icon=":material/check_circle:")
        else:
            getattr(st, kind)(md_escape(message))
