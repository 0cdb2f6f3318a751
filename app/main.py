"""fewlabel's Streamlit entry point: the database, the sidebar, and the pages.

Run it with `fewlabel serve` (which sets FEWLABEL_DB and binds 127.0.0.1).
"""

from __future__ import annotations

import streamlit as st

from app import auth, services, sidebar

st.set_page_config(page_title="fewlabel", page_icon="🏷️", layout="wide")

services.db_url()  # migrates the database once per process (cache_resource)

# One line per page: the permission it needs (core.labeling.users), its script, title and icon.
PAGES = [
    ("annotate", "views/annotate.py", "Annotate", ":material/edit_note:"),
    ("annotate", "views/teach.py", "Teach", ":material/school:"),
    ("review", "views/review.py", "Review", ":material/fact_check:"),
    ("train", "views/train.py", "Train", ":material/model_training:"),
    ("export", "views/export.py", "Export", ":material/download:"),
    ("projects", "views/projects.py", "Projects", ":material/folder_open:"),
]

if auth.login_required() and auth.current() is None:
    # A server with accounts: nothing but the login page until this browser logs in.
    login = st.Page("views/login.py", title="Log in", icon=":material/login:", default=True)
    st.navigation([login], position="hidden").run()
    st.stop()


def landing() -> str:
    """The page a session opens on: Annotate for an annotator (and with no accounts), Review
    for a reviewer, Projects for an admin. Only Annotate claims a text, so a reviewer or an
    admin holds none until they open it."""
    account = auth.current() if auth.login_required() else None
    if account is None:
        return "annotate"
    return next((p for p in ("projects", "review") if account.can(p)), "annotate")


opens = landing()
# the first page of that permission (Teach needs "annotate" too, and Annotate opens)
first = next(script for permission, script, *_ in PAGES if permission == opens)
page = st.navigation(
    [
        st.Page(script, title=title, icon=icon, default=script == first)
        for permission, script, title, icon in PAGES
        if auth.allows(permission)
    ]
)
sidebar.render()
page.run()
