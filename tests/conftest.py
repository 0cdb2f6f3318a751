"""Shared fixtures: real, migrated SQLite files in a temporary folder, and seeded projects."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES, seed_project, tiny_backbone

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


@pytest.fixture
def make_project(db_url) -> Callable[..., list[int]]:
    """seed_project bound to the test's database: make_project(name, texts, task=...)."""

    def make(name: str, texts: Sequence[str], **kwargs) -> list[int]:
        return seed_project(db_url, name, texts, **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny randomly initialised BERT with a vocabulary for the helpers' sentences."""
    words = " ".join(ACRONYM_SENTENCES + POOL_SENTENCES).split()
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", words)
