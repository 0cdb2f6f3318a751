"""Export: the project's labels as CSV, JSONL or CoNLL, the same bytes as `fewlabel export`."""

from __future__ import annotations

import shlex

import streamlit as st

from app import services
from app.ui import require_project
from core.annotations import annotators
from core.corpus import EXPORT_FORMATS, export_bytes
from core.projects import get_project

EVERYONE = "Everyone"
MIME = {"csv": "text/csv", "jsonl": "application/x-ndjson", "conll": "text/plain"}
PREVIEW_LINES = 12

project = require_project()

st.title("Export")

with services.session() as s:
    people = annotators(s, get_project(s, project.id))

fmt_col, who_col = st.columns(2)
fmt = fmt_col.segmented_control(
    "Format",
    EXPORT_FORMATS,
    default="csv",
    required=True,
    key="export_format",
    help="CSV: text, spans (JSON) and tagged text. JSONL: one object per text. "
    "CoNLL: one token per line with its BIO tag.",
)
who = who_col.selectbox("Annotator", (EVERYONE, *people), key="export_annotator")
include_unlabeled = st.checkbox("Include texts nobody has labeled yet", key="export_all")

options = dict(annotator=None if who == EVERYONE else who, include_unlabeled=include_unlabeled)
with services.session() as s:
    data = export_bytes(s, get_project(s, project.id), fmt, **options)

file_name = f"{project.name}.{fmt}"
st.download_button(
    f"Download {file_name}",
    data,
    file_name=file_name,
    mime=MIME.get(fmt, "text/plain"),
    type="primary",
    icon=":material/download:",
    on_click="ignore",
)
st.caption(f"{len(data):,} bytes. The same file from a shell:")
command = ["fewlabel", "export", project.name, "-o", file_name, "--format", fmt]
if options["annotator"]:
    command += ["--annotator", options["annotator"]]
if include_unlabeled:
    command.append("--all")
st.code(shlex.join(command), language="bash")

lines = data.decode("utf-8").splitlines()
st.subheader("Preview")
if lines:
    more = f"\n… {len(lines) - PREVIEW_LINES} more lines" if len(lines) > PREVIEW_LINES else ""
    st.code("\n".join(lines[:PREVIEW_LINES]) + more, language=None, wrap_lines=True)
else:
    st.caption("Nothing to export yet: label some texts, or include unlabeled ones.")
