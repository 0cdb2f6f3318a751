"""The staging of a long import: all or nothing for the user, batch by batch for SQLite.

SQLite has one writer at a time, so an import in a single transaction would hold the write
lock for minutes and fail every annotator's save past the 30 s busy timeout. An import of more
than one batch (IMPORT_BATCH documents, core.io.imports) therefore commits each batch as *staged*
rows: documents with state "importing" and the import's tag (`import:HOST:PID:NONCE`) in
assigned_to (and their place in the file as rank: the random rank is drawn as they are
published), annotations with status "importing". Every reader of the data selects by state
("open", "done", "skipped") or status ("done"), so staged rows are in no queue, no training
set, no export, no count of open texts.

When the file is read to its end, one transaction publishes every staged row (the last batch
goes in with it): a reader sees none of the file before that commit and all of it after,
whatever kills the import when. A failure or a kill -9 before the commit leaves the rows
staged, invisible; a failure deletes them again, batch by batch, and what a kill leaves is
deleted by the next import into the project (discard_stale_imports) or ignored until then.
An import counts as dead when the process in its tag is gone (same host) or nothing was staged
under the tag for STALE_AFTER (another host).

The price of that one transaction: on SQLite it holds the write lock while it runs (about
0.2 s per 10,000 texts on the 2-core machine), so a save made meanwhile waits for it. Batches
of commits had let saves through, but a reader then saw part of the file (a kill -9 at that
moment left 26-68 % of a 100,000-line file labelable until the next import).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from datetime import timedelta

from sqlalchemy import bindparam, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from core.defaults import IMPORT_BATCH
from core.store.db import executemany
from core.store.schema import STAGED, Annotation, Document, utcnow

log = logging.getLogger(__name__)

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
    """The text_hash of the row with which earlier versions marked an import read whole and
    being published a batch at a time; an import they left killed is still finished by
    discard_stale_imports."""
    return "publish:" + tag.rpartition(":")[2]


def publish(
    session: Session, project_id: int, tag: str, batch: int, rng: random.Random | None = None
) -> None:
    """Make a complete import visible in one transaction, which this commits: its annotations
    done (a skipped mark stays skipped), its documents done when labeled, skipped when only
    skipped, open otherwise, each with its random queue rank
    (drawn from `rng` in id order, the file's).

    The rank is drawn here, not when the row was staged: a staged row waits at the end of the
    queue index (its rank is its place in the file), so staging appends to that index instead
    of writing it at random places, which was a third of a long import's time on SQLite. The
    rows are read and updated `batch` at a time inside the transaction, to bound memory."""
    rng = rng or random.Random()
    roomy_cache(session)
    staged_ids = select(Document.id).where(*_staged(project_id, tag))
    session.execute(
        update(Annotation)
        .where(Annotation.document_id.in_(staged_ids), Annotation.status == STAGED)
        .values(status="done")
        .execution_options(synchronize_session=False)
    )
    labeled = exists().where(Annotation.document_id == Document.id, Annotation.status == "done")
    skipped = exists().where(Annotation.document_id == Document.id)
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
    last = 0
    while True:
        rows = session.execute(
            select(Document.id, labeled, skipped)
            .where(
                *_staged(project_id, tag), Document.id > last, Document.text_hash != _marker(tag)
            )
            .order_by(Document.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        executemany(
            session,
            visible,
            [
                {
                    "doc_id": doc_id,
                    "new_state": "done" if done else "skipped" if marked else "open",
                    "new_rank": rng.random(),
                }
                for doc_id, done, marked in rows
            ],
        )
        last = rows[-1][0]
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
            log.info(
                "finishing import %s, which stopped while publishing (an earlier version's)", tag
            )
            publish(session, pid, tag, batch)
        else:
            removed += _discard(session, pid, tag, batch)
    return removed


def abandon(session: Session, project_id: int, tag: str, batch: int) -> None:
    """After a failure: delete a staged import's rows. If even that fails (the database is
    gone), they stay invisible and the next import into the project deletes them
    (discard_stale_imports); the error that stopped this one is the one reported."""
    try:
        session.rollback()
        _discard(session, project_id, tag, batch)
    except Exception:  # noqa: BLE001 - the import's own error is the one to report
        log.warning("could not delete the staged rows of import %s; the next import will", tag)
