"""A project's weak sources, built from what the project holds (core.weak.sources).

- its labels: the dictionary of every labeled span string;
- its patterns files (`fewlabel weak add`, the Train page), stored with the project;
- its current model version's stored predictions: the confident spans, with the threshold
  chosen on texts labeled *after* that version was trained (they were in its unlabeled pool
  when it scored them, so they are held out from its training by construction);
- for a task with a built-in weak labeler (core.tasks: acronym, concept), that labeler too.

The list is core.weak.sources.assemble's, as the benchmarks' is.

No torch here: the model source reads the predictions scoring stored, so the Train page,
the CLI and the jobs can all build and evaluate the sources cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ImportFormatError, NotFoundError
from core.labeling.gold import labeled_texts
from core.metrics import span_prf
from core.store.schema import Annotation, Document, Prediction, Project, WeakPatterns
from core.store.versions import current_version
from core.tasks import get_task
from core.weak.patterns import Pattern, parse_patterns
from core.weak.sources import (
    LabelerSource,
    ModelSpans,
    WeakSources,
    assemble,
    choose_threshold,
    coverage,
    cross_fitted,
    scored_spans,
)

# The model's threshold needs this many held-out labeled texts; fewer pick it by noise.
MIN_HELD_OUT = 10


def builtin_source(task: str, texts: Sequence[str] = ()) -> LabelerSource | None:
    """The task's built-in weak labeler as a source (unfitted); None for a task without one
    (custom). `texts` fits what needs corpus statistics (keyphrases)."""
    found = get_task(task)
    if found.labeler is None:
        return None
    return LabelerSource(found.weak_labeler(corpus=list(texts)), f"{task} rule")


def add_patterns(session: Session, project: Project, name: str, data: bytes | str) -> int:
    """Store a patterns file with the project (replacing one of the same name); returns how
    many patterns it holds. A bad file is refused whole: ImportFormatError `name:line: reason`."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(name, None, "not UTF-8 text") from exc
    data = data.removeprefix("\ufeff")
    name = name.strip()[:200] or "patterns.jsonl"
    lines = data.splitlines()
    n = len(parse_patterns(lines, name, list(project.labels)))
    row = session.scalar(
        select(WeakPatterns).where(WeakPatterns.project_id == project.id, WeakPatterns.name == name)
    )
    if row is None:
        row = WeakPatterns(project_id=project.id, name=name)
        session.add(row)
    row.lines, row.n_patterns = lines, n
    session.flush()
    return n


def remove_patterns(session: Session, project: Project, name: str) -> None:
    row = session.scalar(
        select(WeakPatterns).where(WeakPatterns.project_id == project.id, WeakPatterns.name == name)
    )
    if row is None:
        raise NotFoundError(f"project {project.name!r} has no patterns file {name!r}")
    session.delete(row)


def list_patterns(session: Session, project: Project) -> list[dict]:
    rows = session.scalars(
        select(WeakPatterns).where(WeakPatterns.project_id == project.id).order_by(WeakPatterns.id)
    )
    return [{"name": r.name, "patterns": r.n_patterns, "added": r.created_at} for r in rows]


def stored_patterns(session: Session, project: Project) -> list[Pattern]:
    """Every stored pattern, parsed against the project's labels as they are now."""
    out: list[Pattern] = []
    for row in session.scalars(
        select(WeakPatterns).where(WeakPatterns.project_id == project.id).order_by(WeakPatterns.id)
    ):
        out += parse_patterns(row.lines, row.name, list(project.labels))
    return out


def _held_out(session: Session, project: Project):
    """The current version, its stored predictions by text, and [(scored, gold)] on the texts
    labeled since it was trained; None when there is no version."""
    version = current_version(session, project)
    if version is None:
        return None
    rows = session.execute(
        select(Document.id, Document.text, Prediction.spans)
        .join(Prediction, Prediction.document_id == Document.id)
        .where(Prediction.model_version_id == version.id)
    ).all()
    by_text = {text: scored_spans(spans) for _, text, spans in rows}
    by_id = {doc_id: spans for doc_id, _, spans in rows}
    later = set(
        session.scalars(
            select(Annotation.document_id)
            .join(Document, Document.id == Annotation.document_id)
            .where(
                Document.project_id == project.id,
                Annotation.status == "done",
                Annotation.updated_at > version.created_at,
            )
        )
    )
    held = [
        (scored_spans(by_id[d]), lab[2])
        for d, lab in labeled_texts(session, project)
        if d in later and d in by_id
    ]
    return version, by_text, held


def model_source(session: Session, project: Project) -> tuple[ModelSpans | None, str]:
    """The current version's confident spans as a source, or None and why not."""
    found = _held_out(session, project)
    if found is None:
        return None, "model: no model version yet"
    version, by_text, held = found
    if len(held) < MIN_HELD_OUT:
        return None, (
            f"model v{version.version}: its threshold needs {MIN_HELD_OUT} texts labeled since "
            f"it was trained, there are {len(held)}"
        )
    threshold, precision = choose_threshold([h[0] for h in held], [h[1] for h in held])
    return (
        ModelSpans(
            lambda docs: [by_text.get(text, []) for text, _ in docs],
            threshold,
            precision,
            name=f"model v{version.version}",
        ),
        "",
    )


def project_sources(
    session: Session, project: Project, *, texts: list[str] | None = None
) -> tuple[WeakSources, list[str]]:
    """The project's weak sources and a note for each one that is not available.

    `texts` (all of the project's texts) fits what needs corpus statistics (keyphrases).
    """
    labeled = [lab for _, lab in labeled_texts(session, project)]
    patterns = stored_patterns(session, project)
    model, why = model_source(session, project)
    notes = [
        note
        for missing, note in (
            (not labeled, "dictionary: no labeled texts yet"),
            (not patterns, "patterns: none added (fewlabel weak add, or the Train page)"),
            (model is None, why),
        )
        if missing
    ]
    builtin = builtin_source(project.task, texts or [])
    sources = assemble(labeled, builtin=builtin, patterns=patterns, model=model)
    return WeakSources(sources), notes


def evaluate_sources(
    session: Session, project: Project, *, folds: int = 5, texts: list[str] | None = None
) -> dict:
    """Each source's span P/R/F1 and coverage on the project's labeled texts, and the
    combination's: the dictionary and the patterns' weights are built without the text they
    are scored on (cross-fitted, `folds` folds); the model on its held-out texts only."""
    labeled = [lab for _, lab in labeled_texts(session, project)]
    labels = list(project.labels)
    patterns = stored_patterns(session, project)
    builtin = builtin_source(project.task, texts or [])

    def build(rest):
        return assemble(rest, builtin=builtin, patterns=patterns)

    gold = [lab[2] for lab in labeled]
    report: dict = {"labeled": len(labeled), "sources": {}, "notes": []}
    if len(labeled) >= 2:
        for name, pred in cross_fitted(labeled, build, folds=folds).items():
            report["sources"][name] = _scores(gold, pred, labels)
    else:
        report["notes"].append("fewer than 2 labeled texts: nothing to score on")
    found = _held_out(session, project)
    if found is None or len(found[2]) < MIN_HELD_OUT:
        report["notes"].append(model_source(session, project)[1])
    else:
        version, _, held = found
        pred = []
        for k, (scored, _) in enumerate(held):  # each text's threshold chosen on the others
            others = [h for j, h in enumerate(held) if j % folds != k % folds]
            threshold, _ = choose_threshold([h[0] for h in others], [h[1] for h in others])
            pred.append([sp for sp, conf in scored if conf >= threshold])
        scores = _scores([h[1] for h in held], pred, labels)
        report["sources"][f"model v{version.version} (held-out texts)"] = scores
    return report


def _scores(gold, pred, labels) -> dict:
    m = span_prf(gold, pred, labels)
    return {
        "p": m["p_micro"],
        "r": m["r_micro"],
        "f1": m["f1_micro"],
        "coverage": coverage(pred),
        "texts": len(gold),
        "spans": sum(len(p) for p in pred),
    }
