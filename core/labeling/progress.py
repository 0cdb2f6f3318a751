"""What was labeled, read back: progress counts, the browse table of the Review page, who
labeled (tests/test_layers.py keeps Streamlit and torch out of it). Reads only; the writes
are core.labeling.annotations'.

Every function takes the session first; the caller owns the transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from core.store.schema import STAGED, Annotation, Decision, Document, Project


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    skipped: int
    open: int
    mine: int  # documents this annotator labeled (done)
    by_annotator: dict[str, int]
    # answers about single suggested spans (core.labeling.decisions), "ignore" included
    decisions: int = 0
    decisions_by_annotator: dict[str, int] = field(default_factory=dict)


def progress(session: Session, project: Project, annotator: str | None = None) -> Progress:
    counts = dict(
        session.execute(
            select(Document.state, func.count())
            .where(Document.project_id == project.id)
            .group_by(Document.state)
        ).all()
    )
    by_annotator = dict(
        session.execute(
            select(Annotation.annotator, func.count())
            .join(Document)
            .where(Document.project_id == project.id, Annotation.status == "done")
            .group_by(Annotation.annotator)
        ).all()
    )
    decided = dict(
        session.execute(
            select(Decision.annotator, func.count())
            .join(Document, Document.id == Decision.document_id)
            .where(Document.project_id == project.id, Document.state != STAGED)
            .group_by(Decision.annotator)
        ).all()
    )
    return Progress(
        total=sum(counts.values()),
        done=counts.get("done", 0),
        skipped=counts.get("skipped", 0),
        open=counts.get("open", 0),
        mine=by_annotator.get(annotator, 0) if annotator else 0,
        by_annotator=by_annotator,
        decisions=sum(decided.values()),
        decisions_by_annotator=decided,
    )


@dataclass(frozen=True)
class ReviewRow:
    document_id: int
    external_id: str | None
    text: str
    state: str
    annotator: str | None
    status: str | None
    spans: list[dict]
    updated_at: datetime | None
    decisions: int = 0  # the text's answers about single suggested spans, whoever gave them


def browse(
    session: Session,
    project: Project,
    *,
    search: str | None = None,
    label: str | None = None,
    annotator: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ReviewRow], int]:
    """Documents with their annotations for review, filtered; returns (rows, total matching).

    A document with several annotators gives one row per annotation.
    """
    stmt = (
        select(Document, Annotation)
        .outerjoin(Annotation, Annotation.document_id == Document.id)
        .where(Document.project_id == project.id)
    )
    if search:
        stmt = stmt.where(Document.text.contains(search, autoescape=True))
    if state:
        stmt = stmt.where(Document.state == state)
    if annotator:
        stmt = stmt.where(Annotation.annotator == annotator)
    if label:
        # JSON columns serialise with json.dumps defaults, so a label appears as this literal.
        needle = json.dumps({"label": label})[1:-1]
        stmt = stmt.where(cast(Annotation.spans, String).contains(needle, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    paged = stmt.order_by(Document.id, Annotation.id).limit(limit).offset(offset)
    page = [(d, a) for d, a in session.execute(paged).all()]
    decided = dict(
        session.execute(
            select(Decision.document_id, func.count())
            .where(Decision.document_id.in_({d.id for d, _ in page}))
            .group_by(Decision.document_id)
        ).all()
    )
    return [
        ReviewRow(
            document_id=d.id,
            external_id=d.external_id,
            text=d.text,
            state=d.state,
            annotator=a.annotator if a else None,
            status=a.status if a else None,
            spans=list(a.spans) if a else [],
            updated_at=a.updated_at if a else None,
            decisions=decided.get(d.id, 0),
        )
        for d, a in page
    ], total


def annotators(session: Session, project: Project) -> list[str]:
    return list(
        session.scalars(
            select(Annotation.annotator)
            .join(Document)
            .where(Document.project_id == project.id)
            .distinct()
            .order_by(Annotation.annotator)
        )
    )
