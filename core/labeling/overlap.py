"""Overlap: how many distinct annotators label each text, a project setting.

By default one annotator labels each text. A project may ask for `annotators` (2 or more) on a
`share` of its texts, to measure agreement (core.labeling.agreement). Which texts is decided by
a hash of the project id and the document id, so the choice is stable (a restart, a re-score or a
rename never changes it) and reproducible (the same ids give the same texts anywhere).

A text needing k annotators stays open, in the queue, until k distinct annotators have saved
it (or a reviewer has saved its final version); core.labeling.claims never serves it to an annotator
who already saved or skipped it. A skip sets the text aside for everyone, as it does without
overlap: what was saved before stays and counts, but nobody is served it again until the skip
is undone (a text one annotator cannot label is worth a look before anyone else spends time).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.store.schema import Annotation, Document, FinalAnnotation, Project

_SETTING = "overlap"  # its name in Project.settings: {"annotators": k, "share": s}
MAX_ANNOTATORS = 10


@dataclass(frozen=True)
class Overlap:
    """`annotators` distinct annotators for a `share` (0 to 1) of the texts, one for the rest."""

    annotators: int = 1
    share: float = 0.0

    def selects(self, project_id: int, document_id: int) -> bool:
        """Whether this document is one of the shared texts (deterministic, see the module)."""
        if self.annotators < 2 or self.share <= 0.0:
            return False
        digest = hashlib.sha256(f"fewlabel-overlap:{project_id}:{document_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < self.share

    def required(self, project_id: int, document_id: int) -> int:
        """How many distinct annotators must save this document before it is done."""
        return self.annotators if self.selects(project_id, document_id) else 1

    def describe(self) -> str:
        if self.annotators < 2 or self.share <= 0.0:
            return "one annotator per text"
        if self.share >= 1.0:
            return f"{self.annotators} annotators on every text"
        return f"{self.annotators} annotators on {self.share:.0%} of texts, one on the rest"


def overlap_of(project: Project) -> Overlap:
    """The project's overlap setting (one annotator per text when unset or unreadable)."""
    stored = (project.settings or {}).get(_SETTING)
    if not isinstance(stored, dict):
        return Overlap()
    try:
        return _checked(stored.get("annotators", 1), stored.get("share", 0.0))
    except ValidationError:
        return Overlap()


def _checked(annotators: object, share: object) -> Overlap:
    if isinstance(annotators, bool) or not isinstance(annotators, int | float):
        raise ValidationError(f"annotators per text must be a whole number, not {annotators!r}")
    if annotators != int(annotators) or not 1 <= annotators <= MAX_ANNOTATORS:
        raise ValidationError(
            f"annotators per text must be a whole number from 1 to {MAX_ANNOTATORS}, "
            f"not {annotators}"
        )
    try:
        value = float(share)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the overlap share must be a number: {share!r}") from exc
    if isinstance(share, bool) or not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValidationError(f"the overlap share must be from 0 to 1, not {share!r}")
    return Overlap(int(annotators), value if annotators > 1 else 0.0)


def shared_texts(session: Session, project: Project) -> tuple[int, int]:
    """(texts that need several annotators, all texts) of the project."""
    overlap = overlap_of(project)
    ids = session.scalars(
        select(Document.id).where(
            Document.project_id == project.id, Document.state.in_(("open", "done", "skipped"))
        )
    ).all()
    return sum(overlap.selects(project.id, i) for i in ids), len(ids)


def document_state(*, done: int, skipped: bool, required: int, final: bool) -> str:
    """A document's state from its annotations: done once `required` annotators saved it (or
    a reviewer did), else skipped when someone set it aside, else open (in the queue)."""
    if final or done >= max(1, required):
        return "done"
    return "skipped" if skipped else "open"


def set_overlap(session: Session, project: Project, annotators: int, share: float) -> Overlap:
    """Store the project's overlap setting and bring its labeled texts' states in line.

    A labeled text that now needs more annotators goes back to the queue (for annotators who
    have not seen it); one that needs fewer is done. Texts nobody labeled are open either way.
    """
    overlap = _checked(annotators, share)
    project.settings = {
        **(project.settings or {}),
        _SETTING: {"annotators": overlap.annotators, "share": overlap.share},
    }
    done = func.sum(case((Annotation.status == "done", 1), else_=0))
    skips = func.sum(case((Annotation.status == "skipped", 1), else_=0))
    rows = session.execute(
        select(Document.id, Document.state, done, skips)
        .join(Annotation, Annotation.document_id == Document.id)
        .where(Document.project_id == project.id, Document.state.in_(("open", "done", "skipped")))
        .group_by(Document.id, Document.state)
    ).all()
    finals = set(
        session.scalars(
            select(FinalAnnotation.document_id)
            .join(Document)
            .where(Document.project_id == project.id)
        )
    )
    changed: dict[str, list[int]] = {}
    for doc_id, was, n_done, n_skipped in rows:
        state = document_state(
            done=int(n_done or 0),
            skipped=bool(n_skipped),
            required=overlap.required(project.id, doc_id),
            final=doc_id in finals,
        )
        if state != was:
            changed.setdefault(state, []).append(doc_id)
    for state, ids in changed.items():
        for i in range(0, len(ids), 1000):  # under every backend's limit on bound parameters
            # A text leaving the queue is held by nobody; one coming back is free to claim.
            session.execute(
                update(Document)
                .where(Document.id.in_(ids[i : i + 1000]))
                .values(state=state, assigned_to=None, assigned_at=None)
                .execution_options(synchronize_session="fetch")
            )
    session.flush()
    return overlap
