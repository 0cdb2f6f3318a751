"""The annotator's clock, read back: answers per hour and F1 against annotator hours.

Every save and skip (manual mode, core.labeling.annotations) and every decision on a
suggestion (teach mode, core.labeling.decisions) records the seconds it took, from the text or
suggestion drawn in the browser to the answer, counting only time the tab was visible, capped
at core.defaults.IDLE_CAP_S (idle time is not work). An answer with no seconds (imported, or
saved before the clock existed) counts as an answer but adds no time, and the per-hour rate
counts only the timed answers, so old rows never inflate a rate.

The figures are pure functions over rows (`Answer`), so they are tested with literal data;
`answers` and `version_times` read the rows of a project.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.defaults import IDLE_CAP_S
from core.store.schema import Annotation, Decision, Document, Project
from core.store.versions import learning_curve, list_versions

MANUAL = "manual"  # a save or skip of a whole text
TEACH = "teach"  # an accept, reject or ignore of one suggested span
MODES = (MANUAL, TEACH)


def capped(seconds: object) -> float | None:
    """The seconds an answer is credited with: at most IDLE_CAP_S, never negative; None (or
    anything that is not a number) stays None: not measured. Here, below every service that
    records an answer, so core.labeling.annotations takes it without importing decisions."""
    if seconds is None or isinstance(seconds, bool):
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    return min(max(value, 0.0), IDLE_CAP_S)


@dataclass(frozen=True)
class Answer:
    """One answer as the clock sees it: who, in which mode, how long, when."""

    annotator: str
    mode: str
    seconds: float | None
    at: datetime


@dataclass(frozen=True)
class Pace:
    """An annotator's figures in one mode."""

    annotator: str
    mode: str
    answers: int  # every answer, timed or not
    timed: int  # the answers that recorded their seconds
    seconds: float  # the sum of their (capped) seconds

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def per_hour(self) -> float | None:
        """Timed answers per hour of their time; None before any timed second."""
        return self.timed * 3600.0 / self.seconds if self.seconds > 0 else None


def pace(answers: Iterable[Answer]) -> list[Pace]:
    """Per annotator and mode (manual first), the answers, their seconds and the rate."""
    totals: dict[tuple[str, str], list] = {}
    for a in answers:
        row = totals.setdefault((a.annotator, a.mode), [0, 0, 0.0])
        row[0] += 1
        if a.seconds is not None:
            row[1] += 1
            row[2] += a.seconds
    order = {m: i for i, m in enumerate(MODES)}
    return [
        Pace(name, mode, n, timed, secs)
        for (name, mode), (n, timed, secs) in sorted(
            totals.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], len(order)))
        )
    ]


def hours_before(answers: Iterable[Answer], cutoff: datetime) -> float:
    """Annotator hours spent on the answers given before `cutoff`, every annotator and mode."""
    return sum(a.seconds or 0.0 for a in answers if a.at < cutoff) / 3600.0


def f1_by_hours(
    points: Iterable[Mapping], trained_from: Mapping[int, datetime], answers: Iterable[Answer]
) -> list[dict]:
    """The learning curve's points (core.store.versions.learning_curve: version, labels, f1,
    ...) each with `hours`: the annotator hours spent on the answers given before that
    version's training began (`trained_from`, by version number). A version with no time
    known is left out."""
    answers = list(answers)
    out = []
    for point in points:
        cutoff = trained_from.get(point["version"])
        if cutoff is not None:
            out.append({**point, "hours": round(hours_before(answers, cutoff), 4)})
    return out


# ---------------------------------------------------------------- reading a project


def answers(session: Session, project: Project) -> list[Answer]:
    """Every save and skip standing in the project (manual) and every decision (teach)."""
    manual = session.execute(
        select(Annotation.annotator, Annotation.seconds, Annotation.created_at)
        .join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id)
    )
    teach = session.execute(
        select(Decision.annotator, Decision.seconds, Decision.created_at)
        .join(Document, Document.id == Decision.document_id)
        .where(Document.project_id == project.id)
    )
    return [Answer(n, MANUAL, s, at) for n, s, at in manual] + [
        Answer(n, TEACH, s, at) for n, s, at in teach
    ]


def version_times(session: Session, project: Project) -> dict[int, datetime]:
    """When each version's training began, by number: registered less its training time (the
    labels it trained on were read before then)."""
    return {
        v.version: v.created_at - timedelta(seconds=v.train_seconds or 0.0)
        for v in list_versions(session, project)
        if v.created_at is not None
    }


@dataclass(frozen=True)
class Clock:
    """The Train page's figures: each annotator's pace per mode, and the learning curve's
    measured versions at the annotator hours their training data cost."""

    pace: list[Pace]
    curve: list[dict]


def project_clock(session: Session, project: Project) -> Clock:
    rows = answers(session, project)
    points = learning_curve(session, project)
    return Clock(pace(rows), f1_by_hours(points, version_times(session, project), rows))
