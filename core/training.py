"""The model loop on a project: train a version from its labels, register it, score the pool.

Runs inside a job (core.jobs) in a worker process. Torch is imported only here and in
core.model, never by the UI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.active import STRATEGIES, score_documents
from core.active import select as select_batch
from core.config import get_settings
from core.db import session_scope
from core.errors import FewlabelError, NotFoundError
from core.schema import Annotation, Document, ModelVersion, Prediction, Project, utcnow
from core.text import Span, words_of

Progress = Callable[[float, str], None]
# Diversity is applied to the head of the queue, where annotators will actually look.
DIVERSE_HEAD = 200
SCORE_CHUNK = 2000
# A BALD estimate from this many dropout passes (each one a full forward pass).
BALD_SAMPLES = 8


def training_examples(session: Session, project: Project) -> list[tuple[str, list, list[Span]]]:
    """(text, words, spans) for every labeled document; the latest done annotation wins."""
    rows = session.execute(
        select(Document.id, Document.text, Document.tokens, Annotation.spans)
        .join(Annotation, Annotation.document_id == Document.id)
        .where(Document.project_id == project.id, Annotation.status == "done")
        .order_by(Document.id, Annotation.updated_at)
    ).all()
    latest: dict[int, tuple] = {}
    for doc_id, text, tokens, spans in rows:
        latest[doc_id] = (text, tokens, spans)
    return [
        (text, words_of(text, tokens), [Span(s["start"], s["end"], s["label"]) for s in spans])
        for text, tokens, spans in latest.values()
    ]


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


def current_version(session: Session, project: Project) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.is_current.is_(True)
        )
    )


def list_versions(session: Session, project: Project) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project.id)
            .order_by(ModelVersion.version)
        )
    )


def set_current(session: Session, project: Project, version: int) -> ModelVersion:
    """Make a version the one that pre-annotates and orders the queue."""
    mv = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == version
        )
    )
    if mv is None:
        raise NotFoundError(f"project {project.name!r} has no model version {version}")
    session.execute(
        update(ModelVersion).where(ModelVersion.project_id == project.id).values(is_current=False)
    )
    mv.is_current = True
    session.flush()
    return mv


def project_models_dir(project_id: int, name: str) -> Path:
    """Where a project's model versions and aligned bases live, under the settings' home."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "project"
    return get_settings().models_dir / f"{project_id}-{slug}"


def train_arguments(params: dict):
    """TrainArgs from a job's params: only known fields, so old job rows stay readable."""
    from core.model.finetune import TrainArgs

    known = {f.name for f in fields(TrainArgs)}
    return TrainArgs(**{k: v for k, v in (params.get("train_args") or {}).items() if k in known})


def run_train_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `train` job: finetune on the project's labels, register the version, score the pool."""
    from core.model.backbone import is_tagger_checkpoint
    from core.model.finetune import finetune
    from core.model.rules import evidence_needs_corpus

    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        if project is None:
            raise NotFoundError(f"project {params['project_id']} no longer exists")
        examples = training_examples(s, project)
        labels = list(project.labels)
        args = train_arguments(params)
        # concept evidence learns its IDFs from every text of the project, not only the labeled
        wanted = evidence_needs_corpus(labels, args.evidence)
        corpus = project_texts(s, project) if wanted else None
        spelling = dict(project.label_spelling or {})
        base = params.get("base") or project.base_model or "default"
        current = current_version(s, project)
        if params.get("warm_start") and current is not None and Path(current.path).is_dir():
            base = current.path
        next_number = max((v.version for v in list_versions(s, project)), default=0) + 1
        project_id, project_name = project.id, project.name
    if not examples:
        raise FewlabelError(
            f"project {project_name!r} has no labeled documents yet: label some, then retrain"
        )
    report(0.0, f"training on {len(examples)} labeled documents", force=True)
    result = finetune(
        examples,
        labels,
        base=base,
        args=args,
        corpus=corpus,
        progress=lambda f, m: report(0.85 * f, m),
        should_stop=report.should_stop,
    )
    out = project_models_dir(project_id, project_name) / f"v{next_number}"
    aligned = bool(is_tagger_checkpoint(base) and result.model.info.get("objective") == "aligned")
    result.model.save(out, label_spelling=spelling, project=project_name, version=next_number)
    with session_scope(url) as s:
        mv = ModelVersion(
            project_id=project_id,
            version=next_number,
            path=str(out),
            base=str(base),
            aligned=aligned,
            n_labels=len(examples),
            metrics=result.metrics,
            train_args={**result.model.info.get("train_args", {}), "base": str(base)},
            train_seconds=result.train_seconds,
            created_at=utcnow(),
        )
        s.add(mv)
        s.flush()
        set_current(s, s.get(Project, project_id), next_number)
        version_id = mv.id
    report(0.85, f"version {next_number} saved; scoring the unlabeled pool", force=True)
    scored = score_pool(
        url,
        project_id,
        version_id,
        model=result.model,
        progress=lambda f, m: report(0.85 + 0.15 * f, m),
    )
    return {
        "version": next_number,
        "path": str(out),
        "n_labels": len(examples),
        "metrics": result.metrics,
        "train_seconds": round(result.train_seconds, 2),
        "scored": scored,
    }


def score_pool(
    url: str,
    project_id: int,
    version_id: int,
    *,
    model=None,
    progress: Progress | None = None,
    strategy: str | None = None,
) -> int:
    """Predict every open document with a version; store spans and scores; reorder the queue.

    The queue is ordered by the project's strategy (most uncertain first); `random` keeps the
    random order but still stores uncertainty so the UI can show it.
    """
    from core.model.predict import load_tagger, predict

    with session_scope(url) as s:
        project = s.get(Project, project_id)
        mv = s.get(ModelVersion, version_id)
        strategy = strategy or project.strategy or "random"
        path = mv.path
        ids = list(
            s.scalars(
                select(Document.id).where(
                    Document.project_id == project_id, Document.state == "open"
                )
            )
        )
    if model is None:
        model = load_tagger(path)
    scoring = strategy if strategy != "random" else "least_confidence"
    needs_samples = STRATEGIES[scoring].needs_samples
    all_ids: list[int] = []
    all_scores: list[float] = []
    all_texts: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, len(ids), SCORE_CHUNK):
        chunk_ids = ids[start : start + SCORE_CHUNK]
        with session_scope(url) as s:
            docs = s.execute(
                select(Document.id, Document.text, Document.tokens).where(
                    Document.id.in_(chunk_ids)
                )
            ).all()
        inputs = [(text, words_of(text, tokens)) for _, text, tokens in docs]
        preds = predict(
            model,
            inputs,
            progress=_chunk_progress(progress, start, len(docs), len(ids)),
            mc_dropout=BALD_SAMPLES if needs_samples else 0,
        )
        scores = score_documents(
            [p.word_probs for p in preds],
            strategy=scoring,
            samples_list=[p.mc_probs for p in preds] if needs_samples else None,
        )
        with session_scope(url) as s:
            s.execute(
                delete(Prediction).where(
                    Prediction.document_id.in_([d[0] for d in docs]),
                    Prediction.model_version_id == version_id,
                )
            )
            s.add_all(
                Prediction(
                    document_id=doc_id,
                    model_version_id=version_id,
                    spans=pred.spans,
                    score=float(score),
                )
                for (doc_id, _, _), pred, score in zip(docs, preds, scores, strict=True)
            )
        all_ids += [d[0] for d in docs]
        all_scores += [float(x) for x in scores]
        all_texts += [d[1] for d in docs]
    with session_scope(url) as s:
        # Predictions of older versions are superseded; keep the table the size of the pool.
        old = select(ModelVersion.id).where(
            ModelVersion.project_id == project_id, ModelVersion.id != version_id
        )
        s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
        if strategy != "random" and all_ids:
            s.execute(
                update(Document),
                [
                    {"id": doc_id, "rank": rank}
                    for doc_id, rank in queue_ranks(all_ids, all_scores, all_texts)
                ],
            )
    if progress:
        progress(1.0, f"scored {len(all_ids)} documents in {time.perf_counter() - t0:.1f} s")
    return len(all_ids)


def _chunk_progress(progress: Progress | None, offset: int, size: int, total: int) -> Progress:
    """Turn a chunk's own 0..1 progress into progress over the whole pool."""

    def report(fraction: float, _message: str) -> None:
        if progress:
            k = offset + int(fraction * size)
            progress(k / max(1, total), f"scored {k}/{total} unlabeled documents")

    return report


def queue_ranks(
    ids: Sequence[int], scores: Sequence[float], texts: Sequence[str]
) -> list[tuple[int, float]]:
    """Ranks (lowest first) from uncertainty: the head avoids near-duplicates, the rest by score."""
    if not ids:
        return []
    arr = np.asarray(scores, dtype=np.float64)
    head = select_batch(arr, min(DIVERSE_HEAD, len(ids)), texts=texts, diversity=True)
    in_head = set(head)
    rest = [i for i in np.argsort(-arr, kind="stable") if int(i) not in in_head]
    order = head + [int(i) for i in rest]
    return [(ids[i], float(r)) for r, i in enumerate(order)]


def queue_preview(session: Session, project: Project, n: int = 10) -> list[dict]:
    """The next open documents in queue order with their stored uncertainty, for the CLI."""
    mv = current_version(session, project)
    stmt = (
        select(Document.id, Document.text, Prediction.score)
        .outerjoin(
            Prediction,
            (Prediction.document_id == Document.id)
            & (Prediction.model_version_id == (mv.id if mv else -1)),
        )
        .where(Document.project_id == project.id, Document.state == "open")
        .order_by(Document.rank, Document.id)
        .limit(n)
    )
    return [{"id": i, "text": t, "score": sc} for i, t, sc in session.execute(stmt)]


def set_strategy(session: Session, project: Project, strategy: str) -> None:
    """Choose how the queue is ordered after the next scoring (random keeps import order)."""
    if strategy not in STRATEGIES:
        raise FewlabelError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    project.strategy = strategy
    session.flush()


def run_score_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `score` job: rescore the unlabeled pool with the current version (new strategy)."""
    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        mv = current_version(s, project) if project else None
        if mv is None:
            raise FewlabelError("there is no model version to score with: train one first")
        project_id, version_id = project.id, mv.id
    n = score_pool(url, project_id, version_id, progress=report)
    return {"scored": n}


def version_table(session: Session, project: Project) -> list[dict]:
    """One row per version for the Train page: labels, dev F1 (macro, micro, per label), time."""
    rows = []
    for v in list_versions(session, project):
        dev = (v.metrics or {}).get("dev") or {}
        row = {
            "version": v.version,
            "current": v.is_current,
            "labels": v.n_labels,
            "f1_macro": dev.get("f1_macro"),
            "f1_micro": dev.get("f1_micro"),
            "train_seconds": round(v.train_seconds, 1),
            "base": v.base,
            "created": v.created_at,
        }
        for label, m in (dev.get("per_label") or {}).items():
            row[f"f1_{label}"] = m.get("f1")
        rows.append(row)
    return rows


def run_pretrain_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `pretrain` job: aligned pretraining on the project's texts plus the sample corpus;
    the checkpoint becomes the project's base model for the next Retrain."""
    from core.config import SAMPLE_DATA
    from core.corpus import read_texts
    from core.model.pretrain import PretrainArgs, pretrain
    from core.weak import plain_corpus

    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        if project is None:
            raise NotFoundError(f"project {params['project_id']} no longer exists")
        if project.task not in ("acronym", "concept"):
            raise FewlabelError(
                "aligned pretraining needs weak labels, which exist for the acronym and concept "
                f"tasks, not {project.task!r}"
            )
        records = project_records(s, project)
        task, project_id, name = project.task, project.id, project.name
        base = params.get("base") or project.base_model or "default"
    corpus = [f"project {name} ({len(records)} texts)"]
    sample = SAMPLE_DATA / "wiki_sentences.jsonl"
    if params.get("sample_corpus", True) and sample.is_file():
        extra = [(r.text, r.tokens) for r in read_texts(sample)]
        records += extra
        corpus.append(f"{sample.name} ({len(extra)} texts)")
    # texts imported with link markup train as plain text, their anchors as concept labels
    texts, anchors = plain_corpus(records)
    out = project_models_dir(project_id, name) / f"aligned-{job_id}"
    args = PretrainArgs(
        objective="aligned",
        base=base,
        steps=params.get("steps"),
        max_minutes=None if params.get("steps") else float(params.get("max_minutes", 15)),
    )
    pretrain(
        texts,
        anchors=anchors,
        task=task,
        out_dir=out,
        args=args,
        corpus_names=corpus,
        progress=report,
        should_stop=report.should_stop,
    )
    with session_scope(url) as s:
        s.get(Project, project_id).base_model = str(out)
    return {"checkpoint": str(out), "texts": len(texts), "base_model_set": True}
