"""Teach mode: one suggested span at a time, answered accept, reject or ignore
(core.labeling.decisions stores the answer), as in Prodigy's `ner.teach`.

Where suggestions come from:
- the current model version's stored predictions (core.active.scoring writes each text's
  decoded spans with their `confidence`, the mean probability of their words' tags);
- while there is no model version, the project's weak sources (core.labeling.weak_sources):
  its patterns files, the dictionary of its labeled strings and its task's built-in rule,
  each proposal with its source's estimated precision as its probability (noisy-or where
  several sources propose one span), so a project with no label and a patterns file can
  start here. A text the current version has not scored yet has no suggestion until it does
  (core.active.scoring scores the rest of the pool in the background after a Retrain).

Order, so that each answer teaches the model most: the probability nearest 0.5 first
(Prodigy's prefer_uncertain), then the queue's order (Document.rank: the project's strategy's
ranking once a model scored the pool, the import's random order before), then the span's place
in its text. The model's suggestions are read from the first MODEL_PAGE texts of the queue at
a time, the weak sources' from WEAK_PAGE texts at a time (matching them costs more); the first
page with a suggestion left gives it.

What is never suggested: a suggestion anyone answered (the decisions table's unique key), a
span overlapping an answer's accepted span in its text (one of them is wrong), a span the
annotator could not answer (a label the project no longer has, offsets not on the text's
words), a text another annotator holds (core.labeling.claims, as on the Annotate page: the
text of the suggestion shown is claimed for its annotator, the one they held before given
back), and a text with a full annotation, a final version, or set aside (only open texts
nobody saved).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from core.errors import ConflictError, FewlabelError, NotFoundError, ValidationError
from core.labeling import claims, decisions
from core.labeling.gold import labeled_texts
from core.labeling.overlap import overlap_of
from core.labeling.weak_sources import builtin_source, stored_patterns
from core.store.schema import Annotation, Decision, Document, Prediction, Project, utcnow
from core.store.versions import current_version
from core.text import Span, Word, validate_spans, words_of
from core.weak.sources import assemble

MODEL_PAGE = 2000  # texts of the queue whose stored predictions are read at a time
WEAK_PAGE = 256  # texts of the queue the weak sources label at a time
ANSWERS = ("accept", "reject", "ignore")


@dataclass(frozen=True)
class Suggestion:
    """One suggested span, in its text, as the Teach page shows it."""

    document_id: int
    text: str
    words: list[Word]
    start: int
    end: int
    label: str
    confidence: float | None  # its probability (a model's) or estimated precision (weak)
    origin: str  # model | rule | dictionary | patterns (core.labeling.decisions.ORIGINS)

    @property
    def key(self) -> tuple[int, int, int, str]:
        return (self.document_id, self.start, self.end, self.label)

    def as_dict(self) -> dict:
        return {
            "document_id": self.document_id,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "confidence": self.confidence,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class _Row:
    """A text of the pool: its id, queue rank, text and tokens."""

    id: int
    rank: float
    text: str
    tokens: list[str] | None


@dataclass(frozen=True)
class _Candidate:
    row: _Row
    span: Span
    confidence: float | None
    origin: str

    def order(self) -> tuple:
        c = self.confidence
        return (abs(c - 0.5) if c is not None else 0.5, self.row.rank, self.row.id, self.span)


# ---------------------------------------------------------------- the pool


def _open_for(project: Project, annotator: str, now: datetime) -> tuple:
    """Where-clauses: the project's open texts nobody saved, free or held by `annotator`."""
    lapsed = now - claims.CLAIM_LEASE
    done = exists().where(Annotation.document_id == Document.id, Annotation.status == "done")
    return (
        Document.project_id == project.id,
        Document.state == "open",
        ~done,
        or_(
            Document.assigned_to.is_(None),
            Document.assigned_to == annotator,
            Document.assigned_at < lapsed,
        ),
    )


def _pages(session: Session, where: tuple, size: int, join=None):
    """The pool's texts in queue order, `size` at a time (keyset paging on rank, id)."""
    after: tuple[float, int] | None = None
    while True:
        query = select(Document.id, Document.rank, Document.text, Document.tokens)
        if join is not None:
            query = query.join(*join)
        query = query.where(*where)
        if after is not None:
            query = query.where(claims.queue_after(after))
        rows = session.execute(query.order_by(Document.rank, Document.id).limit(size)).all()
        if not rows:
            return
        yield [_Row(*r) for r in rows]
        after = (rows[-1][1], rows[-1][0])


# ---------------------------------------------------------------- candidates


def _model_candidates(session: Session, version_id: int, rows: Sequence[_Row]) -> list[_Candidate]:
    by_id = {r.id: r for r in rows}
    preds = session.execute(
        select(Prediction.document_id, Prediction.spans).where(
            Prediction.model_version_id == version_id, Prediction.document_id.in_(list(by_id))
        )
    )
    out = []
    for doc_id, spans in preds:
        for sp in spans or ():
            try:
                span = Span(int(sp["start"]), int(sp["end"]), str(sp["label"]))
                conf = sp.get("confidence")
                conf = None if conf is None else float(conf)
            except (KeyError, TypeError, ValueError):
                continue
            out.append(_Candidate(by_id[doc_id], span, conf, "model"))
    return out


def _origin(source_name: str) -> str:
    return source_name if source_name in ("dictionary", "patterns") else "rule"


class _Weak:
    """The project's weak sources, fitted once per request on its labeled texts."""

    def __init__(self, session: Session, project: Project) -> None:
        labeled = [lab for _, lab in labeled_texts(session, project)]
        patterns = stored_patterns(session, project)
        self.task = project.task
        self.labeled, self.patterns = labeled, patterns

    def candidates(self, rows: Sequence[_Row]) -> list[_Candidate]:
        docs = [(r.text, words_of(r.text, r.tokens)) for r in rows]
        builtin = builtin_source(self.task, [r.text for r in rows])
        sources = assemble(self.labeled, builtin=builtin, patterns=self.patterns)
        found: list[dict[Span, tuple[float, float, str]]] = [{} for _ in rows]
        for source in sources:
            for i, proposals in enumerate(source.propose(docs)):
                mine: dict[Span, float] = {}
                for p in proposals:  # within a source the best weight counts, once
                    mine[p.span] = max(mine.get(p.span, 0.0), p.weight)
                for sp, w in mine.items():  # noisy-or across sources, as core.weak.sources
                    total, best, origin = found[i].get(sp, (0.0, -1.0, ""))
                    total = 1 - (1 - total) * (1 - w)
                    if w > best:
                        best, origin = w, _origin(source.name)
                    found[i][sp] = (total, best, origin)
        return [
            _Candidate(row, sp, total, origin)
            for row, spans in zip(rows, found, strict=True)
            for sp, (total, _, origin) in spans.items()
        ]


def _answered(session: Session, rows: Sequence[_Row]) -> tuple[set, dict[int, list[Span]]]:
    """The answered suggestions' keys, and each text's accepted spans."""
    keys: set[tuple[int, int, int, str]] = set()
    accepted: dict[int, list[Span]] = {}
    for doc_id, answers in decisions.decisions_for(session, [r.id for r in rows]).items():
        for d in answers:
            keys.add((doc_id, d["start"], d["end"], d["label"]))
            if d["answer"] == "accept":
                accepted.setdefault(doc_id, []).append(Span(d["start"], d["end"], d["label"]))
    return keys, accepted


def _answerable(project: Project, c: _Candidate) -> bool:
    """What decisions.record would take: a known label and the span exactly on words."""
    try:
        return validate_spans(c.row.text, [c.span], project.labels, c.row.tokens) == [c.span]
    except FewlabelError:
        return False


def _pending(session: Session, project: Project, found: list[_Candidate]) -> Iterator[_Candidate]:
    """The candidates nobody answered and none accepted overlaps, best first (checked one
    at a time, as they are asked for)."""
    if not found:
        return
    keys, accepted = _answered(session, list({c.row.id: c.row for c in found}.values()))
    for c in sorted(found, key=_Candidate.order):
        if (c.row.id, c.span.start, c.span.end, c.span.label) in keys:
            continue
        taken = accepted.get(c.row.id, ())
        if any(c.span.start < a.end and a.start < c.span.end for a in taken):
            continue
        if _answerable(project, c):
            yield c


# ---------------------------------------------------------------- the stream


def _streams(session: Session, project: Project, where: tuple):
    """Pages of candidates: the current model's, or while there is none the weak sources'."""
    version = current_version(session, project)
    if version is not None:
        join = (Prediction, Prediction.document_id == Document.id)
        scored = (*where, Prediction.model_version_id == version.id)
        for rows in _pages(session, scored, MODEL_PAGE, join):
            yield _model_candidates(session, version.id, rows)
        return
    weak = _Weak(session, project)
    for rows in _pages(session, where, WEAK_PAGE):
        yield weak.candidates(rows)


def _show(session: Session, project: Project, annotator: str, c: _Candidate) -> Suggestion | None:
    """Claim the candidate's text for the annotator (None: someone just took it), give back
    any other text they held without a draft, and make the suggestion."""
    doc = session.get(Document, c.row.id)
    try:
        claims.take(session, doc, annotator)
    except ConflictError:
        return None
    session.execute(
        update(Document)
        .where(
            Document.project_id == project.id,
            Document.assigned_to == annotator,
            Document.state == "open",
            Document.id != doc.id,
            Document.draft.is_(None),  # an undone save's spans wait on the Annotate page
        )
        .values(assigned_to=None, assigned_at=None)
        .execution_options(synchronize_session=False)
    )
    words = words_of(c.row.text, c.row.tokens, [c.span])
    return Suggestion(
        c.row.id, c.row.text, words, c.span.start, c.span.end, c.span.label, c.confidence, c.origin
    )


def next_suggestion(
    session: Session,
    project: Project,
    annotator: str,
    *,
    prefer: tuple[int, int, int] | None = None,
    now: datetime | None = None,
    shared: bool = True,
) -> Suggestion | None:
    """The suggestion this annotator answers next, its text claimed for them; None when none
    is left. `prefer` (document id, start, end): a suggestion of that span comes first while
    it is unanswered and its text open to them (the one an undo gave back).

    `shared=False` (a reviewer or an admin), as core.labeling.annotations.next_document has
    it: no text the project's overlap keeps for several annotators is suggested from, so none
    is held away from the annotators whose agreement it measures."""
    annotator = (annotator or "").strip()
    if not annotator:
        raise ValidationError("an annotator name is required")
    kept = _kept_for_annotators(project) if not shared else None
    where = _open_for(project, annotator, now or utcnow())
    if prefer is not None:
        found = _prefer(session, project, where, prefer)
        if found is not None and not (kept and kept(found.row.id)):
            if shown := _show(session, project, annotator, found):
                return shown
    for page in _streams(session, project, where):
        for c in _pending(session, project, page):
            if kept and kept(c.row.id):
                continue
            shown = _show(session, project, annotator, c)
            if shown is not None:
                return shown
    return None


def _kept_for_annotators(project: Project):
    """Whether a document is one the project's overlap shares among annotators (None: none)."""
    overlap = overlap_of(project)
    if overlap.annotators < 2 or overlap.share <= 0.0:
        return None
    return partial(overlap.selects, project.id)


def _prefer(
    session: Session, project: Project, where: tuple, prefer: tuple[int, int, int]
) -> _Candidate | None:
    doc_id, start, end = prefer
    for page in _streams(session, project, (*where, Document.id == doc_id)):
        for c in _pending(session, project, page):
            if (c.span.start, c.span.end) == (start, end):
                return c
    return None


def answer(
    session: Session,
    project: Project,
    annotator: str,
    shown: Suggestion,
    answer: str,
    *,
    label: str | None = None,
    seconds: float | None = None,
) -> Decision:
    """Store the annotator's answer to a suggestion they were shown: accept, reject or
    ignore; `label`: accepted under that label instead (the suggestion's probability was
    another label's, so none is stored). Refused with one line (nothing written) when another
    annotator holds the text, it was labeled in full meanwhile, it changed underneath, or
    someone answered the suggestion already (core.labeling.decisions.record)."""
    if answer not in ANSWERS:
        raise ValidationError(f"unknown answer {answer!r}; one of {', '.join(ANSWERS)}")
    relabel = label is not None and label != shown.label
    if relabel and answer != "accept":
        raise ValidationError("only an accept takes another label")
    doc = session.get(Document, shown.document_id)
    if doc is None or doc.project_id != project.id:
        raise NotFoundError(f"no document {shown.document_id} in project {project.name!r}")
    claims.take(session, doc, annotator)
    if doc.state != "open":
        raise ConflictError(f"text #{doc.id} was labeled in full meanwhile; nothing was saved")
    return decisions.record(
        session,
        project,
        doc.id,
        annotator,
        start=shown.start,
        end=shown.end,
        label=label if relabel else shown.label,
        answer=answer,
        origin=shown.origin,
        confidence=None if relabel else shown.confidence,
        seconds=seconds,
        text=shown.text,
    )


def undo(session: Session, project: Project, annotator: str) -> dict | None:
    """Undo this annotator's last decision in the project (decisions.undo_last) and claim its
    text for them again, so `next_suggestion(prefer=...)` shows it; refused (ConflictError,
    nothing changed) when another annotator holds the text now. Returns the undone decision
    (a dict), or None when there is nothing to undo."""
    undone = decisions.undo_last(session, project, annotator)
    if undone is None:
        return None
    doc = session.get(Document, undone["document_id"])
    if doc is not None and doc.state == "open":
        claims.take(session, doc, annotator)
    return undone


def prefer_of(undone: dict) -> tuple[int, int, int]:
    """The `prefer` of next_suggestion that shows an undone decision's suggestion again."""
    return (int(undone["document_id"]), int(undone["start"]), int(undone["end"]))
