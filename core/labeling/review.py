"""Review: a document's final version and where its annotators disagree.

A reviewer's save is the document's final version, kept in its own row beside the annotators'
annotations, which it never changes; export and training take it before any annotation.
Like core.labeling.annotations, every function takes the session first and the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.labeling import claims
from core.labeling.annotations import UNDO_DEPTH, get_document
from core.store.schema import Annotation, Document, FinalAnnotation, Project, utcnow
from core.text import Span, validate_spans


@dataclass(frozen=True)
class Version:
    """One way a text is labeled: an annotator's done annotation, or the final version."""

    who: str  # the annotator, or for the final version its reviewer
    spans: list[dict]
    at: datetime | None
    final: bool = False
    based_on: str | None = None  # final only: whose annotation the reviewer started from

    @property
    def source(self) -> str:
        """Where these spans come from, as export writes it."""
        return final_source(self.who, self.at) if self.final else annotation_source(self.who)


def final_source(reviewer: str, at: datetime | None) -> str:
    when = f" at {at.isoformat(sep=' ', timespec='minutes')}" if at else ""
    return f"final (reviewed by {reviewer}{when})"


def annotation_source(annotator: str) -> str:
    return f"annotation by {annotator}"


def span_set(spans: Sequence[dict]) -> frozenset[tuple[int, int, str]]:
    """The spans as compared: where and what, not how they were made (an `origin` field)."""
    return frozenset((int(s["start"]), int(s["end"]), str(s["label"])) for s in spans)


def _reviewer(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("a reviewer name is required")
    if len(name) > 100:
        raise ValidationError("reviewer names are at most 100 characters")
    return name


def _final_version(row: FinalAnnotation) -> Version:
    return Version(row.reviewer, list(row.spans), row.reviewed_at, True, row.based_on)


def final_of(session: Session, document_ids: Sequence[int]) -> dict[int, FinalAnnotation]:
    """The final versions of these documents, by document id (those that have one)."""
    if not document_ids:
        return {}
    rows = session.scalars(
        select(FinalAnnotation).where(FinalAnnotation.document_id.in_(list(document_ids)))
    )
    return {row.document_id: row for row in rows}


def finalize(
    session: Session,
    project: Project,
    document_id: int,
    reviewer: str,
    spans: Sequence[dict | Span],
    *,
    based_on: str | None = None,
) -> FinalAnnotation:
    """Store a reviewer's spans as the document's final version; the annotations stay as they are.

    Spans are validated as a save's are (SpanError, nothing written). A text an annotator is
    labeling right now is refused (ConflictError), as save refuses it. The document leaves the
    queue: it is done. A later review replaces the final version and keeps the earlier one in
    `previous`.
    """
    reviewer = _reviewer(reviewer)
    doc = get_document(session, project, document_id)
    clean = validate_spans(doc.text, spans, project.labels, doc.tokens)
    claims.take(session, doc, reviewer)
    now = utcnow()
    row = session.scalar(select(FinalAnnotation).where(FinalAnnotation.document_id == doc.id))
    if row is None:
        row = FinalAnnotation(document_id=doc.id, previous=[], created_at=now)
        session.add(row)
    else:
        earlier = {
            "reviewer": row.reviewer,
            "based_on": row.based_on,
            "spans": list(row.spans),
            "reviewed_at": row.reviewed_at.isoformat(),
        }
        row.previous = [*list(row.previous or [])[-(UNDO_DEPTH - 1) :], earlier]
    row.reviewer, row.based_on, row.reviewed_at = reviewer, based_on, now
    row.spans = [s.as_dict() for s in clean]
    doc.assigned_to, doc.assigned_at, doc.state = None, None, "done"
    session.flush()
    return row


def versions(session: Session, project: Project, document_id: int) -> list[Version]:
    """Every done annotation of a document, oldest first, then its final version if any."""
    doc = get_document(session, project, document_id)
    anns = session.scalars(
        select(Annotation)
        .where(Annotation.document_id == doc.id, Annotation.status == "done")
        .order_by(Annotation.updated_at, Annotation.id)
    )
    out = [Version(a.annotator, list(a.spans), a.updated_at) for a in anns]
    final = final_of(session, [doc.id]).get(doc.id)
    return out + ([_final_version(final)] if final else [])


@dataclass(frozen=True)
class Disagreement:
    """A text whose annotators' done annotations differ, each annotator's version beside the
    others, with the final version when a reviewer has settled it."""

    document_id: int
    external_id: str | None
    text: str
    versions: list[Version]
    final: Version | None

    @property
    def agreed(self) -> list[dict]:
        """The spans every annotator marked, in text order."""
        common = frozenset.intersection(*(span_set(v.spans) for v in self.versions))
        return [{"start": a, "end": b, "label": lbl} for a, b, lbl in sorted(common)]


def disagreements(
    session: Session,
    project: Project,
    *,
    search: str | None = None,
    annotator: str | None = None,
    unsettled: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Disagreement], int]:
    """Texts where two annotators' done annotations differ; returns (a page, total).

    Spans are compared by start, end and label. `annotator` keeps texts that annotator is one
    of the disagreeing parties of; `unsettled` keeps texts without a final version.
    """
    multi = (
        select(Annotation.document_id)
        .join(Document)
        .where(Document.project_id == project.id, Annotation.status == "done")
        .group_by(Annotation.document_id)
        .having(func.count() > 1)
    )
    if search:
        multi = multi.where(Document.text.contains(search, autoescape=True))
    if unsettled:
        settled = select(FinalAnnotation.document_id)
        multi = multi.where(Annotation.document_id.not_in(settled))
    rows = session.execute(
        select(Document, Annotation)
        .join(Annotation, Annotation.document_id == Document.id)
        .where(Document.id.in_(multi), Annotation.status == "done")
        .order_by(Document.id, Annotation.updated_at, Annotation.id)
    ).all()
    by_doc: dict[int, tuple[Document, list[Version]]] = {}
    for doc, ann in rows:
        by_doc.setdefault(doc.id, (doc, []))[1].append(
            Version(ann.annotator, list(ann.spans), ann.updated_at)
        )
    found = [
        (doc, vs)
        for doc, vs in by_doc.values()
        if len({span_set(v.spans) for v in vs}) > 1
        and (annotator is None or annotator in {v.who for v in vs})
    ]
    page = found[offset : offset + limit]
    finals = final_of(session, [doc.id for doc, _ in page])
    return [
        Disagreement(
            document_id=doc.id,
            external_id=doc.external_id,
            text=doc.text,
            versions=vs,
            final=_final_version(finals[doc.id]) if doc.id in finals else None,
        )
        for doc, vs in page
    ], len(found)
