"""A text's gold: its final version (core.labeling.review), else its latest done annotation.

One rule, read by training (core.jobs.training, the weak sources that learn from labels) and by
export (core.io.corpus): what a reviewer settled wins; else the annotation saved last. A text
whose annotators saved different spans (an overlap text, core.labeling.overlap) and that no
reviewer has resolved is marked `disputed`: training leaves it out, export writes the latest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.labeling.review import annotation_source, final_source, span_set
from core.store.schema import Annotation, Document, FinalAnnotation, Project
from core.text import Span, words_of

_CHUNK = 500  # ids a statement: under every database's limit on bound parameters


@dataclass(frozen=True)
class Gold:
    """A text's gold spans and where they come from."""

    document_id: int
    spans: list[dict]
    by: str  # the reviewer of a final version, else the annotator
    status: str  # "done"; "skipped" only where skips were asked for and nothing is done
    updated_at: datetime
    final: bool
    # annotators saved different done spans and no reviewer has resolved them
    disputed: bool = False

    @property
    def source(self) -> str:
        """Which version this is, as export's `source` column says it."""
        if self.final:
            return final_source(self.by, self.updated_at)
        return annotation_source(self.by)


def gold_of(
    session: Session,
    where: Sequence[ColumnElement[bool]],
    *,
    annotator: str | None = None,
    skips: bool = False,
) -> dict[int, Gold]:
    """The gold of every labeled text that the conditions on Document `where` select, by id.

    With `annotator`, only that annotator's own annotations count (final versions do not).
    With `skips`, a text only skipped has its latest skipped mark as gold (export's rows)."""
    statuses = ("done", "skipped") if skips else ("done",)
    mine = [Annotation.annotator == annotator] if annotator else []
    rows = session.execute(
        select(
            Annotation.document_id,
            Annotation.spans,
            Annotation.annotator,
            Annotation.status,
            Annotation.updated_at,
        )
        .join(Document, Document.id == Annotation.document_id)
        .where(*where, Annotation.status.in_(statuses), *mine)
        .order_by(Annotation.document_id, Annotation.updated_at, Annotation.id)
    ).all()
    gold: dict[int, Gold] = {}
    versions: dict[int, set] = {}
    for doc_id, spans, by, status, updated_at in rows:
        prev = gold.get(doc_id)
        # done wins over skipped, then the most recent (the rows come oldest first)
        if prev is None or status == "done" or prev.status != "done":
            gold[doc_id] = Gold(doc_id, list(spans or []), by, status, updated_at, final=False)
        if status == "done":
            versions.setdefault(doc_id, set()).add(span_set(spans or []))
    for doc_id, seen in versions.items():
        if len(seen) > 1:
            gold[doc_id] = replace(gold[doc_id], disputed=True)
    if annotator is None:
        finals = session.execute(
            select(
                FinalAnnotation.document_id,
                FinalAnnotation.spans,
                FinalAnnotation.reviewer,
                FinalAnnotation.reviewed_at,
            )
            .join(Document, Document.id == FinalAnnotation.document_id)
            .where(*where)
        ).all()
        for doc_id, spans, reviewer, at in finals:
            gold[doc_id] = Gold(doc_id, list(spans or []), reviewer, "done", at, final=True)
    return gold


def labeled_texts(
    session: Session, project: Project, *, unresolved: set[int] | None = None
) -> list[tuple[int, tuple[str, list, list[Span]]]]:
    """(document id, (text, words, spans)) of every labeled document of a project, by its gold,
    in id order; disputed texts are left out (one of their versions is wrong, and a few
    percent of wrong spans cost a small training set more than the text adds), their ids go
    into `unresolved` when a set is given."""
    gold = gold_of(session, [Document.project_id == project.id])
    disputed = {doc_id for doc_id, g in gold.items() if g.disputed}
    if unresolved is not None:
        unresolved.update(disputed)
    wanted = sorted(doc_id for doc_id in gold if doc_id not in disputed)
    texts: dict[int, tuple] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        texts.update(
            (doc_id, (text, tokens))
            for doc_id, text, tokens in session.execute(
                select(Document.id, Document.text, Document.tokens).where(Document.id.in_(chunk))
            )
        )
    out = []
    for doc_id in wanted:
        text, tokens = texts[doc_id]
        spans = gold[doc_id].spans
        out.append(
            (
                doc_id,
                (
                    text,
                    words_of(text, tokens, spans),
                    sorted(Span(s["start"], s["end"], s["label"]) for s in spans),
                ),
            )
        )
    return out
