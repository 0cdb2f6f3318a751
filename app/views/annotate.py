"""Annotate: the next text in the queue, labeled in the span annotator, saved with Enter."""

from __future__ import annotations

import streamlit as st

from app import auth, services, state
from app.components.span_annotator import EditorEvent, span_annotator
from app.services import (
    FewlabelError,
    get_project,
    label_colors,
    next_document,
    progress,
    save,
    skip,
    undo,
)
from app.ui import md_escape, require_annotator, require_project, show_flashes

EDITOR = "annotate"

project = require_project()
annotator = require_annotator()
# Reviewers and admins label too, but leave the texts overlap shares out to annotators: a
# text they held would be kept from the annotators whose agreement it is there to measure.
account = auth.current() if auth.login_required() else None
shared = account is None or not account.can("review")


def handle(event: EditorEvent) -> None:
    """Save, skip or undo in one transaction; an error keeps the text and the edits. A save
    or skip records the seconds the browser measured (capped in core: the annotator's clock)."""
    try:
        with auth.session_as(annotator, "annotate" if event.action != "undo" else "history") as s:
            p = get_project(s, project.id)
            if event.action == "save":
                saved = save(s, p, event.document_id, annotator, event.spans, seconds=event.seconds)
                n = len(saved.spans)
                kept = sum(sp.get("origin") == "model" for sp in saved.spans)
                note = f", {kept} as the model suggested" if kept else ""
                state.flash("toast", f"Saved {n} span{'s' if n != 1 else ''}{note}.")
            elif event.action == "skip":
                skip(s, p, event.document_id, annotator, seconds=event.seconds)
                state.flash("toast", "Skipped.")
            else:
                doc_id = undo(s, p, annotator)
                if doc_id is None:
                    state.flash("info", "Nothing to undo yet.")
                else:  # its spans come back with it, unsaved (core.labeling.annotations.undo)
                    state.flash("toast", "Undone: the text is back in front of you.")
    except FewlabelError as exc:
        state.editor_done(EDITOR, error=str(exc))
    else:
        state.editor_done(EDITOR)


st.title("Annotate")
show_flashes()

with services.session() as s:
    p = get_project(s, project.id)
    task = next_document(s, p, annotator, shared=shared)
    stats = progress(s, p, annotator)
    colors = label_colors(p)

share = (stats.done + stats.skipped) / stats.total if stats.total else 0.0
st.progress(
    share,
    text=(
        f"{stats.done} of {stats.total} labeled · {stats.mine} by you · "
        f"{stats.skipped} skipped · {stats.open} open"
    ),
)

if task is None:
    if stats.total == 0:
        if auth.allows("import"):
            st.info("This project has no texts yet. Import some on the Projects page.")
            st.page_link("views/projects.py", label="Import texts", icon=":material/upload_file:")
        else:
            st.info("This project has no texts yet. An admin imports them.")
    elif not shared and stats.open:
        st.info(
            "No text for you here: the texts left need several annotators each (overlap) "
            "and are kept for annotators. Review and correct them on the Review page."
        )
    else:
        st.success("The queue is empty: every text in this project is labeled or skipped.")
        if st.button("Undo my last save or skip", icon=":material/undo:", key="undo_last"):
            handle(EditorEvent(action="undo", document_id=0, spans=[]))
            st.rerun()
    st.stop()

about = [f"Text #{task.document_id}"]
if task.external_id:
    about.append(f"id {md_escape(task.external_id)}")
if task.meta.get("title"):
    about.append(md_escape(task.meta["title"]))
if task.ranked_by is not None and task.ranked_by == task.scored_by:
    # the version whose score is shown is the one whose scores put the text here
    about.append(
        f"why this text: model version {task.ranked_by} is uncertain about it "
        f"(score {task.score:.2f})"
    )
elif task.ranked_by is not None:
    # after a Retrain the rest of the pool is rescored before the queue is reordered
    why = f"why this text: model version {task.ranked_by} put it here"
    if task.score is not None:
        why += f"; version {task.scored_by} has scored it since (score {task.score:.2f})"
    about.append(why)
elif task.score is not None:
    about.append(
        "why this text: its place in the queue is not a model's ranking "
        f"(model version {task.scored_by} scores it {task.score:.2f})"
    )
if task.scored_by is not None:
    about.append(f"suggestions by model version {task.scored_by}")
st.caption(" · ".join(about))

error = state.pop_editor_error(EDITOR)
if error:
    st.error(md_escape(error))

span_annotator(
    key=f"{EDITOR}-editor",
    document_id=task.document_id,
    text=task.text,
    words=task.words,
    spans=task.spans,
    suggestions=task.suggestions,
    labels=project.labels,
    label_colors=colors,
    version=f"{project.id}:{task.document_id}:{state.editor_version(EDITOR)}",
    seq=state.editor_seq(EDITOR),
    dirty=task.restored,
    focus=state.editor_focus(),
    on_event=handle,
)
