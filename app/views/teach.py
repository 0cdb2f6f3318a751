"""Teach: one suggested span at a time, answered with a key (core.labeling.teach): accept
(A or Enter, or a number key for another label), reject (X), ignore (Space or S), undo (U)."""

from __future__ import annotations

import streamlit as st

from app import auth, services, state
from app.components.teach_card import TeachEvent, teach_card
from app.services import FewlabelError, get_project, label_colors, teach
from app.ui import md_escape, require_annotator, require_project, show_flashes

EDITOR = "teach"
# This page's own session keys: the suggestion on screen (the only one an answer may be
# about) and, after an undo, the span to show again first.
_SHOWN = "_fl_teach_shown"
_PREFER = "_fl_teach_prefer"
ANSWERED = {"accept": "Accepted", "reject": "Rejected", "ignore": "Ignored"}

project = require_project()
annotator = require_annotator()
# As on Annotate: reviewers and admins teach only on texts the overlap leaves to one
# annotator, so none of the shared texts is held away from the annotators.
account = auth.current() if auth.login_required() else None
shared = account is None or not account.can("review")


def _answer(s, p, event: TeachEvent) -> None:
    shown = st.session_state.get(_SHOWN)
    if shown is None or shown.key != event.key:
        raise services.NotFoundError(
            "that suggestion is no longer on screen; answer the one shown now"
        )
    teach.answer(s, p, annotator, shown, event.action, label=event.as_label, seconds=event.seconds)
    st.session_state.pop(_PREFER, None)
    label = event.as_label or shown.label
    state.flash("toast", f"{ANSWERED[event.action]}: {shown.text[shown.start : shown.end]} {label}")


def handle(event: TeachEvent) -> None:
    """Answer or undo in one transaction; an error keeps the suggestion on screen."""
    try:
        permission = "history" if event.action == "undo" else "annotate"
        with auth.session_as(annotator, permission) as s:
            p = get_project(s, project.id)
            if event.action != "undo":
                _answer(s, p, event)
            elif (undone := teach.undo(s, p, annotator)) is None:
                state.flash("info", "Nothing to undo yet.")
            else:
                st.session_state[_PREFER] = teach.prefer_of(undone)
                state.flash("toast", f"Undone: your {undone['answer']} is taken back.")
    except FewlabelError as exc:
        state.editor_done(EDITOR, error=str(exc))
    else:
        state.editor_done(EDITOR)


def undo_button() -> None:
    if st.button("Undo my last answer", icon=":material/undo:", key="teach_undo"):
        handle(TeachEvent("undo", 0, 0, 0, ""))
        st.rerun()


st.title("Teach")
show_flashes()
error = state.pop_editor_error(EDITOR)
if error:
    st.error(md_escape(error))

with services.session() as s:
    p = get_project(s, project.id)
    shown = teach.next_suggestion(
        s, p, annotator, prefer=st.session_state.get(_PREFER), shared=shared
    )
    colors = label_colors(p)

st.session_state[_SHOWN] = shown
if shown is None:
    st.session_state.pop(_PREFER, None)
    st.info(
        "No suggestion to answer. Suggestions come from the current model's predictions, or "
        "before the first model from the project's patterns files, the strings already "
        "labeled and its task's rule; texts labeled in full, held by someone else or "
        "answered are left out. Add a patterns file or retrain on the Train page, or label "
        "texts on the Annotate page."
    )
    undo_button()
    st.stop()

if st.session_state.get(_PREFER) and shown.key[:3] != tuple(st.session_state[_PREFER]):
    st.session_state.pop(_PREFER, None)  # that suggestion can't be shown again: move on

st.caption(
    f"Text #{shown.document_id} · suggested by {md_escape(shown.origin)}"
    + (f" · probability {shown.confidence:.2f}" if shown.confidence is not None else "")
)
teach_card(
    key=f"{EDITOR}-card",
    document_id=shown.document_id,
    text=shown.text,
    start=shown.start,
    end=shown.end,
    label=shown.label,
    confidence=shown.confidence,
    origin=shown.origin,
    labels=project.labels,
    label_colors=colors,
    version=f"{project.id}:{':'.join(map(str, shown.key))}:{state.editor_version(EDITOR)}",
    seq=state.editor_seq(EDITOR),
    focus=state.editor_focus(),
    on_event=handle,
)
