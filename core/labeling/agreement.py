"""Span-level agreement between annotators: F1 of one annotator's spans against another's.

Two annotators are compared on the texts both saved (done; skips do not count). A span
matches when start, end and label are the same, so F1 = 2 * matched / (spans of a + spans of
b), symmetric in a and b, per label and over all labels (micro). Texts where neither marked a
span agree but add nothing to F1, as in span-level inter-annotator F1 everywhere; with no span
at all F1 is None (not measured). With more than two annotators the figure is the mean over
pairs that share texts. Over time, texts are taken in the order they became comparable (their
second annotation's save), in windows of N texts or by ISO week.

The functions at the top are pure (literal spans in, figures out); project_agreement reads a
project's annotations and calls them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.labeling.overlap import Overlap, overlap_of
from core.labeling.review import span_set
from core.store.schema import Annotation, Document, FinalAnnotation, Project

SpanKey = tuple[int, int, str]  # (start, end, label)
# One annotator's spans per text: {annotator: {document id: spans}}.
Labeled = Mapping[str, Mapping[int, Iterable[SpanKey]]]
WINDOW = 50  # texts per window over time, by default
BY = ("texts", "week")


@dataclass(frozen=True)
class Counts:
    """Spans of a and of b on the texts both labeled, and how many are the same."""

    matched: int = 0
    a: int = 0
    b: int = 0

    @property
    def f1(self) -> float | None:
        total = self.a + self.b
        return 2.0 * self.matched / total if total else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.matched + other.matched, self.a + other.a, self.b + other.b)


@dataclass(frozen=True)
class PairAgreement:
    """Two annotators on the texts both labeled."""

    a: str
    b: str
    texts: int  # labeled by both
    differ: int  # of those, texts where their spans are not the same
    micro: Counts
    labels: dict[str, Counts]


@dataclass(frozen=True)
class Agreement:
    """Every pair of annotators, and the mean over pairs (per label and micro)."""

    pairs: list[PairAgreement]
    texts: int  # texts labeled by two annotators or more
    micro: float | None  # mean over pairs of their micro F1
    labels: dict[str, float | None]  # mean over pairs of each label's F1
    label_spans: dict[str, int]  # spans of each label, every annotator's, on those texts

    def as_dict(self) -> dict:
        return {
            "texts": self.texts,
            "micro_f1": self.micro,
            "labels": {
                label: {"f1": f1, "spans": self.label_spans.get(label, 0)}
                for label, f1 in self.labels.items()
            },
            "pairs": [
                {
                    "a": p.a,
                    "b": p.b,
                    "texts": p.texts,
                    "texts_differ": p.differ,
                    "spans_a": p.micro.a,
                    "spans_b": p.micro.b,
                    "matched": p.micro.matched,
                    "f1": p.micro.f1,
                    "labels": {
                        label: {"f1": c.f1, "matched": c.matched, "a": c.a, "b": c.b}
                        for label, c in p.labels.items()
                    },
                }
                for p in self.pairs
            ],
        }


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def pair_agreement(
    a: Mapping[int, Iterable[SpanKey]],
    b: Mapping[int, Iterable[SpanKey]],
    *,
    names: tuple[str, str] = ("a", "b"),
) -> PairAgreement:
    """F1 between two annotators' spans ({document id: spans}) on the texts both labeled."""
    micro = Counts()
    labels: dict[str, Counts] = {}
    common = sorted(set(a) & set(b))
    differ = 0
    for doc in common:
        sa, sb = set(a[doc]), set(b[doc])
        differ += sa != sb
        both = sa & sb
        micro += Counts(len(both), len(sa), len(sb))
        for label in {s[2] for s in sa | sb}:
            labels[label] = labels.get(label, Counts()) + Counts(
                sum(1 for s in both if s[2] == label),
                sum(1 for s in sa if s[2] == label),
                sum(1 for s in sb if s[2] == label),
            )
    return PairAgreement(
        names[0], names[1], len(common), differ, micro, dict(sorted(labels.items()))
    )


def agreement(labeled: Labeled) -> Agreement:
    """Agreement of every pair of annotators ({annotator: {document id: spans}}) sharing texts,
    and the mean over those pairs."""
    people = sorted(labeled)
    pairs = [
        pair
        for x, y in itertools.combinations(people, 2)
        if (pair := pair_agreement(labeled[x], labeled[y], names=(x, y))).texts
    ]
    seen: dict[int, int] = {}
    for docs in labeled.values():
        for doc in docs:
            seen[doc] = seen.get(doc, 0) + 1
    shared = {doc for doc, n in seen.items() if n > 1}
    label_spans: dict[str, int] = {}
    for docs in labeled.values():
        for doc, spans in docs.items():
            if doc in shared:
                for span in spans:
                    label_spans[span[2]] = label_spans.get(span[2], 0) + 1
    all_labels = sorted({label for p in pairs for label in p.labels})
    return Agreement(
        pairs=pairs,
        texts=len(shared),
        micro=_mean(p.micro.f1 for p in pairs),
        labels={
            label: _mean(p.labels[label].f1 for p in pairs if label in p.labels)
            for label in all_labels
        },
        label_spans=dict(sorted(label_spans.items())),
    )


@dataclass(frozen=True)
class Window:
    """Agreement on the texts that became comparable in one stretch of time."""

    name: str  # "texts 1-50" or "2026-W49"
    texts: int
    micro: float | None
    labels: dict[str, float | None] = field(default_factory=dict)


def over_time(
    labeled: Labeled,
    compared_at: Mapping[int, datetime],
    *,
    by: str = "texts",
    size: int = WINDOW,
) -> list[Window]:
    """Agreement per window: `size` texts at a time in the order they became comparable
    (`compared_at`: the second annotation's save), or per ISO week (by="week")."""
    if by not in BY:
        raise ValidationError(f"agreement over time goes by one of {', '.join(BY)}, not {by!r}")
    if size < 1:
        raise ValidationError(f"a window holds at least one text, not {size}")
    order = sorted(compared_at, key=lambda doc: (compared_at[doc], doc))
    groups: list[tuple[str, list[int]]] = []
    if by == "texts":
        for i in range(0, len(order), size):
            chunk = order[i : i + size]
            name = f"texts {i + 1}-{i + len(chunk)}" if len(chunk) > 1 else f"text {i + 1}"
            groups.append((name, chunk))
    else:
        for week, docs in itertools.groupby(
            order, key=lambda doc: "{}-W{:02d}".format(*compared_at[doc].isocalendar()[:2])
        ):
            groups.append((week, list(docs)))
    out = []
    for name, docs in groups:
        keep = set(docs)
        part = agreement(
            {who: {d: s for d, s in spans.items() if d in keep} for who, spans in labeled.items()}
        )
        out.append(Window(name, part.texts, part.micro, part.labels))
    return out


# ---------------------------------------------------------------- a project's figures


@dataclass(frozen=True)
class AgreementReport:
    """A project's agreement, over time, and how many disagreeing texts a reviewer settled."""

    project: str
    overlap: Overlap
    agreement: Agreement
    over_time: list[Window]
    by: str
    size: int
    disagreeing: int  # texts whose annotators' spans differ
    resolved: int  # of those, texts with a final version

    def as_dict(self) -> dict:
        return {
            "project": self.project,
            "overlap": {"annotators": self.overlap.annotators, "share": self.overlap.share},
            **self.agreement.as_dict(),
            "texts_disagreeing": self.disagreeing,
            "texts_resolved": self.resolved,
            "over_time": {
                "by": self.by,
                **({"size": self.size} if self.by == "texts" else {}),
                "windows": [
                    {"name": w.name, "texts": w.texts, "micro_f1": w.micro, "labels": w.labels}
                    for w in self.over_time
                ],
            },
        }


def project_agreement(
    session: Session, project: Project, *, by: str = "texts", size: int = WINDOW
) -> AgreementReport:
    """Agreement between the project's annotators on the texts two or more of them saved."""
    shared = (
        select(Annotation.document_id)
        .join(Document)
        .where(Document.project_id == project.id, Annotation.status == "done")
        .group_by(Annotation.document_id)
        .having(func.count() > 1)
    )
    rows = session.execute(
        select(
            Annotation.document_id, Annotation.annotator, Annotation.spans, Annotation.updated_at
        )
        .where(Annotation.document_id.in_(shared), Annotation.status == "done")
        .order_by(Annotation.document_id, Annotation.updated_at, Annotation.id)
    ).all()
    labeled: dict[str, dict[int, frozenset[SpanKey]]] = {}
    saves: dict[int, list[datetime]] = {}
    for doc, who, spans, at in rows:
        labeled.setdefault(who, {})[doc] = span_set(spans or [])
        saves.setdefault(doc, []).append(at)
    compared_at = {doc: sorted(times)[1] for doc, times in saves.items()}
    differing = {
        doc for doc in saves if len({docs[doc] for docs in labeled.values() if doc in docs}) > 1
    }
    finals = set(
        session.scalars(
            select(FinalAnnotation.document_id).where(FinalAnnotation.document_id.in_(shared))
        )
    )
    return AgreementReport(
        project=project.name,
        overlap=overlap_of(project),
        agreement=agreement(labeled),
        over_time=over_time(labeled, compared_at, by=by, size=size),
        by=by,
        size=size,
        disagreeing=len(differing),
        resolved=len(differing & finals),
    )
