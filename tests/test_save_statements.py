"""How many SQL statements the annotator's round trip issues (issues 12 and 13).

Under concurrency a save's latency is mostly its statements: each is a round trip to
PostgreSQL, and on SQLite the ones after the claim run under the database's write lock that
every other save waits for. A save was 10 statements (the document and its claim read back
several times); these tests keep the count from growing back unnoticed.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from core.labeling import annotations as svc
from core.labeling import progress as listing
from core.labeling.projects import get_project
from core.store.db import get_engine, session_scope
from core.store.schema import Annotation

TEXTS = [f"Text {i} about the WHO and NASA." for i in range(6)]
SPAN = {"start": 17, "end": 20, "label": "SHORT"}  # WHO

# The project is read by the caller (the page, the CLI) before it calls the service.
MAX_NEXT = 4  # held?, free candidate, claim UPDATE, stored suggestions
MAX_SAVE = 6  # document, suggestions, claim UPDATE, annotations, annotation write, document
MAX_SKIP = 5  # save's, less the suggestions
MAX_UNDO = 5  # last annotation with its document, claim UPDATE, annotations, two writes


@contextmanager
def counted(url: str) -> Iterator[list[str]]:
    """The statements the engine sends while the block runs."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        statements.append(statement)

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _call(url: str, fn):
    """fn(session, project) in its own transaction; returns (its result, the statements
    it sent), the project's read and the commit not counted."""
    with session_scope(url) as s:
        project = get_project(s, "p")
        with counted(url) as statements:
            result = fn(s, project)
    return result, statements


def _report(statements: list[str]) -> str:
    return "\n".join(" ".join(x.split())[:120] for x in statements)


@pytest.mark.both_backends
def test_next_save_skip_undo_stay_within_a_few_statements(db_url, make_project):
    make_project("p", TEXTS)

    task, sql = _call(db_url, lambda s, p: svc.next_document(s, p, "ann"))
    assert len(sql) <= MAX_NEXT, _report(sql)
    _, sql = _call(db_url, lambda s, p: svc.next_document(s, p, "ann"))  # the held text again
    assert len(sql) <= MAX_NEXT, _report(sql)

    _, sql = _call(db_url, lambda s, p: svc.save(s, p, task.document_id, "ann", [SPAN]))
    assert len(sql) <= MAX_SAVE, _report(sql)
    # a second save of the same text keeps the first in its history: still no more statements
    _, sql = _call(db_url, lambda s, p: svc.save(s, p, task.document_id, "ann", []))
    assert len(sql) <= MAX_SAVE, _report(sql)

    doc_id, sql = _call(db_url, lambda s, p: svc.undo(s, p, "ann"))
    assert doc_id == task.document_id and len(sql) <= MAX_UNDO, _report(sql)

    # undo went back to the first save: the text is done, held by nobody; a skip takes it
    _, sql = _call(db_url, lambda s, p: svc.skip(s, p, task.document_id, "ann"))
    assert len(sql) <= MAX_SKIP, _report(sql)

    with session_scope(db_url) as s:  # what the fewer statements wrote is what save writes
        ann = s.scalar(select(Annotation).where(Annotation.annotator == "ann"))
        assert (ann.document_id, ann.status, ann.spans) == (task.document_id, "skipped", [])
        assert [h["spans"] for h in ann.previous] == [[SPAN]]  # undo's history, then the skip
        assert listing.progress(s, get_project(s, "p")).skipped == 1
