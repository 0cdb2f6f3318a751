"""The annotation service: the queue, save, skip, undo (tests/test_layers.py keeps Streamlit
and torch out of it). What was labeled, read back (progress, the browse table):
core.labeling.progress.

Every function takes the session first; the caller (a page action, the CLI, a job) owns the
transaction and commits. Every function that acts takes the annotator who acts (the
logged-in account on a shared server, core.labeling.users); who holds which open document lives in
core.labeling.claims, and save, skip and undo refuse a text another annotator holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy import exists, select, union_all, update
from sqlalchemy.orm import Session

from core.errors import NotFoundError, ValidationError
from core.labeling import claims
from core.labeling.clock import capped
from core.labeling.overlap import document_state, overlap_of
from core.labeling.prefill import mark_origins, prefill_threshold, split_suggestions
from core.store.schema import (
    Annotation,
    Document,
    FinalAnnotation,
    ModelVersion,
    Prediction,
    Project,
    utcnow,
)
from core.text import Span, Word, validate_spans, words_of

# How many earlier versions of an annotation undo can walk back through.
UNDO_DEPTH = 20


@dataclass
class AnnotationTask:
    """One document as the Annotate page needs it."""

    document_id: int
    text: str
    words: list[Word]
    spans: list[dict]  # the annotator's saved spans, if any
    suggestions: list[dict] = field(default_factory=list)  # model pre-annotations
    score: float | None = None  # why it was picked (uncertainty), when a model ranked it
    scored_by: int | None = None  # the model version whose suggestions and score these are
    restored: bool = False  # spans are the annotator's undone save, not saved (Document.draft)
    ranked_by: int | None = None  # the model version whose score put it here; None: not a model
    external_id: str | None = None
    meta: dict = field(default_factory=dict)


def stored_predictions(
    session: Session, docs: Sequence[Document]
) -> dict[int, tuple[list[dict], float, int]]:
    """Suggested spans ({start, end, label, confidence?}), a score and the version number that
    scored them, per document id: the newest version that scored the text. After a Retrain
    the current version scores its candidates at once and the rest of the pool in the
    background (core.active.scoring), so a text may still carry an older version's suggestions."""
    if not docs:
        return {}
    rows = session.execute(
        select(Prediction.document_id, Prediction.spans, Prediction.score, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
        .where(Prediction.document_id.in_([d.id for d in docs]))
        .order_by(ModelVersion.version)
    )
    return {doc_id: (list(spans), score, v) for doc_id, spans, score, v in rows}


def _task(
    session: Session,
    doc: Document,
    annotator: str,
    *,
    unseen: bool = False,
    every_span: bool = False,
) -> AnnotationTask:
    """The document as the page shows it. `unseen`: the annotator has no annotation of it (a
    text claim_next just claimed), so there is nothing of theirs to read.

    Its words follow the spans it shows (the annotator's or undo's draft, the suggestions),
    and with `every_span` every span stored for the text, each annotator's and the final
    version's, for a page that may show any of them (Review)."""
    ann = None
    if not unseen:
        ann = session.scalar(
            select(Annotation).where(
                Annotation.document_id == doc.id, Annotation.annotator == annotator
            )
        )
    task = AnnotationTask(
        document_id=doc.id,
        text=doc.text,
        words=[],
        spans=list(ann.spans) if ann else [],
        external_id=doc.external_id,
        meta=dict(doc.meta or {}),
        ranked_by=doc.ranked_by,
    )
    if not unseen and doc.draft is not None and doc.assigned_to == annotator:
        # undo left its spans with the claim: a reload shows the text as undo left it
        task.spans, task.restored = list(doc.draft), True
    suggested = stored_predictions(session, [doc]).get(doc.id)
    if suggested:
        task.suggestions, task.score, task.scored_by = suggested
    stored = _stored_spans(session, doc.id) if every_span else []
    task.words = words_of(doc.text, doc.tokens, [*task.spans, *task.suggestions, *stored])
    return task


def _stored_spans(session: Session, document_id: int) -> list[dict]:
    """Every span stored for a document: its annotations' and its final version's."""
    rows = session.scalars(
        union_all(
            select(Annotation.spans).where(Annotation.document_id == document_id),
            select(FinalAnnotation.spans).where(FinalAnnotation.document_id == document_id),
        )
    )
    return [sp for spans in rows for sp in spans or ()]


def get_task(
    session: Session, project: Project, document_id: int, annotator: str
) -> AnnotationTask:
    """A document as `annotator` left it, its words following every span stored for it."""
    doc = get_document(session, project, document_id)
    return _task(session, doc, annotator, every_span=True)


def get_document(session: Session, project: Project, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.project_id != project.id:
        raise NotFoundError(f"no document {document_id} in project {project.name!r}")
    return doc


def _check_annotator(annotator: str) -> str:
    annotator = (annotator or "").strip()
    if not annotator:
        raise ValidationError("an annotator name is required")
    if len(annotator) > 100:
        raise ValidationError("annotator names are at most 100 characters")
    return annotator


def next_document(
    session: Session,
    project: Project,
    annotator: str,
    *,
    now: datetime | None = None,
    shared: bool = True,
) -> AnnotationTask | None:
    """The document this annotator should label next, claimed for them; None when all are done.

    A document already claimed by this annotator comes back first (a page reload shows the
    same text); otherwise the first free one in queue order is claimed (core.labeling.claims).
    An open text has no saved spans, so the model's confident suggestions open as its spans
    (core.labeling.prefill).

    `shared=False` (a reviewer or an admin labeling): none of the texts the project's overlap
    keeps for several annotators (core.labeling.overlap) is claimed, so none is held away from the
    annotators whose agreement it measures; only the texts that need one annotator are served.
    """
    annotator = _check_annotator(annotator)
    doc = claims.held(session, project, annotator)
    unseen = doc is None
    if doc is None:
        skip = None
        if not shared:
            overlap = overlap_of(project)
            if overlap.annotators > 1 and overlap.share >= 1.0:
                return None  # every text is kept for annotators
            if overlap.annotators > 1 and overlap.share > 0.0:
                skip = partial(overlap.selects, project.id)
        doc = claims.claim_next(session, project, annotator, now=now or utcnow(), skip=skip)
    if doc is None:
        return None
    task = _task(session, doc, annotator, unseen=unseen)
    if not task.spans and not task.restored:
        threshold = prefill_threshold(project)
        task.spans, task.suggestions = split_suggestions(task.suggestions, threshold)
    return task


def _snapshot(ann: Annotation) -> dict:
    return {
        "status": ann.status,
        "spans": list(ann.spans),
        "updated_at": ann.updated_at.isoformat() if ann.updated_at else None,
        "seconds": ann.seconds,
    }


def _add_seconds(before: float | None, seconds: float | None) -> float | None:
    """A row's seconds after one more answer: the sum of the answers that stand in its
    history (undo takes the undone answer's off again); None while none was measured."""
    if seconds is None:
        return before
    return (before or 0.0) + seconds


def _annotations_of(session: Session, doc: Document) -> tuple[list[Annotation], bool]:
    """Every annotation of the document, and whether a reviewer saved its final version: one
    query. Read after the claim is taken (claims.take), so no other save of the text commits
    between this read and the caller's write (SQLite: the write lock is held; PostgreSQL: the
    document's row is locked)."""
    final = exists().where(FinalAnnotation.document_id == doc.id)
    rows = session.execute(
        select(Annotation, final.label("final"))
        .select_from(Document)
        .outerjoin(Annotation, Annotation.document_id == Document.id)
        .where(Document.id == doc.id)
    ).all()
    return [ann for ann, _ in rows if ann is not None], bool(rows and rows[0][1])


def _settle(project: Project, doc: Document, statuses: list[str], final: bool) -> None:
    """Set the document's state from its annotations' statuses (as they will be once the
    caller's write is flushed): done once as many annotators as the project's overlap asks
    saved it (core.labeling.overlap); a reviewed text stays done whatever its annotators undo
    (core.labeling.review)."""
    doc.state = document_state(
        done=statuses.count("done"),
        skipped="skipped" in statuses,
        required=overlap_of(project).required(project.id, doc.id),
        final=final,
    )


def _record(
    session: Session,
    project: Project,
    doc: Document,
    annotator: str,
    status: str,
    spans: list[dict],
    seconds: float | None = None,
) -> Annotation:
    """Write the annotator's annotation, release the claim and settle the document's state:
    one read and one flush (an INSERT or UPDATE of the annotation, an UPDATE of the document).
    `seconds` (already capped) adds to the row's: a second answer on a text is work too."""
    anns, final = _annotations_of(session, doc)
    ann = next((a for a in anns if a.annotator == annotator), None)
    now = utcnow()
    if ann is None:
        ann = Annotation(
            document_id=doc.id,
            annotator=annotator,
            status=status,
            spans=spans,
            previous=[],
            seconds=seconds,
            created_at=now,
            updated_at=now,
        )
        session.add(ann)
    else:
        history = list(ann.previous or [])[-(UNDO_DEPTH - 1) :]
        ann.previous = [*history, _snapshot(ann)]
        ann.status, ann.spans, ann.updated_at = status, spans, now
        ann.seconds = _add_seconds(ann.seconds, seconds)
    others = [a.status for a in anns if a.annotator != annotator]
    _settle(project, doc, [*others, status], final)
    doc.assigned_to, doc.assigned_at, doc.draft = None, None, None
    session.flush()
    return ann


def save(
    session: Session,
    project: Project,
    document_id: int,
    annotator: str,
    spans: Sequence[dict | Span],
    *,
    seconds: float | None = None,
) -> Annotation:
    """Validate and store an annotator's spans for a document (an empty list is a valid answer).

    `seconds`: how long the answer took, from the text shown (the annotator's clock, measured
    in the browser), stored capped at core.defaults.IDLE_CAP_S (core.labeling.clock); None:
    not measured (the CLI, an import).

    Spans are snapped to word boundaries; an unknown label, a span outside the text, an empty
    or overlapping span raises SpanError and nothing is written. A text another annotator
    holds raises ConflictError: two people never overwrite each other's work unawares.
    On a text the current model pre-annotated, each span records its origin (core.labeling.prefill).
    """
    annotator = _check_annotator(annotator)
    doc = get_document(session, project, document_id)
    clean = validate_spans(doc.text, spans, project.labels, doc.tokens)
    # Reads first, writes last: on SQLite the claim's UPDATE takes the write lock that every
    # other save waits for, and it is held until the commit.
    suggested = stored_predictions(session, [doc]).get(doc.id)
    claims.take(session, doc, annotator)
    saved = [s.as_dict() for s in clean]
    if suggested is not None:
        saved = mark_origins(saved, suggested[0])
    return _record(session, project, doc, annotator, "done", saved, capped(seconds))


def skip(
    session: Session,
    project: Project,
    document_id: int,
    annotator: str,
    *,
    seconds: float | None = None,
) -> Annotation:
    """Set a document aside; it leaves the queue until someone undoes or labels it.

    Like save, refused (ConflictError) when another annotator holds the text; `seconds` as
    save's (deciding to skip is work too).
    """
    annotator = _check_annotator(annotator)
    doc = get_document(session, project, document_id)
    claims.take(session, doc, annotator)
    return _record(session, project, doc, annotator, "skipped", [], capped(seconds))


def undo(session: Session, project: Project, annotator: str) -> int | None:
    """Undo this annotator's most recent save or skip in the project.

    Only the caller's own annotations are looked at: another annotator's later work is never
    touched. The annotation goes back to what it held before (or disappears if the save
    created it), and the document is claimed for the annotator again so it is the next one
    they see, with the undone save's spans as an unsaved draft (the task's `restored`). Like
    save and skip, refused (ConflictError, nothing changed) when another annotator holds the
    text right now. Returns the document id, or None when there is nothing to undo.
    """
    annotator = _check_annotator(annotator)
    row = session.execute(
        select(Annotation, Document)
        .join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id, Annotation.annotator == annotator)
        .order_by(Annotation.updated_at.desc(), Annotation.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    ann, doc = row
    claims.take(session, doc, annotator)
    anns, final = _annotations_of(session, doc)
    others = [a.status for a in anns if a.annotator != annotator]
    undone = list(ann.spans) if ann.status == "done" else None
    history = list(ann.previous or [])
    if history:
        last = history.pop()
        ann.status, ann.spans, ann.previous = last["status"], last["spans"], history
        ann.seconds = last.get("seconds")  # the undone answer's time goes with it
        ann.updated_at = (
            datetime.fromisoformat(last["updated_at"]) if last["updated_at"] else utcnow()
        )
        others.append(ann.status)
    else:
        session.delete(ann)
    _settle(project, doc, others, final)
    if doc.state == "open":
        # back in front of the annotator with the spans of the save undone, unsaved: kept
        # with the claim (Document.draft), so a reload or another tab shows them too
        doc.assigned_to, doc.assigned_at, doc.draft = annotator, utcnow(), undone
    else:  # still labeled by someone else, or reviewed: out of the queue, nobody holds it
        doc.assigned_to, doc.assigned_at, doc.draft = None, None, None
    session.flush()
    return doc.id


def set_ranks(
    session: Session, project: Project, ranks: dict[int, float], *, ranked_by: int | None = None
) -> None:
    """Rewrite the queue order (lowest rank first); `ranked_by`: the model version whose
    scores gave these ranks (None: not a model's; core.active.scoring writes a model's order)."""
    if not ranks:
        return
    session.execute(
        update(Document),
        [{"id": d, "rank": rank, "ranked_by": ranked_by} for d, rank in ranks.items()],
    )
