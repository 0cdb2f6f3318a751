"""Shared fixtures: real, migrated SQLite files in a temporary folder, and seeded projects."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest

from core.annotations import browse, set_ranks
from core.corpus import import_bytes
from core.db import session_scope, upgrade
from core.projects import create_project


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


def seed_project(
    url: str,
    name: str,
    texts: Sequence[str],
    *,
    task: str = "acronym",
    labels: Sequence[str] | None = None,
) -> list[int]:
    """Create a project holding `texts`, queued in the given order; returns their ids."""
    data = "\n".join(json.dumps({"text": t}) for t in texts).encode()
    with session_scope(url) as s:
        project = create_project(s, name, task, list(labels) if labels else None)
        import_bytes(s, project, f"{name}.jsonl", data)
        rows, _ = browse(s, project, limit=len(texts))
        by_text = {r.text: r.document_id for r in rows}
        ids = [by_text[t] for t in texts]
        set_ranks(s, project, {doc_id: float(i) for i, doc_id in enumerate(ids)})
    return ids


@pytest.fixture
def make_project(db_url) -> Callable[..., list[int]]:
    """seed_project bound to the test's database: make_project(name, texts, task=...)."""

    def make(name: str, texts: Sequence[str], **kwargs) -> list[int]:
        return seed_project(db_url, name, texts, **kwargs)

    return make
