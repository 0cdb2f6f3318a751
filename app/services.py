"""The app's one doorway to core: the database URL, migrated once, and a session per action.

Pages open a `session()` for each thing they do; it commits when the block ends and rolls
back on any error, so a failed import or save writes nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import streamlit as st
from sqlalchemy.orm import Session

from core.config import get_settings
from core.store.db import ensure_schema, session_scope


@st.cache_resource(show_spinner="Preparing the database…")
def _migrated(url: str) -> str:
    ensure_schema(url)
    return url


def db_url() -> str:
    """The database URL from the settings (FEWLABEL_DB), upgraded to the newest schema once."""
    return _migrated(get_settings().db_url)


def session() -> AbstractContextManager[Session]:
    return session_scope(db_url())
