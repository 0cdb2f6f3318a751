"""Projects: the list with progress, a form to create one, and a file import."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services, state
from app.ui import current_project, md_escape, projects, show_flashes
from core import formats
from core.corpus import import_bytes
from core.errors import FewlabelError
from core.projects import create_project, get_project
from core.text import TASK_LABELS, TASKS

TASK_HELP = {
    "acronym": "short forms and their long forms: " + ", ".join(TASK_LABELS["acronym"]),
    "concept": "concepts of interest: " + ", ".join(TASK_LABELS["concept"]),
    "custom": "your own labels",
}

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
    with st.form("create_form", clear_on_submit=True, border=True):
        name = st.text_input("Name", placeholder="e.g. acronyms-2024", key="new_name")
        task = st.radio(
            "Task",
            TASKS,
            key="new_task",
            horizontal=True,
            format_func=str.capitalize,
            help=" · ".join(f"{t}: {TASK_HELP[t]}" for t in TASKS),
        )
        labels = st.text_input(
            "Labels (custom task only)",
            key="new_labels",
            placeholder="PERSON, ORG, PLACE",
            help="Comma-separated; up to nine get number keys 1-9 on the Annotate page.",
        )
        if st.form_submit_button("Create project", type="primary", key="new_submit"):
            try:
                with services.session() as s:
                    label_list = (
                        [x for x in labels.split(",") if x.strip()] if task == "custom" else None
                    )
                    created = create_project(s, name, task, label_list)
                    created_name, created_labels = created.name, list(created.labels)
            except FewlabelError as exc:
                st.error(md_escape(exc))
            else:
                state.select_project(created_name)
                state.flash(
                    "success",
                    f"Created project {created_name} with labels {', '.join(created_labels)}.",
                )
                st.rerun()

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
            submitted = st.form_submit_button("Import", type="primary", key="import_submit")
        if submitted:
            if upload is None:
                st.warning("Choose a file to import.")
            else:
                try:
                    with services.session() as s:
                        report = import_bytes(
                            s,
                            get_project(s, target.id),
                            upload.name,
                            upload.getvalue(),
                            fmt=fmt,
                            annotator=imported_by.strip() or "import",
                            text_column=text_column.strip() or None,
                            skip_invalid=skip_invalid,
                        )
                except FewlabelError as exc:
                    st.error(f"Nothing was imported. {md_escape(exc)}")
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
