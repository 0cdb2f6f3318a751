"""Helpers shared by the tests: seeded projects and the sentences they hold.

Fixtures live in conftest.py; plain functions and data live here, imported by name
(`from helpers import seed_project`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.annotations import browse, set_ranks
from core.corpus import import_bytes
from core.db import session_scope
from core.projects import create_project

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
