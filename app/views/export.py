"""Export: the project's labels in any writable format, the same bytes as `fewlabel export`.

The file is built when the button is clicked (a deferred download), not on every rerun: a
project of 100,000 texts would otherwise rebuild it whenever an option changes. The page
itself shows a preview of the first few documents only.
"""

from __future__ import annotations

import shlex

import streamlit as st

from app import auth, services
from app.services import annotators, export_bytes, formats, get_project
from app.ui import require_project

EVERYONE = "Everyone"
PREVIEW_LINES = 12
PREVIEW_DOCS = 12  # documents exported for the preview (CoNLL: a dozen lines is one or two)

auth.require_page("export")  # the navigation hides it from other roles
project = require_project()

st.title("Export")

with services.session() as s:
    people = annotators(s, get_project(s, project.id))

fmt_col, who_col = st.columns(2)
fmt = fmt_col.segmented_control(
    "Format",
    formats.writable(),
    default="csv",
    required=True,
    key="export_format",
    help=" ".join(f"{f}: {formats.get(f).description}." for f in formats.writable()),
)
chosen = formats.get(fmt)
who = who_col.selectbox("Annotator", (EVERYONE, *people), key="export_annotator")
include_unlabeled = st.checkbox("Include texts nobody has labeled yet", key="export_all")

options = dict(annotator=None if who == EVERYONE else who, include_unlabeled=include_unlabeled)


def build(limit: int | None = None) -> bytes:
    with services.session() as s:
        return export_bytes(s, get_project(s, project.id), fmt, limit=limit, **options)


file_name = f"{project.name}{chosen.suffixes[0]}"
st.download_button(
    f"Download {file_name}",
    build,
    file_name=file_name,
    mime=chosen.mime,
    type="primary",
    icon=":material/download:",
    on_click="ignore",
)
st.caption("The file is built when you click. The same file from a shell:")
command = ["fewlabel", "export", project.name, "-o", file_name, "--format", fmt]
if options["annotator"]:
    command += ["--annotator", options["annotator"]]
if include_unlabeled:
    command.append("--all")
st.code(shlex.join(command), language="bash")

st.subheader("Preview")
lines = [] if chosen.binary else build(PREVIEW_DOCS).decode("utf-8").splitlines()
if chosen.binary:
    st.caption(f"A {fmt} file is binary: download it to look inside.")
elif lines:
    more = "\n…" if len(lines) > PREVIEW_LINES else ""
    st.code("\n".join(lines[:PREVIEW_LINES]) + more, language=None, wrap_lines=True)
else:
    st.caption("Nothing to export yet: label some texts, or include unlabeled ones.")
