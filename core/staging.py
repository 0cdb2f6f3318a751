"""The staging of a long import: all or nothing for the user, batch by batch for SQLite.

SQLite has one writer at a time, so an import in a single transaction would hold the write
lock for minutes and fail every annotator's save past the 30 s busy timeout. An import of more
than one batch (IMPORT_BATCH documents, core.imports) therefore commits each batch as *staged*
rows: documents with state "importing" and the import's tag (`import:HOST:PID:NONCE`) in
assigned_to (and their place in the file as rank: the random rank is drawn as they are
published), annotations with status "importing". Every reader of the data selects by state
("open", "done", "skipped") or status ("done"), so staged rows are in no queue, no training
set, no export, no count of open texts.

When the file is read to its end, the import commits a marker row (staged too, its
text_hash `publish:NONCE`): the decision that it succeeded. Until then any failure (a bad
line, Ctrl-C, a lost connection) deletes the staged rows again, batch by batch. After it, the
rows are published a batch per transaction (an UPDATE of 600,000 rows would hold SQLite's
lock for about 10 s), then the marker is deleted; for those seconds part of the file is
visible. A kill -9 cannot settle its own rows: they stay staged, invisible, and the next import
into the project settles them before it reads a line (discard_stale_imports): published when
the marker is there, deleted when it is not. An import counts as dead when the process in its
tag is gone (same host) or nothing was staged under the tag for STALE_AFTER (another host).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from datetime import timedelta

from sqlalchemy import bindparam, delete, exists, func, insert, select, text, update
from sqlalchemy.orm import Session

from core.db import executemany
from core.defaults import IMPORT_BATCH
from core.schema import Annotation, Document, utcnow

log = logging.getLogger(__name__)

# The state and status of rows a long import has not published.
STAGED = "importing"
_TAG_PREFIX = "import:"
STALE_AFTER = timedelta(minutes=15)
# SQLite's page cache for an import's connection (see roomy_cache).
IMPORT_CACHE_KIB = 256 * 1024


def new_tag() -> str:
    """The tag an import stages its rows under: this host, this process, a nonce."""
    return f"{_TAG_PREFIX}{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _alive(tag: str) -> bool:
    """Whether the import that wrote `tag` may still be running (this host: its process is)."""
    parts = tag[len(_TAG_PREFIX) :].split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname()[:40] or not parts[1].isdigit():
        return True  # another machine's: only its age tells
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def roomy_cache(session: Session) -> None:
    """On SQLite, let the connection of the session's transaction cache IMPORT_CACHE_KIB of
    pages. A batch writes its rows into the text-hash index (and publishing into the queue
    index) at random places; with SQLite's default 2 MB cache most of those pages were read
    and spilled again by system calls, half the CPU time of a 1,000,000-line import. The
    memory is only taken as pages are read, and only by connections an import used."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}"))


def _staged(project_id: int, tag: str):
    return (
        Document.project_id == project_id,
        Document.assigned_to == tag,
        Document.state == STAGED,
    )


def _discard(session: Session, project_id: int, tag: str, batch: int) -> int:
    """Delete the rows an import staged, a batch per transaction (they are invisible, so a
    part deleted is no partial state anyone sees)."""
    removed = 0
    while True:
        ids = session.scalars(select(Document.id).where(*_staged(project_id, tag)).limit(batch))
        ids = list(ids)
        if not ids:
            return removed
        session.execute(delete(Annotation).where(Annotation.document_id.in_(ids)))
        session.execute(delete(Document).where(Document.id.in_(ids)))
        session.commit()
        removed += len(ids)


def _marker(tag: str) -> str:
    """The text_hash of the row that says an import was read whole and is being published."""
    return "publish:" + tag.rpartition(":")[2]


def mark_complete(session: Session, project_id: int, tag: str) -> None:
    """Commit the import's decision: every batch is in; from here it is published, even by
    another process if this one dies (the marker row says so)."""
    session.execute(
        insert(Document).values(
            project_id=project_id,
            text="",
            text_hash=_marker(tag),
            meta={},
            state=STAGED,
            assigned_to=tag,
            assigned_at=utcnow(),
            rank=0.0,
            created_at=utcnow(),
        )
    )
    session.commit()


def publish(
    session: Session, project_id: int, tag: str, batch: int, rng: random.Random | None = None
) -> None:
    """Make a complete import visible, a batch per transaction: its annotations done, its
    documents done when labeled and open otherwise, each with its random queue rank (drawn
    from `rng` in id order, the file's); the marker goes last.

    A batch, not one UPDATE of every row: on SQLite an UPDATE of 600,000 rows holds the write
    lock for about 10 s, and every annotator's save would wait for it. The rank is drawn here,
    not when the row was staged: a staged row waits at the end of the queue index (its rank
    is its place in the file), so staging appends to that index instead of writing it at
    random places, which was a third of a long import's time on SQLite."""
    rng = rng or random.Random()
    labeled = exists().where(Annotation.document_id == Document.id)
    docs = Document.__table__
    visible = (
        update(docs)
        .where(docs.c.id == bindparam("doc_id"), docs.c.state == STAGED)
        .values(
            state=bindparam("new_state"),
            rank=bindparam("new_rank"),
            assigned_to=None,
            assigned_at=None,
        )
    )
    while True:
        rows = session.execute(
            select(Document.id, labeled)
            .where(*_staged(project_id, tag), Document.text_hash != _marker(tag))
            .order_by(Document.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        roomy_cache(session)
        session.execute(
            update(Annotation)
            .where(Annotation.document_id.in_([r[0] for r in rows]), Annotation.status == STAGED)
            .values(status="done")
            .execution_options(synchronize_session=False)
        )
        executemany(
            session,
            visible,
            [
                {
                    "doc_id": doc_id,
                    "new_state": "done" if done else "open",
                    "new_rank": rng.random(),
                }
                for doc_id, done in rows
            ],
        )
        session.commit()
    session.execute(
        delete(Document).where(*_staged(project_id, tag), Document.text_hash == _marker(tag))
    )
    session.commit()


def discard_stale_imports(
    session: Session, project_id: int | None = None, *, batch: int = IMPORT_BATCH
) -> int:
    """Settle what killed imports left staged (in one project, or all): one read whole (its
    marker is there) is published, any other is deleted. Returns the number of documents
    deleted. Commits the session when there is something to settle, only then."""
    now = utcnow()
    where = [Document.state == STAGED]
    if project_id is not None:
        where.append(Document.project_id == project_id)
    rows = session.execute(
        select(Document.project_id, Document.assigned_to, func.max(Document.assigned_at))
        .where(*where)
        .group_by(Document.project_id, Document.assigned_to)
    ).all()
    removed = 0
    for pid, tag, newest in rows:
        tag = tag or ""
        dead = not tag.startswith(_TAG_PREFIX) or not _alive(tag)
        if not (dead or newest is None or newest < now - STALE_AFTER):
            continue
        complete = select(Document.id).where(*_staged(pid, tag), Document.text_hash == _marker(tag))
        if tag.startswith(_TAG_PREFIX) and session.scalar(complete) is not None:
            log.info("finishing import %s, which stopped while publishing", tag)
            publish(session, pid, tag, batch)
        else:
            removed += _discard(session, pid, tag, batch)
    return removed


def abandon(
    session: Session,
    project_id: int,
    tag: str,
    batch: int,
    *,
    complete: bool,
    rng: random.Random | None = None,
) -> None:
    """After a failure: delete a staged import's rows, or finish publishing one that was read
    whole. If even that fails (the database is gone), the next import into the project does
    it (discard_stale_imports), and the error that stopped this one is the one reported."""
    try:
        session.rollback()
        if complete:
            publish(session, project_id, tag, batch, rng)
        else:
            _discard(session, project_id, tag, batch)
    except Exception:  # noqa: BLE001 - the import's own error is the one to report
        log.warning("could not settle the rows of import %s; the next import will", tag)
