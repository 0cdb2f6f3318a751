"""fewlabel's Streamlit entry point: the database, the sidebar, and the pages.

Run it with `fewlabel serve` (which sets FEWLABEL_DB and binds 127.0.0.1).
"""

from __future__ import annotations

import streamlit as st

from app import services, sidebar

st.set_page_config(page_title="fewlabel", page_icon="🏷️", layout="wide")

services.db_url()  # migrates the database once per process (cache_resource)

# One line per page; the first is where the app opens.
PAGES = [
    st.Page("views/annotate.py", title="Annotate", icon=":material/edit_note:", default=True),
    st.Page("views/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/export.py", title="Export", icon=":material/download:"),
    st.Page("views/projects.py", title="Projects", icon=":material/folder_open:"),
]

page = st.navigation(PAGES)
sidebar.render()
page.run()
