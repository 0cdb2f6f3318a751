"""Review: find texts by words, label, annotator or state; open one to correct its spans."""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import streamlit as st

from app import services, state
from app.components.span_annotator import EditorEvent, span_annotator
from app.ui import md_escape, require_annotator, require_project, show_flashes
from core.annotations import ReviewRow, annotators, browse, get_task, save
from core.errors import FewlabelError
from core.projects import get_project
from core.text import tagged_text

EDITOR = "review"
PAGE_SIZE = 20
ANY = "Any"
STATES = (ANY, "open", "done", "skipped")

project = require_project()
annotator = require_annotator()


def first_page() -> None:
    st.session_state["review_page"] = 1


def handle(event: EditorEvent) -> None:
    """Save the corrected spans as the current annotator's annotation of the text."""
    try:
        with services.session() as s:
            save(s, get_project(s, project.id), event.document_id, annotator, event.spans)
    except FewlabelError as exc:
        state.editor_done(EDITOR, error=str(exc))
        return
    state.editor_done(EDITOR)
    state.open_for_review(project.id, (event.document_id, annotator))
    state.flash("toast", f"Saved text #{event.document_id} as {annotator}'s annotation.")


def span_summary(row: ReviewRow) -> str:
    return "; ".join(f"{row.text[s['start'] : s['end']]} → {s['label']}" for s in row.spans)


st.title("Review")
show_flashes()

with services.session() as s:
    people = annotators(s, get_project(s, project.id))

search_col, label_col, who_col, state_col = st.columns([3, 1, 1, 1])
search = search_col.text_input(
    "Search", key="review_search", placeholder="words in the text", on_change=first_page
)
label = label_col.selectbox(
    "Label", (ANY, *project.labels), key="review_label", on_change=first_page
)
who = who_col.selectbox("Annotator", (ANY, *people), key="review_who", on_change=first_page)
doc_state = state_col.selectbox("State", STATES, key="review_state", on_change=first_page)

filters = dict(
    search=search.strip() or None,
    label=None if label == ANY else label,
    annotator=None if who == ANY else who,
    state=None if doc_state == ANY else doc_state,
)
page_no = int(st.session_state.get("review_page", 1))
with services.session() as s:
    p = get_project(s, project.id)
    rows, total = browse(s, p, **filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page_no > pages:  # fewer rows than before; the pagination widget falls back to 1 too
        page_no = 1
        rows, total = browse(s, p, **filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)

st.caption(f"{total} matching row{'s' if total != 1 else ''} (one per text and annotator)")
row_keys = [(r.document_id, r.annotator) for r in rows]
table = pd.DataFrame(
    {
        "text #": [r.document_id for r in rows],
        "state": [r.state for r in rows],
        "annotator": [r.annotator or "" for r in rows],
        "spans": [span_summary(r) for r in rows],
        "tagged text": [tagged_text(r.text, r.spans) for r in rows],
        "updated": [r.updated_at for r in rows],
    }
)
# The key follows the rows shown, so a selection never points at a row that moved.
fingerprint = hashlib.sha1(repr(row_keys).encode()).hexdigest()[:12]
picked = st.dataframe(
    table,
    key=f"review_table_{fingerprint}",
    hide_index=True,
    height=36 + 35 * max(1, len(rows)),  # the whole page of rows, no inner scrolling
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "text #": st.column_config.NumberColumn(width="small"),
        "tagged text": st.column_config.TextColumn(width="large"),
        "updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)
if picked.selection.rows:
    state.open_for_review(project.id, row_keys[picked.selection.rows[0]])
if pages > 1:
    st.pagination(pages, key="review_page")

opened = state.opened_for_review(project.id)
if opened is None:
    st.caption("Select a row to open the text in the editor.")
    st.stop()

doc_id, owner = opened
try:
    with services.session() as s:
        task = get_task(s, get_project(s, project.id), doc_id, owner or annotator)
except FewlabelError as exc:
    st.warning(md_escape(exc))
    st.stop()

st.subheader(f"Text #{doc_id}")
whose = f"Showing {md_escape(owner)}'s spans." if owner else "Nobody has labeled it yet."
st.caption(f"{whose} Save (Enter) stores them as **{md_escape(annotator)}**'s annotation.")
error = state.pop_editor_error(EDITOR)
if error:
    st.error(md_escape(error))
span_annotator(
    key=f"{EDITOR}-editor",
    document_id=doc_id,
    text=task.text,
    words=task.words,
    spans=task.spans,
    suggestions=task.suggestions,
    labels=project.labels,
    actions=("save",),
    version=f"{project.id}:{doc_id}:{owner}:{state.editor_version(EDITOR)}",
    seq=state.editor_seq(EDITOR),
    on_event=handle,
)
