"""Who is labeling which text: claims on open documents, taken, checked and given back.

A claim is a document's (assigned_to, assigned_at), with the unsaved spans its holder left
(draft: an undone save's, core.labeling.annotations.undo), which a new claim or a release drops.
Every change to it is one conditional UPDATE, so two annotators, in threads or processes,
never hold the same document at once; a claim older than CLAIM_LEASE lapses (its annotator
closed the tab). Every function takes the identity that acts as an argument: today the name
chosen in the browser, with accounts the logged-in user.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.errors import ConflictError
from core.store.schema import Annotation, Document, Project, utcnow

# A claim older than this returns the document to the pool (an annotator closed the tab).
CLAIM_LEASE = timedelta(minutes=30)


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the document, or their claim has lapsed."""
    return or_(Document.assigned_to.is_(None), Document.assigned_at < now - CLAIM_LEASE)


def _not_seen_by(annotator: str) -> ColumnElement[bool]:
    """The annotator has not saved or skipped the document: a text that needs several
    annotators (core.labeling.overlap) stays open after one saves it, and goes to another."""
    return ~exists().where(Annotation.document_id == Document.id, Annotation.annotator == annotator)


def _open_and_held_by(project: Project, annotator: str) -> tuple:
    """Where-clauses: the project's open documents this annotator holds."""
    return (
        Document.project_id == project.id,
        Document.assigned_to == annotator,
        Document.state == "open",
    )


def held(session: Session, project: Project, annotator: str) -> Document | None:
    """The open document this annotator holds, if any (a page reload shows it again)."""
    return session.scalar(
        select(Document)
        .where(*_open_and_held_by(project, annotator))
        .order_by(Document.assigned_at.desc())
        .limit(1)
    )


def claim_next(
    session: Session,
    project: Project,
    annotator: str,
    *,
    now: datetime,
    skip: Callable[[int], bool] | None = None,
) -> Document | None:
    """Claim the lowest-ranked open document that is free and this annotator has not saved or
    skipped; None when there is none. `skip(document id)`: documents not to serve this
    annotator (core.labeling.annotations: the texts overlap keeps for annotators, to a reviewer).

    Queue order is the `rank` column: random at import, rewritten by active learning after
    each model version (the one seam for ordering).
    """
    if skip is not None:
        return _claim_next_skipping(session, project, annotator, now, skip)
    for _ in range(20):  # a lost race retries with the next candidate
        candidate = session.scalar(
            select(Document)
            .where(*_claimable(project, annotator, now))
            .order_by(Document.rank, Document.id)
            .limit(1)
            # PostgreSQL: skip rows another transaction is claiming, so concurrent annotators
            # take different candidates instead of racing for one (SQLite renders nothing)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if candidate is None:
            return None
        # The candidate was read outside SQLite's write lock: the UPDATE checks it again.
        if _claim(session, project, candidate.id, annotator, now):
            _held_by(candidate, annotator, now)
            set_committed_value(candidate, "draft", None)
            return candidate
    raise RuntimeError("could not claim a document after 20 tries; the queue is very contended")


def _claimable(project: Project, annotator: str, now: datetime) -> tuple:
    """Where-clauses: the project's open documents free for this annotator to claim."""
    return (
        Document.project_id == project.id,
        Document.state == "open",
        _free(now),
        _not_seen_by(annotator),
    )


def _claim(session: Session, project: Project, doc_id: int, annotator: str, now: datetime) -> bool:
    """One conditional UPDATE: whether `annotator` got the document (still claimable)."""
    return (
        session.execute(
            update(Document)
            .where(Document.id == doc_id, *_claimable(project, annotator, now))
            .values(assigned_to=annotator, assigned_at=now, draft=None)  # a fresh claim
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


_SKIP_BATCH = 256


def queue_after(after: tuple[float, int]):
    """The condition for the documents after `after` (rank, id) in queue order: keyset paging,
    which reads a batch at a time without an OFFSET that rescans what came before."""
    return or_(Document.rank > after[0], and_(Document.rank == after[0], Document.id > after[1]))


def _claim_next_skipping(
    session: Session, project: Project, annotator: str, now: datetime, skip: Callable[[int], bool]
) -> Document | None:
    """claim_next past the documents `skip` names: the queue read in rank order a batch at a
    time (keyset paging), each kept candidate claimed with the same conditional UPDATE."""
    after: tuple[float, int] | None = None
    while True:
        query = select(Document.id, Document.rank).where(*_claimable(project, annotator, now))
        if after is not None:
            query = query.where(queue_after(after))
        rows = session.execute(query.order_by(Document.rank, Document.id).limit(_SKIP_BATCH)).all()
        if not rows:
            return None
        for doc_id, _rank in rows:
            if not skip(doc_id) and _claim(session, project, doc_id, annotator, now):
                return session.get(Document, doc_id, populate_existing=True)
        after = (rows[-1][1], rows[-1][0])


def _held_by(doc: Document, annotator: str | None, at: datetime | None) -> None:
    """Tell the loaded row what a claim UPDATE just wrote, instead of reading it back."""
    set_committed_value(doc, "assigned_to", annotator)
    set_committed_value(doc, "assigned_at", at)


def take(session: Session, doc: Document, annotator: str, *, now: datetime | None = None) -> None:
    """Let `annotator` write `doc`: keep or take its claim, unless another holds a live one.

    A document nobody holds (a done text corrected in Review, a script's save) is taken on
    the spot. One conditional UPDATE, so of two concurrent writers only one gets through;
    the other gets a ConflictError naming the holder, and nothing changes.
    """
    now = now or utcnow()
    taken = session.execute(
        update(Document)
        .where(Document.id == doc.id, or_(Document.assigned_to == annotator, _free(now)))
        .values(assigned_to=annotator, assigned_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken == 1:
        _held_by(doc, annotator, now)
        return
    session.refresh(doc, ["assigned_to", "assigned_at"])  # only to name the holder
    raise ConflictError(
        f"text #{doc.id} is being labeled by {doc.assigned_to!r}; nothing was saved"
    )


def release(session: Session, project: Project, annotator: str) -> int:
    """Give back the open documents this annotator holds, so they return to the queue now
    rather than when the lease lapses (they renamed themselves, or signed out).

    Returns how many were released.
    """
    return session.execute(
        update(Document)
        .where(*_open_and_held_by(project, annotator))
        .values(assigned_to=None, assigned_at=None, draft=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def release_everywhere(session: Session, annotator: str) -> int:
    """Give back every open document this annotator holds, in every project (their account
    was disabled: its texts go back to the queue now, not when the lease lapses)."""
    return session.execute(
        update(Document)
        .where(Document.assigned_to == annotator, Document.state == "open")
        .values(assigned_to=None, assigned_at=None, draft=None)
        .execution_options(synchronize_session=False)
    ).rowcount
