"""Shared fixtures: real, migrated SQLite files in a temporary folder."""

from __future__ import annotations

import pytest

from core.db import session_scope, upgrade


@pytest.fixture
def db_url(tmp_path) -> str:
    """A fresh SQLite database built by the Alembic migrations."""
    url = f"sqlite:///{tmp_path / 'fewlabel.db'}"
    upgrade(url)
    return url


@pytest.fixture
def session(db_url):
    """A session in one transaction, committed at the end of the test."""
    with session_scope(db_url) as s:
        yield s
