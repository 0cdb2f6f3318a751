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


ACRONYM_SENTENCES = [
    "The WHO and NASA agreed .",
    "We trained a CNN on GPU machines .",
    "Results on MNIST were good .",
    "The IBM team used SVM models .",
    "An RNN beats an HMM here .",
    "See the API of the LSTM .",
]
POOL_SENTENCES = [
    f"sentence number {i} mentions {w} today ."
    for i, w in enumerate(["BERT", "nothing", "XYZ", "cats", "ACL", "dogs", "EMNLP", "trees"] * 3)
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny randomly initialised BERT with a vocabulary for the sentences above."""
    from core.model.backbone import tiny_backbone

    words = " ".join(ACRONYM_SENTENCES + POOL_SENTENCES).split()
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", words)


def seed_labeled_project(url: str, name: str = "p", *, strategy: str = "entropy") -> None:
    """An acronym project: ACRONYM_SENTENCES labeled by `gold` (all-caps words are SHORT)
    and POOL_SENTENCES unlabeled."""
    conll = "\n\n".join(
        "\n".join(f"{w}\t{'B-SHORT' if w.isupper() and len(w) > 1 else 'O'}" for w in s.split())
        for s in ACRONYM_SENTENCES
    )
    with session_scope(url) as s:
        p = create_project(s, name, "acronym")
        p.strategy = strategy
        import_bytes(s, p, "gold.conll", (conll + "\n").encode(), annotator="gold")
        import_bytes(s, p, "pool.txt", "\n".join(POOL_SENTENCES).encode())
