"""Decisions: one answer about one suggested span (teach mode, a Prodigy file's binary answers).

A decision is (text, start, end, label, answer, annotator, origin, confidence, seconds): the
answer is "accept" (this span is right), "reject" (this labeling of these characters is wrong)
or "ignore" (no answer: not data). A text's gold is still its final version, else its latest
done annotation (core.labeling.gold); decisions add partial knowledge beside it, which
training reads as constraints (partial_answers) where a text has no gold.

One answer per suggestion, whoever gives it (the table's uq_decisions_suggestion): a team that
teaches at once never answers a suggestion twice, and a second answer is refused with one line.
Like the annotation service, every function takes the session first and the caller commits.

The annotator's clock: an answer is credited with the seconds from the suggestion shown to
the answer, capped at core.defaults.IDLE_CAP_S (core.labeling.clock.capped), so a text left
open over a break does not count as work.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError, SpanError, ValidationError
from core.labeling.clock import capped
from core.labeling.gold import gold_of
from core.store.schema import STAGED, Decision, Document, Project, utcnow
from core.text import Span, validate_spans

ANSWERS = ("accept", "reject", "ignore")
ORIGINS = ("model", "rule", "dictionary", "patterns", "import")
_CHUNK = 500  # ids a statement: under every database's limit on bound parameters


def _check(annotator: str, answer: str, origin: str) -> str:
    annotator = (annotator or "").strip()
    if not annotator:
        raise ValidationError("an annotator name is required")
    if len(annotator) > 100:
        raise ValidationError("annotator names are at most 100 characters")
    if answer not in ANSWERS:
        raise ValidationError(f"unknown answer {answer!r}; one of {', '.join(ANSWERS)}")
    if origin not in ORIGINS:
        raise ValidationError(f"unknown suggestion origin {origin!r}; one of {', '.join(ORIGINS)}")
    return annotator


def _document(session: Session, project: Project, document_id: int, text: str | None) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.project_id != project.id or doc.state == STAGED:
        raise NotFoundError(f"no document {document_id} in project {project.name!r}")
    if text is not None and text != doc.text:
        raise ConflictError(
            f"document {document_id} changed since the suggestion was shown; answer it again"
        )
    return doc


def _span(doc: Document, project: Project, start: int, end: int, label: str) -> Span:
    """The suggestion's span, checked as a save's is, and kept exactly (no trimming)."""
    given = Span(int(start), int(end), str(label))
    clean = validate_spans(doc.text, [given], project.labels, doc.tokens)
    if clean != [given]:
        raise SpanError(
            f"span {start}-{end} ({doc.text[start:end][:40]!r}) starts or ends in white space"
        )
    return given


def _answered(session: Session, document_id: int, span: Span) -> Decision | None:
    return session.execute(
        select(Decision).where(
            Decision.document_id == document_id,
            Decision.start == span.start,
            Decision.end == span.end,
            Decision.label == span.label,
        )
    ).scalar_one_or_none()


def _taken(document_id: int, span: Span, by: str) -> ConflictError:
    return ConflictError(
        f"suggestion {span.start}-{span.end} {span.label} of document {document_id} "
        f"was already answered by {by}"
    )


def record(
    session: Session,
    project: Project,
    document_id: int,
    annotator: str,
    *,
    start: int,
    end: int,
    label: str,
    answer: str,
    origin: str,
    confidence: float | None = None,
    seconds: float | None = None,
    text: str | None = None,
) -> Decision:
    """Store an annotator's answer about one suggested span.

    The span is checked as a save's spans are (label known, inside the text, its exact
    offsets: SpanError). `text`, where given, is the text as the annotator saw it: a text that
    changed underneath is refused (ConflictError). A suggestion someone already answered is
    refused (ConflictError), also when two answers race (then the caller's transaction is
    to be rolled back, as after any error). A refused answer writes nothing."""
    annotator = _check(annotator, answer, origin)
    doc = _document(session, project, document_id, text)
    span = _span(doc, project, start, end, label)
    prior = _answered(session, doc.id, span)
    if prior is not None:
        raise _taken(doc.id, span, prior.annotator)
    row = Decision(
        document_id=doc.id,
        annotator=annotator,
        start=span.start,
        end=span.end,
        label=span.label,
        answer=answer,
        origin=origin,
        confidence=None if confidence is None else float(confidence),
        seconds=capped(seconds),
        created_at=utcnow(),
    )
    doc_id = doc.id  # read now: after a failed flush the session reads nothing more
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # another answer to it committed after the check above
        raise _taken(doc_id, span, "another annotator") from None
    return row


def as_dict(row: Decision) -> dict:
    return {
        "id": row.id,
        "document_id": row.document_id,
        "start": row.start,
        "end": row.end,
        "label": row.label,
        "answer": row.answer,
        "annotator": row.annotator,
        "origin": row.origin,
        "confidence": row.confidence,
        "seconds": row.seconds,
        "created_at": row.created_at,
    }


def undo_last(session: Session, project: Project, annotator: str) -> dict | None:
    """Remove this annotator's most recent decision in the project and return it as a dict
    (as_dict: the answer undone, so the suggestion can be shown again); None when there is
    none. Another annotator's decisions are never touched."""
    row = session.execute(
        select(Decision)
        .join(Document, Document.id == Decision.document_id)
        .where(Document.project_id == project.id, Decision.annotator == (annotator or "").strip())
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    undone = as_dict(row)
    session.delete(row)
    session.flush()
    return undone


def decisions_for(session: Session, document_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each text's decisions, oldest first, by document id (texts with none are left out):
    {start, end, label, answer, annotator, origin, confidence, seconds, created_at}."""
    ids = sorted(set(document_ids))
    out: dict[int, list[dict]] = {}
    for at in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Decision)
            .where(Decision.document_id.in_(ids[at : at + _CHUNK]))
            .order_by(Decision.document_id, Decision.created_at, Decision.id)
        ).scalars()
        for row in rows:
            d = as_dict(row)
            del d["id"], d["document_id"]
            out.setdefault(row.document_id, []).append(d)
    return out


def project_decisions(session: Session, project: Project) -> list[dict]:
    """Every decision of a project's published texts, by text then time (as_dict)."""
    rows = session.execute(
        select(Decision)
        .join(Document, Document.id == Decision.document_id)
        .where(Document.project_id == project.id, Document.state != STAGED)
        .order_by(Decision.document_id, Decision.created_at, Decision.id)
    ).scalars()
    return [as_dict(r) for r in rows]


def partial_answers(
    session: Session, project: Project
) -> list[tuple[int, str, list[str] | None, list[Span], list[Span]]]:
    """(document id, text, tokens, accepted spans, rejected spans) of every text of the project
    with accept or reject decisions and no gold (no final version, no done annotation), in id
    order. "ignore" answers are not data."""
    rows = session.execute(
        select(Decision.document_id, Decision.start, Decision.end, Decision.label, Decision.answer)
        .join(Document, Document.id == Decision.document_id)
        .where(
            Document.project_id == project.id,
            Document.state != STAGED,
            Decision.answer.in_(("accept", "reject")),
        )
        .order_by(Decision.document_id, Decision.start, Decision.end, Decision.label)
    ).all()
    if not rows:
        return []
    gold = gold_of(session, [Document.project_id == project.id])
    answers: dict[int, tuple[list[Span], list[Span]]] = {}
    for doc_id, start, end, label, answer in rows:
        if doc_id in gold:
            continue
        accepted, rejected = answers.setdefault(doc_id, ([], []))
        (accepted if answer == "accept" else rejected).append(Span(start, end, label))
    ids = sorted(answers)
    texts: dict[int, tuple[str, list | None]] = {}
    for at in range(0, len(ids), _CHUNK):
        texts.update(
            (doc_id, (text, tokens))
            for doc_id, text, tokens in session.execute(
                select(Document.id, Document.text, Document.tokens).where(
                    Document.id.in_(ids[at : at + _CHUNK])
                )
            )
        )
    return [(i, texts[i][0], texts[i][1], *answers[i]) for i in ids]
