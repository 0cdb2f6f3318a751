"""The embedded default: a demo project loaded from sample_data/ on first start."""

from __future__ import annotations

from sqlalchemy import select

from core.config import SAMPLE_DATA
from core.io.imports import import_file
from core.labeling.projects import create_project
from core.store.db import ensure_schema, session_scope
from core.store.schema import Project

DEMO_NAME = "demo"
DEMO_FILE = SAMPLE_DATA / "wiki_sentences.jsonl"


def ensure_demo(url: str) -> str | None:
    """Migrate the database; when it holds no project, create `demo` from the sample corpus.

    Returns a one-line report when the demo was created, else None.
    """
    ensure_schema(url)
    with session_scope(url) as session:
        if session.scalar(select(Project.id).limit(1)) is not None:
            return None
        if not DEMO_FILE.is_file():
            return None
        project = create_project(session, DEMO_NAME, "acronym")
        report = import_file(session, project, DEMO_FILE, seed=0)
        return f"created project {DEMO_NAME!r}: {report.summary()}"
