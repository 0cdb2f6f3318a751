"""Typed accessors for st.session_state: every key the app keeps lives here.

The annotator name and the project are sidebar widgets bound to the URL's query
parameters, so a reload or a shared link keeps them. There is no default name: each browser
chooses its own, so two people never label under one name by accident. On a server with
accounts the name is the logged-in account's instead (app.auth), kept in this session only.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

ANNOTATOR_KEY = "annotator"
PROJECT_KEY = "project"
NAME_CHOICE_KEY = "annotator_choice"
LOGIN_NAME_KEY = "login_name"
LOGIN_PASSWORD_KEY = "login_password"

_USER = "_fl_user"

_ANNOTATOR_WAS = "_fl_annotator_was"
_ANNOTATOR_CONFIRMED = "_fl_annotator_confirmed"

_PENDING_PROJECT = "_fl_pending_project"
_FOCUS_COUNT = "_fl_focus_count"
_FOCUS_PENDING = "_fl_focus_pending"
_FLASHES = "_fl_flashes"
_EDITOR_VERSION = "_fl_editor_version"
_EDITOR_SEQ = "_fl_editor_seq"
_EDITOR_ERROR = "_fl_editor_error"
_REVIEW_OPEN = "_fl_review_open"
_REVIEW_PICKED = "_fl_review_picked"

FlashKind = Literal["toast", "success", "info", "warning", "error"]


# ---------------------------------------------------------------- who and where


def logged_in() -> str | None:
    """The account name this browser session logged in as (app.auth checks it each run)."""
    return st.session_state.get(_USER)


def log_in(name: str) -> None:
    """Start a fresh session as `name`: nothing of whoever used this browser before stays."""
    st.session_state.clear()
    st.session_state[_USER] = name


def log_out() -> None:
    """Forget everything this browser session held: who it was, drafts, callbacks' pages."""
    st.session_state.clear()


def annotator() -> str:
    """The annotator name from the sidebar, stripped ("" when the field is empty)."""
    return str(st.session_state.get(ANNOTATOR_KEY) or "").strip()


def choose_typed_name() -> None:
    """Callback: the name typed on the Annotate page becomes the sidebar's (and the URL's)."""
    name = str(st.session_state.get(NAME_CHOICE_KEY) or "").strip()
    if name:
        st.session_state[ANNOTATOR_KEY] = name


def previous_annotator() -> str:
    """The annotator name of the previous run, which a rename leaves behind."""
    return str(st.session_state.get(_ANNOTATOR_WAS) or "")


def remember_annotator() -> None:
    """Called after the sidebar draws the name field, for the next rename to compare with."""
    st.session_state[_ANNOTATOR_WAS] = annotator()


def confirmed_annotator() -> str | None:
    """The name this session has started labeling under (checked against other sessions)."""
    return st.session_state.get(_ANNOTATOR_CONFIRMED)


def confirm_annotator(name: str | None) -> None:
    """Label under `name` from now on (None: check the next name again)."""
    st.session_state[_ANNOTATOR_CONFIRMED] = name


def project_name() -> str | None:
    value = st.session_state.get(PROJECT_KEY)
    return str(value) if value else None


def select_project(name: str) -> None:
    """Make `name` the sidebar's project on the next run (a widget can't change mid-run)."""
    st.session_state[_PENDING_PROJECT] = name


def project_changed() -> None:
    """Callback of the sidebar's project select: the annotator takes the keyboard's focus
    when it next draws, so its shortcuts work without a click (the select box keeps it)."""
    st.session_state[_FOCUS_COUNT] = int(st.session_state.get(_FOCUS_COUNT, 0)) + 1
    st.session_state[_FOCUS_PENDING] = True


def editor_focus() -> str:
    """Once after a project change, a token new to the annotator ("" otherwise): on a new
    token it takes the focus even from the select box that still holds it."""
    if st.session_state.pop(_FOCUS_PENDING, False):
        return str(st.session_state.get(_FOCUS_COUNT, 0))
    return ""


def apply_pending_project() -> None:
    """Called before the sidebar draws its project selector."""
    name = st.session_state.pop(_PENDING_PROJECT, None)
    if name:
        st.session_state[PROJECT_KEY] = name


# ---------------------------------------------------------------- one-shot messages


def flash(kind: FlashKind, message: str) -> None:
    """A message for the next page run (callbacks run before the page draws)."""
    st.session_state.setdefault(_FLASHES, []).append((kind, message))


def pop_flashes() -> list[tuple[FlashKind, str]]:
    return st.session_state.pop(_FLASHES, [])


# ---------------------------------------------------------------- editor bookkeeping


def editor_version(scope: str) -> int:
    """Bumped after each save/skip/undo; a new version resets the browser's draft."""
    return int(st.session_state.get(f"{_EDITOR_VERSION}:{scope}", 0))


def editor_seq(scope: str) -> int:
    """Bumped after every handled event, so the component redraws even on an error."""
    return int(st.session_state.get(f"{_EDITOR_SEQ}:{scope}", 0))


def editor_done(scope: str, *, error: str | None = None) -> None:
    """Record the outcome of an editor event: a new version on success, an error otherwise."""
    st.session_state[f"{_EDITOR_SEQ}:{scope}"] = editor_seq(scope) + 1
    st.session_state[f"{_EDITOR_ERROR}:{scope}"] = error
    if error is None:
        st.session_state[f"{_EDITOR_VERSION}:{scope}"] = editor_version(scope) + 1


def pop_editor_error(scope: str) -> str | None:
    """The error of the last editor event, once."""
    return st.session_state.pop(f"{_EDITOR_ERROR}:{scope}", None)


# ---------------------------------------------------------------- review


def open_for_review(
    project_id: int, row: tuple[int, str | None] | None, *, final: bool = False
) -> None:
    """The text the Review page shows in its editor: (document id, whose annotation), or with
    `final` the text's final version."""
    if row is None:
        st.session_state.pop(_REVIEW_OPEN, None)
    else:
        st.session_state[_REVIEW_OPEN] = (project_id, int(row[0]), row[1], final)


def opened_for_review(project_id: int) -> tuple[int, str | None, bool] | None:
    """(document id, annotator or None, final?) opened in this project's Review editor."""
    opened = st.session_state.get(_REVIEW_OPEN)
    if opened and opened[0] == project_id:
        return opened[1], opened[2], opened[3]
    return None


def review_pick_is_new(table_key: str, rows: list[int]) -> bool:
    """Whether this table selection differs from the last one seen. A selection opens its row
    once; a later open (a save shows the final version) is not undone by it on each rerun."""
    picked = (table_key, tuple(rows))
    if st.session_state.get(_REVIEW_PICKED) == picked:
        return False
    st.session_state[_REVIEW_PICKED] = picked
    return True
