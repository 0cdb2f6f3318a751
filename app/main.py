"""fewlabel's Streamlit entry point: the database, the sidebar, and the pages.

Run it with `fewlabel serve` (which sets FEWLABEL_DB and binds 127.0.0.1).
"""

from __future__ import annotations

import streamlit as st

from app import auth, services, sidebar

st.set_page_config(page_title="fewlabel", page_icon="🏷️", layout="wide")

services.db_url()  # migrates the database once per process (cache_resource)

# One line per page, with the permission it needs (core.users); the first is where it opens.
PAGES = [
    ("annotate", st.Page("views/annotate.py", title="Annotate", icon=":material/edit_note:")),
    ("review", st.Page("views/review.py", title="Review", icon=":material/fact_check:")),
    ("train", st.Page("views/train.py", title="Train", icon=":material/model_training:")),
    ("export", st.Page("views/export.py", title="Export", icon=":material/download:")),
    ("projects", st.Page("views/projects.py", title="Projects", icon=":material/folder_open:")),
]

if auth.login_required() and auth.current() is None:
    # A server with accounts: nothing but the login page until this browser logs in.
    login = st.Page("views/login.py", title="Log in", icon=":material/login:", default=True)
    st.navigation([login], position="hidden").run()
    st.stop()

page = st.navigation([p for permission, p in PAGES if auth.allows(permission)])
sidebar.render()
page.run()
