"""Review: find texts, open one and correct it into the text's final version; the
Disagreements filter lists texts whose annotators differ, their versions side by side."""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import streamlit as st

from app import auth, services, state
from app.components.span_annotator import EditorEvent, span_annotator
from app.services import (
    WINDOW,
    FewlabelError,
    ReviewRow,
    Version,
    annotators,
    browse,
    decisions_for,
    delete_document,
    disagreements,
    final_of,
    finalize,
    get_project,
    get_task,
    label_colors,
    project_agreement,
    span_set,
    tagged_text,
    versions,
)
from app.ui import md_escape, require_annotator, require_project, show_flashes

EDITOR = "review"
PAGE_SIZE = 20
ANY = "Any"
STATES = (ANY, "open", "done", "skipped")

project = require_project()
reviewer = require_annotator("review")


def first_page() -> None:
    st.session_state["review_page"] = 1


def make_final(doc_id: int, spans: list[dict], based_on: str | None) -> str | None:
    """Store the spans as the text's final version, reviewed by this reviewer; the error, if
    any. The editor then shows the final version."""
    try:
        with auth.session_as(reviewer, "review") as s:
            finalize(s, get_project(s, project.id), doc_id, reviewer, spans, based_on=based_on)
    except FewlabelError as exc:
        return str(exc)
    state.open_for_review(project.id, (doc_id, None), final=True)
    state.flash("toast", f"Saved the final version of text #{doc_id}, reviewed by {reviewer}.")
    return None


def handle(event: EditorEvent, based_on: str | None) -> None:
    """The editor's Save: the corrected spans become the text's final version."""
    state.editor_done(EDITOR, error=make_final(event.document_id, event.spans, based_on))


def use_version(doc_id: int, version: Version) -> None:
    """A version's Use button: that annotator's spans become the final version as they are."""
    error = make_final(doc_id, version.spans, version.who)
    if error:
        state.flash("error", error)
    state.editor_done(EDITOR)  # the editor starts again from the new final version


def remove_text(doc_id: int) -> None:
    """The Delete button: the text goes, with its annotations and final version."""
    try:
        with auth.session_as(reviewer, "projects") as s:
            delete_document(s, get_project(s, project.id), doc_id, reviewer)
    except FewlabelError as exc:
        state.flash("error", str(exc))
        return
    state.open_for_review(project.id, None)
    state.flash("success", f"Deleted text #{doc_id} with its annotations and final version.")


def span_summary(text: str, spans: list[dict]) -> str:
    return "; ".join(f"{text[s['start'] : s['end']]} → {s['label']}" for s in spans)


def reviewed(final) -> str:
    return f"{final.reviewer} ({final.reviewed_at:%Y-%m-%d %H:%M})" if final else ""


def pick(table: pd.DataFrame, keys: list, key_prefix: str, **column_config) -> None:
    """Show the table; a newly selected row opens its text in the editor below."""
    # The key follows the rows shown, so a selection never points at a row that moved.
    key = f"{key_prefix}_{hashlib.sha1(repr(keys).encode()).hexdigest()[:12]}"
    picked = st.dataframe(
        table,
        key=key,
        hide_index=True,
        height=36 + 35 * max(1, len(keys)),  # the whole page of rows, no inner scrolling
        on_select="rerun",
        selection_mode="single-row",
        column_config={"text #": st.column_config.NumberColumn(width="small"), **column_config},
    )
    rows = list(picked.selection.rows)
    if state.review_pick_is_new(key, rows) and rows:
        doc_id, who, final = keys[rows[0]]
        state.open_for_review(project.id, (doc_id, who), final=final)


def show_versions(doc_id: int, text: str, shown: tuple[str | None, bool]) -> None:
    """Each annotator's version of the text and its final version, side by side, as data."""
    with services.session() as s:
        found = versions(s, get_project(s, project.id), doc_id)
    if len(found) < 2:
        return
    everywhere = frozenset.intersection(*(span_set(v.spans) for v in found if not v.final))
    st.markdown("**Versions of this text**")
    for col, v in zip(st.columns(len(found)), found, strict=True):
        with col.container(border=True):
            title = f"Final: {reviewed_by(v)}" if v.final else f"{v.who}'s annotation"
            st.markdown(f"**{md_escape(title)}**")
            st.text(tagged_text(text, v.spans))
            rows = sorted(v.spans, key=lambda sp: sp["start"])
            st.dataframe(
                pd.DataFrame(
                    {
                        "span": [f"{text[sp['start'] : sp['end']]} → {sp['label']}" for sp in rows],
                        "in all": [
                            "✓" if (sp["start"], sp["end"], sp["label"]) in everywhere else ""
                            for sp in rows
                        ],
                    }
                ),
                hide_index=True,
                key=f"review_spans_{doc_id}_{v.who}_{v.final}",
                column_config={"in all": st.column_config.TextColumn(width="small")},
            )
            here = (None if v.final else v.who, v.final) == shown
            left, right = st.columns(2)
            left.button(
                "Editing" if here else "Edit",
                key=f"review_edit_{doc_id}_{v.who}_{v.final}",
                disabled=here,
                on_click=state.open_for_review,
                args=(project.id, (doc_id, None if v.final else v.who)),
                kwargs={"final": v.final},
            )
            if not v.final:
                right.button(
                    "Use as final",
                    key=f"review_use_{doc_id}_{v.who}",
                    on_click=use_version,
                    args=(doc_id, v),
                )


def show_decisions(text: str, answered: list[dict]) -> None:
    """The text's decisions (teach mode, imported binary answers): which suggested span was
    accepted, rejected or ignored, by whom. They add to the text's gold, never replace it."""
    if not answered:
        return
    with st.expander(f"Decisions on this text ({len(answered)})"):
        st.dataframe(
            pd.DataFrame(
                {
                    "span": [text[d["start"] : d["end"]] for d in answered],
                    "label": [d["label"] for d in answered],
                    "answer": [d["answer"] for d in answered],
                    "by": [d["annotator"] for d in answered],
                    "from": [d["origin"] for d in answered],
                    "seconds": [d["seconds"] for d in answered],
                    "when": [d["created_at"] for d in answered],
                }
            ),
            hide_index=True,
            width="stretch",
        )


def reviewed_by(v: Version) -> str:
    return f"reviewed by {v.who}" + (f" at {v.at:%Y-%m-%d %H:%M}" if v.at else "")


def percent(f1: float | None) -> float | None:
    return None if f1 is None else round(100.0 * f1, 1)


def show_agreement() -> None:
    """Span F1 between annotators on the texts several saved: per label, per pair, over time."""
    with st.expander("Agreement between annotators", expanded=False):
        by = st.radio(
            "Over time",
            ("texts", "week"),
            key="review_agreement_by",
            horizontal=True,
            format_func=lambda b: f"{WINDOW} texts at a time" if b == "texts" else "by week",
        )
        with services.session() as s:
            report = project_agreement(s, get_project(s, project.id), by=by)
        found = report.agreement
        st.caption(
            f"Overlap: {md_escape(report.overlap.describe())} (set on the Projects page). "
            "Span F1: spans match on start, end and label; texts both annotators saved."
        )
        if not found.pairs:
            st.info("No text is labeled by two annotators yet.")
            return
        left, middle, right = st.columns(3)
        micro = percent(found.micro)
        left.metric("Span F1 (mean over pairs)", "–" if micro is None else f"{micro:.1f}")
        middle.metric("Texts labeled by 2+", found.texts)
        right.metric("Disagreeing, settled", f"{report.disagreeing}, {report.resolved}")
        st.dataframe(
            pd.DataFrame(
                {
                    "label": list(found.labels),
                    "spans": [found.label_spans.get(lb, 0) for lb in found.labels],
                    "F1": [percent(f1) for f1 in found.labels.values()],
                }
            ),
            key="review_agreement_labels",
            hide_index=True,
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "annotators": [f"{p.a} / {p.b}" for p in found.pairs],
                    "texts": [p.texts for p in found.pairs],
                    "differ": [p.differ for p in found.pairs],
                    "matched": [p.micro.matched for p in found.pairs],
                    "spans": [f"{p.micro.a} / {p.micro.b}" for p in found.pairs],
                    "F1": [percent(p.micro.f1) for p in found.pairs],
                }
            ),
            key="review_agreement_pairs",
            hide_index=True,
        )
        windows = pd.DataFrame(
            {
                "#": list(range(1, len(report.over_time) + 1)),
                "window": [w.name for w in report.over_time],
                "texts": [w.texts for w in report.over_time],
                "F1": [percent(w.micro) for w in report.over_time],
            }
        )
        st.dataframe(windows, key="review_agreement_time", hide_index=True)
        if len(windows) > 1:
            st.line_chart(windows, x="#", y="F1", height=200)  # in time order, not by name


st.title("Review")
show_flashes()
show_agreement()

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
disagreeing = st.toggle(
    "Disagreements: texts where annotators differ",
    key="review_disagreements",
    on_change=first_page,
    help="Two annotators' done annotations differ; label and state filters do not apply",
)

page_no = int(st.session_state.get("review_page", 1))
with services.session() as s:
    p = get_project(s, project.id)

    def fetch(page: int):
        if disagreeing:
            return disagreements(
                s,
                p,
                search=search.strip() or None,
                annotator=None if who == ANY else who,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
            )
        return browse(
            s,
            p,
            search=search.strip() or None,
            label=None if label == ANY else label,
            annotator=None if who == ANY else who,
            state=None if doc_state == ANY else doc_state,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )

    rows, total = fetch(page_no)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page_no > pages:  # fewer rows than before; the pagination widget falls back to 1 too
        page_no = 1
        rows, total = fetch(page_no)
    finals = {} if disagreeing else final_of(s, [r.document_id for r in rows])

if disagreeing:
    st.caption(f"{total} text{'s' if total != 1 else ''} where annotators disagree")
    pick(
        pd.DataFrame(
            {
                "text #": [d.document_id for d in rows],
                "annotators": [", ".join(v.who for v in d.versions) for d in rows],
                "final, reviewed by": [
                    f"{d.final.who} ({d.final.at:%Y-%m-%d %H:%M})" if d.final else "" for d in rows
                ],
                "text": [d.text for d in rows],
            }
        ),
        # A text opens on its final version, or else on its first annotator's.
        [
            (d.document_id, None, True) if d.final else (d.document_id, d.versions[0].who, False)
            for d in rows
        ],
        "review_disagreements_table",
        text=st.column_config.TextColumn(width="large"),
    )
else:
    st.caption(f"{total} matching row{'s' if total != 1 else ''} (one per text and annotator)")
    review_rows: list[ReviewRow] = rows
    pick(
        pd.DataFrame(
            {
                "text #": [r.document_id for r in review_rows],
                "state": [r.state for r in review_rows],
                "annotator": [r.annotator or "" for r in review_rows],
                "spans": [span_summary(r.text, r.spans) for r in review_rows],
                "tagged text": [tagged_text(r.text, r.spans) for r in review_rows],
                "updated": [r.updated_at for r in review_rows],
                "decisions": [r.decisions for r in review_rows],
                "final, reviewed by": [reviewed(finals.get(r.document_id)) for r in review_rows],
            }
        ),
        [(r.document_id, r.annotator, False) for r in review_rows],
        "review_table",
        **{
            "tagged text": st.column_config.TextColumn(width="large"),
            "updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
if pages > 1:
    st.pagination(pages, key="review_page")

opened = state.opened_for_review(project.id)
if opened is None:
    st.caption("Select a row to open the text in the editor.")
    st.stop()

doc_id, owner, final = opened
try:
    with services.session() as s:
        p = get_project(s, project.id)
        task = get_task(s, p, doc_id, owner or reviewer)
        colors = label_colors(p)
        final_row = final_of(s, [doc_id]).get(doc_id)
        final_at = final_row and (final_row.reviewer, final_row.reviewed_at, final_row.based_on)
        final_spans = list(final_row.spans) if final_row else []
        answered = decisions_for(s, [doc_id]).get(doc_id, [])
except FewlabelError as exc:
    st.warning(md_escape(exc))
    st.stop()

if final and final_at is None:  # the final version was asked for and there is none
    final = False
st.subheader(f"Text #{doc_id}")
if final:
    by, at, based_on = final_at
    whose = f"Showing the final version, reviewed by {md_escape(by)} at {at:%Y-%m-%d %H:%M}."
    spans = final_spans
elif owner:
    whose, spans, based_on = f"Showing {md_escape(owner)}'s annotation.", task.spans, owner
else:
    whose, spans, based_on = "Nobody has labeled it yet.", [], None
show_versions(doc_id, task.text, (None if final else owner, final))
show_decisions(task.text, answered)
kept = f" {md_escape(owner)}'s annotation stays as it is." if owner and not final else ""
st.caption(
    f"{whose} Save (Enter) makes the spans in the editor the final version of this text, "
    f"reviewed by **{md_escape(reviewer)}**: export and training take it first.{kept}"
)
error = state.pop_editor_error(EDITOR)
if error:
    st.error(md_escape(error))
span_annotator(
    key=f"{EDITOR}-editor",
    document_id=doc_id,
    text=task.text,
    words=task.words,
    spans=spans,
    suggestions=task.suggestions,
    labels=project.labels,
    label_colors=colors,
    actions=("save",),
    version=f"{project.id}:{doc_id}:{owner}:{final}:{state.editor_version(EDITOR)}",
    seq=state.editor_seq(EDITOR),
    on_event=lambda event, based_on=based_on: handle(event, based_on),
)
if auth.allows("projects"):  # deleting texts is an admin's
    with st.expander("Delete this text"):
        st.caption(
            f"Deletes text #{doc_id} with every annotator's annotation, its final version and the "
            "model's suggestions for it. This cannot be undone."
        )
        sure = st.checkbox(f"Yes, delete text #{doc_id}", key=f"review_delete_sure_{doc_id}")
        st.button(
            "Delete this text",
            key=f"review_delete_{doc_id}",
            disabled=not sure,
            on_click=remove_text,
            args=(doc_id,),
        )
