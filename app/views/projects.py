"""Projects: the list with progress, a form to create one, a file import, and the chosen
project's rename, label renames and delete."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from app import auth, services, state
from app.components.span_annotator import LABEL_COLOR_NAMES, default_color
from app.services import (
    MAX_ANNOTATORS,
    FewlabelError,
    bulk_priority,
    create_project,
    delete_project,
    formats,
    get_project,
    import_bytes,
    label_colors,
    overlap_of,
    rename_label,
    rename_project,
    set_label_color,
    set_overlap,
    shared_texts,
)
from app.ui import current_project, md_escape, projects, show_flashes

log = logging.getLogger(__name__)

TASKS = services.tasks()  # each with its one line of help (core.tasks)

# Each form acts in its submit button's callback, before the page draws: a refused form keeps
# what was typed and shows why beside it; a form that succeeds is cleared.
_REFUSED = "projects_refused"


def refuse(form: str, exc: Exception) -> None:
    st.session_state.setdefault(_REFUSED, {})[form] = str(exc)


def show_refusal(form: str) -> None:
    message = st.session_state.get(_REFUSED, {}).pop(form, None)
    if message:
        st.error(md_escape(message))


def create() -> None:
    task = st.session_state["new_task"]
    labels = st.session_state.get("new_labels") or ""
    label_list = [x for x in labels.split(",") if x.strip()] if task == "custom" else None
    try:
        with services.session() as s:
            created = create_project(s, st.session_state.get("new_name") or "", task, label_list)
            created_name, created_labels = created.name, list(created.labels)
    except FewlabelError as exc:
        refuse("create", exc)
        return
    st.session_state["new_name"] = st.session_state["new_labels"] = ""
    state.select_project(created_name)
    state.flash(
        "success", f"Created project {created_name} with labels {', '.join(created_labels)}."
    )


def rename(project_id: int) -> None:
    try:
        with services.session() as s:
            project = get_project(s, project_id)
            new_name = rename_project(s, project, st.session_state.get("rename_name") or "").name
    except FewlabelError as exc:
        refuse("rename", exc)
        return
    st.session_state["rename_name"] = ""
    state.select_project(new_name)
    state.flash("success", f"Renamed the project to {new_name}.")


def relabel(project_id: int) -> None:
    old, new = st.session_state.get("label_old"), st.session_state.get("label_new") or ""
    try:
        with services.session() as s:
            n = rename_label(s, get_project(s, project_id), old, new)
    except FewlabelError as exc:
        refuse("relabel", exc)
        return
    st.session_state["label_new"] = ""
    state.flash(
        "success",
        f"Renamed label {old} to {new.strip()} in {n} stored span{'s' if n != 1 else ''}. "
        "Models trained before keep the old name until the next retrain.",
    )


def color_key(project_id: int, label: str) -> str:
    return f"label_color:{project_id}:{label}"


def recolor(project_id: int, label: str) -> None:
    index = st.session_state.get(color_key(project_id, label))
    try:
        with services.session() as s:
            set_label_color(s, get_project(s, project_id), label, index)
    except FewlabelError as exc:
        refuse("color", exc)
        return
    state.flash("success", f"Label {label} is now drawn in {LABEL_COLOR_NAMES[index]}.")


def change_overlap(project_id: int) -> None:
    annotators = int(st.session_state.get(f"overlap_annotators_{project_id}") or 1)
    share = float(st.session_state.get(f"overlap_share_{project_id}") or 0) / 100.0
    try:
        with services.session() as s:
            overlap = set_overlap(s, get_project(s, project_id), annotators, share)
    except FewlabelError as exc:
        refuse("overlap", exc)
        return
    state.flash("success", f"Overlap: {overlap.describe()}.")


def delete(project_id: int) -> None:
    try:
        with services.session() as s:
            project = get_project(s, project_id)
            deleted = delete_project(s, project, st.session_state.get("delete_confirm") or "")
    except FewlabelError as exc:
        refuse("delete", exc)
        return
    st.session_state["delete_confirm"] = ""
    summary = deleted.summary()
    state.flash("success", summary[:1].upper() + summary[1:] + ".")


auth.require_page("projects")  # the navigation hides it from other roles
st.title("Projects")
show_flashes()

# ------------------------------------------------------------------ the list

summaries = projects()
if summaries:
    st.dataframe(
        pd.DataFrame(
            {
                "project": [p.name for p in summaries],
                "task": [p.task for p in summaries],
                "labels": [", ".join(p.labels) for p in summaries],
                "texts": [p.total for p in summaries],
                "labeled": [p.done for p in summaries],
                "skipped": [p.skipped for p in summaries],
                "progress": [(p.done + p.skipped) / p.total if p.total else 0.0 for p in summaries],
            }
        ),
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )
else:
    st.info("No projects yet: create the first one below.")

create_col, import_col = st.columns(2, gap="large")

# ------------------------------------------------------------------ create

with create_col:
    st.subheader("New project")
    # Not cleared on submit: a refused form keeps what was typed; create() clears it on success.
    with st.form("create_form", clear_on_submit=False, border=True):
        st.text_input("Name", placeholder="e.g. acronyms-2024", key="new_name")
        st.radio(
            "Task",
            list(TASKS),
            key="new_task",
            horizontal=True,
            format_func=str.capitalize,
            help=" · ".join(f"{name}: {task.help}" for name, task in TASKS.items()),
        )
        st.text_input(
            "Labels (custom task only)",
            key="new_labels",
            placeholder="PERSON, ORG, PLACE",
            help="Comma-separated; up to nine get number keys 1-9 on the Annotate page.",
        )
        st.form_submit_button("Create project", type="primary", key="new_submit", on_click=create)
    show_refusal("create")

# ------------------------------------------------------------------ import

with import_col:
    st.subheader("Import texts")
    target = current_project()
    if target is None:
        st.caption("Create a project first; the import goes into the sidebar's project.")
    else:
        st.caption(f"Into **{md_escape(target.name)}** (the project chosen in the sidebar).")
        with st.form("import_form", clear_on_submit=False, border=True):
            upload = st.file_uploader(
                "File",
                key="import_file",
                type=formats.suffixes(),
                help="Labeled formats bring their labels along. "
                + " ".join(f"{f}: {formats.get(f).description}." for f in formats.readable()),
            )
            fmt = st.selectbox("Format", ("auto", *formats.readable()), key="import_format")
            text_column = st.text_input(
                "Text column (CSV)",
                key="import_text_column",
                placeholder="text",
                help="Needed when the CSV has no 'text' column.",
            )
            imported_by = st.text_input(
                "Annotator for imported labels",
                key="import_annotator",
                value="import",
                help="Labels in the file are stored under this name.",
            )
            skip_invalid = st.checkbox(
                "Skip records with invalid spans instead of stopping", key="import_skip_invalid"
            )
            texts_only = st.checkbox(
                "Texts only: leave the file's labels out",
                key="import_texts_only",
                help="The texts of a labeled file, open in the queue, without its labels.",
            )
            submitted = st.form_submit_button("Import", type="primary", key="import_submit")
        if submitted:
            if upload is None:
                st.warning("Choose a file to import.")
            else:
                try:
                    # the annotators' saves first: this thread imports at the background niceness
                    with bulk_priority(), services.session() as s:
                        report = import_bytes(
                            s,
                            get_project(s, target.id),
                            upload.name,
                            upload.getvalue(),
                            fmt=fmt,
                            annotator=imported_by.strip() or "import",
                            text_column=text_column.strip() or None,
                            skip_invalid=skip_invalid,
                            labels=not texts_only,
                        )
                except FewlabelError as exc:
                    st.error(f"Nothing was imported. {md_escape(exc)}")
                except Exception as exc:  # noqa: BLE001 - a file must never show a traceback
                    # A reader's failure nobody foresaw: one line here, the details in the log.
                    log.exception("import of %s failed", upload.name)
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                    st.error(
                        f"Nothing was imported. {md_escape(upload.name)} could not be read "
                        f"({md_escape(reason)})."
                    )
                else:
                    summary = report.summary()
                    state.flash("success", summary[:1].upper() + summary[1:] + ".")
                    if report.skipped_invalid:
                        shown = "; ".join(report.skipped_invalid[:5])
                        more = len(report.skipped_invalid) - 5
                        state.flash(
                            "warning",
                            f"Skipped {len(report.skipped_invalid)} invalid records: {shown}"
                            + (f" and {more} more" if more > 0 else ""),
                        )
                    st.rerun()  # the project list and the sidebar show the new counts

# ------------------------------------------------------------------ manage

target = current_project()
if target is not None:
    st.subheader(f"Manage {md_escape(target.name)}")
    st.caption("The project chosen in the sidebar.")
    rename_col, label_col, delete_col = st.columns(3, gap="large")
    with rename_col, st.form("rename_form", clear_on_submit=False, border=True):
        st.text_input("New name", key="rename_name", placeholder=target.name, max_chars=200)
        st.form_submit_button(
            "Rename project", key="rename_submit", on_click=rename, args=(target.id,)
        )
    with rename_col:
        show_refusal("rename")
    with label_col:
        if target.task == "custom":
            with st.form("relabel_form", clear_on_submit=False, border=True):
                st.selectbox("Label", target.labels, key="label_old")
                st.text_input("New label name", key="label_new", max_chars=40)
                st.form_submit_button(
                    "Rename label", key="label_submit", on_click=relabel, args=(target.id,)
                )
            show_refusal("relabel")
        else:
            st.caption(f"Task {target.task} has fixed labels: {', '.join(target.labels)}.")
        with services.session() as s:
            chosen = label_colors(get_project(s, target.id))
        with st.container(border=True):
            st.caption("Label colours in the annotator (each keeps the text readable).")
            for position, label in enumerate(target.labels):
                st.selectbox(
                    f"Colour of {md_escape(label)}",
                    range(len(LABEL_COLOR_NAMES)),
                    index=chosen.get(label, default_color(position)),
                    format_func=LABEL_COLOR_NAMES.__getitem__,
                    key=color_key(target.id, label),
                    on_change=recolor,
                    args=(target.id, label),
                )
            show_refusal("color")
    with delete_col, st.form("delete_form", clear_on_submit=False, border=True):
        st.text_input(
            "Type the project's name to delete it",
            key="delete_confirm",
            placeholder=target.name,
            help="Deletes its texts, labels, final versions and model versions' rows; "
            "model files stay on disk.",
        )
        st.form_submit_button(
            "Delete project", key="delete_submit", on_click=delete, args=(target.id,)
        )
    with delete_col:
        show_refusal("delete")

    with services.session() as s:
        p = get_project(s, target.id)
        overlap, (shared, total) = overlap_of(p), shared_texts(s, p)
    overlap_col, _ = st.columns([1, 2], gap="large")
    with overlap_col, st.form("overlap_form", clear_on_submit=False, border=True):
        st.markdown("**Overlap: several annotators on some texts**")
        st.caption(
            f"Now: {overlap.describe()} ({shared} of {total} texts). A shared text stays in the "
            "queue until that many different annotators saved it, and Review measures their "
            "agreement. Which texts is fixed by their ids, so it never changes under you."
        )
        st.number_input(
            "Annotators per shared text",
            min_value=1,
            max_value=MAX_ANNOTATORS,
            value=overlap.annotators,
            step=1,
            key=f"overlap_annotators_{target.id}",
            help="1: every text is labeled once, no overlap.",
        )
        st.number_input(
            "Share of texts (%)",
            min_value=0.0,
            max_value=100.0,
            value=100.0 * overlap.share,
            step=5.0,
            key=f"overlap_share_{target.id}",
        )
        st.form_submit_button(
            "Set overlap", key="overlap_submit", on_click=change_overlap, args=(target.id,)
        )
    with overlap_col:
        show_refusal("overlap")
