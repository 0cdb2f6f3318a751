"""The model loop on a project: the jobs that train a version from its labels and build an
aligned base from its texts.

Run inside a job in a worker process (core.jobs.worker). Torch is imported only inside the job
functions and core.model, never by the UI; the queries the UI reads live in core.store.versions,
scoring the pool in core.active.scoring.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import defaults
from core.active.candidates import candidate_ids
from core.active.scoring import score_pool
from core.config import get_settings
from core.errors import FewlabelError, NotFoundError
from core.labeling.decisions import partial_answers
from core.labeling.gold import labeled_texts
from core.labeling.weak_sources import project_sources
from core.metrics import fold_count, percent
from core.store.db import session_scope
from core.store.schema import Document, Project, utcnow
from core.store.versions import (
    TMP_MARK,
    current_version,
    record_metrics,
    register_version,
    reserve_version,
    sweep_model_files,
)
from core.tasks import get_task
from core.text import words_of
from core.weak import anchored, plain_corpus


def project_records(session: Session, project: Project) -> list[tuple[str, list[str] | None]]:
    """(text, tokens) of every document of a project, labeled or not, in import order."""
    rows = session.execute(
        select(Document.text, Document.tokens)
        .where(Document.project_id == project.id)
        .order_by(Document.id)
    )
    return [(text, tokens) for text, tokens in rows]


def project_texts(session: Session, project: Project) -> list[tuple[str, list]]:
    """(text, words) of every document of a project, labeled or not."""
    return [(text, words_of(text, tokens)) for text, tokens in project_records(session, project)]


def project_models_dir(project_id: int, name: str) -> Path:
    """Where a project's model versions and aligned bases live, under the settings' home."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "project"
    return get_settings().models_dir / f"{project_id}-{slug}"


def train_arguments(params: dict):
    """TrainArgs from a job's params: only known fields, so old job rows stay readable."""
    from core.model.finetune import TrainArgs

    known = {f.name for f in fields(TrainArgs)}
    return TrainArgs(**{k: v for k, v in (params.get("train_args") or {}).items() if k in known})


def pretrain_args(objective: str, base: str, *, steps: int | None, minutes: float):
    """PretrainArgs with a budget of `steps` (quick runs, tests) or else of `minutes`."""
    from core.model.pretrain import PretrainArgs

    return PretrainArgs(
        objective=objective,
        base=base,
        steps=steps,
        max_minutes=None if steps else float(minutes),
    )


@dataclass
class _TrainPlan:
    """What a `train` job reads of its project, in one transaction, before it trains."""

    project_id: int
    name: str
    examples: list  # (text, words, spans) of each labeled text (core.labeling.gold)
    partial: list  # (text, words, accepted, rejected) of each text answered only in part
    unresolved: set[int]  # texts whose annotators disagree, left out
    task: str
    labels: list[str]
    args: object  # core.model.finetune.TrainArgs
    corpus: list | None  # every text of the project, where the evidence learns from them
    spelling: dict
    base: str
    cv_base: str


def _train_plan(url: str, params: dict) -> _TrainPlan:
    """The project's labels and settings for a `train` job; the base is the current version
    with `warm_start` (cross-validation still starts from the project's base)."""
    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        if project is None:
            raise NotFoundError(f"project {params['project_id']} no longer exists")
        unresolved: set[int] = set()
        labeled = labeled_texts(s, project, unresolved=unresolved)
        examples = [lab for _, lab in labeled]
        partial = answered_texts(s, project, {i for i, _ in labeled} | unresolved)
        task, labels = project.task, list(project.labels)
        args = train_arguments(params)
        # concept evidence learns its IDFs from every text of the project, not only the labeled
        evidence = get_task(task).evidence_for(args.evidence)
        corpus = project_texts(s, project) if evidence and evidence.needs_corpus else None
        spelling = dict(project.label_spelling or {})
        base = params.get("base") or project.base_model or "default"
        # cross-validation starts from the base, never from the current version, which has
        # seen most of the texts each fold holds out
        cv_base = base
        current = current_version(s, project)
        if params.get("warm_start") and current is not None and Path(current.path).is_dir():
            base = current.path
        return _TrainPlan(
            project_id=project.id,
            name=project.name,
            examples=examples,
            partial=partial,
            unresolved=unresolved,
            task=task,
            labels=labels,
            args=args,
            corpus=corpus,
            spelling=spelling,
            base=base,
            cv_base=cv_base,
        )


def answered_texts(session: Session, project: Project, gold_ids: set[int]) -> list[tuple]:
    """(text, words, accepted spans, rejected spans) of every text of a project answered only
    in part (core.labeling.decisions.partial_answers, teach mode's accepts and rejects); a
    text in `gold_ids` (a full annotation or final version, disputed or not) trains from
    its full annotation instead, never from its decisions."""
    out = []
    for doc_id, text, tokens, accepted, rejected in partial_answers(session, project):
        if doc_id not in gold_ids:
            out.append((text, words_of(text, tokens, [*accepted, *rejected]), accepted, rejected))
    return out


def run_train_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `train` job: finetune on the project's labels, register the version, score the pool."""
    from core.model.crossval import wants_cross_validation
    from core.model.finetune import finetune

    plan = _train_plan(url, params)
    examples = plan.examples
    models_dir = project_models_dir(plan.project_id, plan.name)
    sweep_model_files(url, plan.project_id, models_dir)
    if not examples and not plan.partial:
        raise FewlabelError(
            f"project {plan.name!r} has no labeled documents yet: label some, then retrain"
        )
    # too few labels for the dev slice to measure F1: cross-validate (core.model.crossval),
    # after the pool is scored: the folds only measure, and the annotators should not wait
    # for them to get texts chosen by the new model (issue 14: Retrain to a fresh queue)
    folds = fold_count(len(examples)) if wants_cross_validation(len(examples), plan.args) else 0
    folds = folds if params.get("cv", True) else 0
    trained, scored_at = (0.4, 0.5) if folds else (0.85, 1.0)  # of the progress bar
    more = f"; then {folds} more finetunes for {folds}-fold cross-validated F1" if folds else ""
    n_held = len(plan.unresolved)
    held = f" ({n_held} whose annotators disagree wait for a reviewer)" if n_held else ""
    answered = f" and {len(plan.partial)} answered in part" if plan.partial else ""
    texts = f"{len(examples)} labeled documents{answered}{held}{more}"
    report(0.0, f"training on {texts}", force=True)
    result = finetune(
        examples,
        plan.labels,
        task=plan.task,
        base=plan.base,
        args=plan.args,
        corpus=plan.corpus,
        progress=lambda f, m: report(trained * f, m),
        should_stop=report.should_stop,
        partial=plan.partial,
    )
    version_id, number, out = _register(plan, result, models_dir, report.lease)
    # the version becomes current only with its scores stored (core.active.scoring.score_pool); in
    # a pool larger than the candidate set, with those of its candidates (the old queue's
    # head and a random sample), and a background job scores the rest
    with session_scope(url) as s:
        candidates = candidate_ids(s, s.get(Project, plan.project_id), params.get("candidates"))
    what = f"{len(candidates)} candidate texts" if candidates else "the unlabeled pool"
    report(trained, f"version {number} saved; scoring {what}", force=True)
    scored = score_pool(
        url,
        plan.project_id,
        version_id,
        model=result.model,
        progress=lambda f, m: report(trained + (scored_at - trained) * f, m),
        make_current=True,
        lease=report.lease,
        ids=candidates,
    )
    rest_job = _score_the_rest(url, plan.project_id) if candidates else None
    if folds:
        _cross_validate(plan, result, version_id, number, folds, report, start=scored_at)
    return {
        "version": number,
        "path": str(out),
        "n_labels": len(examples),
        **({"n_partial": len(plan.partial)} if plan.partial else {}),
        "metrics": result.metrics,
        "train_seconds": round(result.train_seconds, 2),
        "scored": scored,
        "rest_job": rest_job,
    }


def _register(plan: _TrainPlan, result, models_dir: Path, lease) -> tuple[int, int, Path]:
    """Save a finetuned model as the project's next version: (its id, number, folder)."""
    from core.model.backbone import is_tagger_checkpoint

    base, info = plan.base, result.model.info
    aligned = bool(is_tagger_checkpoint(base) and info.get("objective") == "aligned")
    # the number comes from the database; the files go under a temporary name and are renamed
    # to v<N> when complete (core.store.versions): no job can overwrite a registered version
    version_id, number, tmp = reserve_version(lease, plan.project_id, models_dir)
    try:
        result.model.save(tmp, label_spelling=plan.spelling, project=plan.name, version=number)
        out = register_version(
            lease,
            version_id,
            tmp,
            base=str(base),
            aligned=aligned,
            n_labels=len(plan.examples),
            metrics=result.metrics,
            train_args={
                **info.get("train_args", {}),
                "base": str(base),
                # an aligned base's record of its weak sources is part of the lineage the
                # finetuned model inherits (Tagger.from_base); None from a plain backbone
                "weak_sources": (info.get("pretraining") or {}).get("weak_sources"),
            },
            train_seconds=result.train_seconds,
            created_at=utcnow(),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # left only when registering failed
    return version_id, number, out


def _cross_validate(
    plan: _TrainPlan, result, version_id: int, number: int, folds: int, report, *, start: float
) -> None:
    """Cross-validate the new version's F1 from the base (the folds only measure) and add it
    to the version's metrics; the progress bar runs from `start` to the end."""
    from core.model.crossval import cross_validate

    report(
        start,
        f"the queue follows version {number}; cross-validating its F1 ({folds} folds)",
        force=True,
    )
    cv = cross_validate(
        plan.examples,
        plan.labels,
        task=plan.task,
        base=plan.cv_base,
        args=plan.args,
        corpus=plan.corpus,
        progress=lambda f, m: report(start + (1 - start) * f, m),
        should_stop=report.should_stop,
    )
    if cv:
        result.metrics["cv"] = cv
        record_metrics(report.lease, version_id, result.metrics)
        f1 = percent(cv["f1_micro"]["mean"], cv["f1_micro"]["sd"])
        note = f"{cv['folds']} folds, {cv['texts']} texts, {cv['spans']} spans"
        report(1.0, f"cross-validated micro F1 {f1} % ({note})", force=True)


def _score_the_rest(url: str, project_id: int) -> int | None:
    """Queue the background `score` job for what the candidates left
    (core.active.candidates.score_rest) and start its worker (core.jobs.queue.start); None
    when one is already running, which moves on to the newest version by itself."""
    from core.errors import ConflictError
    from core.jobs.queue import enqueue, start

    try:
        with session_scope(url) as s:
            project = s.get(Project, project_id)
            job_id = enqueue(s, "score", project, {"project_id": project_id, "rest": True}).id
    except ConflictError:
        return None
    start(url, job_id)
    return job_id


def run_pretrain_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `pretrain` job: aligned pretraining on the project's texts with its weak sources
    (core.labeling.weak_sources: built-in rules, its dictionary, patterns, the model's confident
    spans); the checkpoint becomes the project's base model for the next Retrain."""
    from core.config import SAMPLE_DATA
    from core.io.corpus import read_texts
    from core.model.pretrain import pretrain

    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        if project is None:
            raise NotFoundError(f"project {params['project_id']} no longer exists")
        records = project_records(s, project)
        task, labels, project_id, name = (
            project.task,
            list(project.labels),
            project.id,
            project.name,
        )
        base = params.get("base") or project.base_model or "default"
        sources, notes = project_sources(s, project, texts=[t for t, _ in records])
    corpus = [f"project {name} ({len(records)} texts)"]
    sample = SAMPLE_DATA / "wiki_sentences.jsonl"
    # the sample's Wikipedia sentences are acronym-rich general text: more text for the
    # built-in tasks, noise for a project with labels of its own
    if params.get("sample_corpus", task != "custom") and sample.is_file():
        extra = [(r.text, r.tokens) for r in read_texts(sample)]
        records += extra
        corpus.append(f"{sample.name} ({len(extra)} texts)")
    # texts imported with link markup train as plain text, their anchors as concept labels
    texts, anchors = plain_corpus(records)
    report(0.0, f"weak labels for {len(texts)} texts from {sources.__name__}", force=True)
    sources, silent = sources.prepared(texts)
    if silent:
        notes.append(f"{', '.join(silent)}: matched nothing in {len(texts)} texts, left out")
    if not sources.sources:
        raise FewlabelError(
            f"project {name!r} has no weak labels to pretrain on: label some texts or add "
            "patterns (fewlabel weak add) first"
        )
    labeler = anchored(sources, anchors) if anchors and get_task(task).link_anchors else sources
    models_dir = project_models_dir(project_id, name)
    sweep_model_files(url, project_id, models_dir)
    # written under a temporary name, renamed when complete and made the base in one step
    out = models_dir / f"aligned-{job_id}"
    tmp = models_dir / f"aligned-{job_id}{TMP_MARK}{job_id}"
    args = pretrain_args(
        "aligned",
        base,
        steps=params.get("steps"),
        minutes=params.get("max_minutes", defaults.PRETRAIN_MINUTES),
    )
    try:
        pretrain(
            texts,
            task=task,
            labels=labels,
            labeler=labeler,
            out_dir=tmp,
            args=args,
            corpus_names=corpus,
            progress=report,
            should_stop=report.should_stop,
        )
        _install_base(report.lease, project_id, tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # left only when the job did not finish
    return {
        "checkpoint": str(out),
        "texts": len(texts),
        "base_model_set": True,
        "weak_sources": sources.describe(),
        "notes": notes,
    }


def _install_base(lease, project_id: int, tmp: Path, out: Path) -> None:
    """Rename a finished aligned base into place and make it the project's base, in one
    transaction under the job's lease (a reaped job installs nothing)."""
    moved = False
    try:
        with session_scope(lease.url) as s:
            lease.hold(s, message="installing the aligned base")
            if out.exists():
                shutil.rmtree(out)  # this job's own name: debris of a crash mid-install
            os.replace(tmp, out)
            moved = True
            s.get(Project, project_id).base_model = str(out)
    except BaseException:
        if moved and out.exists() and not tmp.exists():
            os.replace(out, tmp)  # not the base: back under the temporary name, swept
        raise
