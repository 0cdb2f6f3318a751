"""Scoring the unlabeled pool with a model version: predicted spans, uncertainty, queue order.

Runs inside a job (core.workers) or the CLI; torch is imported only when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import delete, func, select, update

from core import defaults
from core.active import Strategy, get_strategy, score_documents
from core.active import select as select_batch
from core.db import session_scope
from core.errors import FewlabelError
from core.schema import Document, ModelVersion, Prediction, Project
from core.text import words_of
from core.versions import current_version, set_current

Progress = Callable[[float, str], None]


class ScoringSuperseded(FewlabelError):
    """The version being scored stopped being current before its scores were stored."""


# Diversity is applied to the head of the queue, where annotators will actually look.
DIVERSE_HEAD = 200
SCORE_CHUNK = 2000


def predict_and_score(
    model, inputs: Sequence[tuple[str, list]], strategy: Strategy, *, progress=None
) -> tuple[list, np.ndarray]:
    """A model's predictions for (text, words) inputs and each one's score under `strategy`
    (a strategy that needs a model); strategies that need samples get BALD_SAMPLES passes."""
    from core.model.predict import predict

    preds = predict(
        model,
        inputs,
        progress=progress,
        mc_dropout=defaults.BALD_SAMPLES if strategy.needs_samples else 0,
        engine="auto",  # ONNX Runtime where faster on CPU (core.model.engines); torch for BALD
    )
    scores = score_documents(
        [p.word_probs for p in preds],
        strategy=strategy.name,
        samples_list=[p.mc_probs for p in preds] if strategy.needs_samples else None,
    )
    return preds, scores


def score_pool(
    url: str,
    project_id: int,
    version_id: int,
    *,
    model=None,
    progress: Progress | None = None,
    strategy: str | None = None,
    make_current: bool = False,
    lease=None,
    ids: Sequence[int] | None = None,
) -> int:
    """Predict every open document with a version (or the open ones of `ids`, the candidates
    of a Retrain); store spans and scores; reorder the queue.

    The queue is ordered by the project's strategy (most uncertain first); `random` keeps the
    random order but still stores uncertainty (least confidence) so the UI can show it.

    Predictions are written in chunks under the version, which nothing reads until the last
    transaction switches at once: the version becomes current (`make_current`, a new
    version) or is checked to still be, older versions' predictions go and the queue is
    reordered. Killed mid-way, the project keeps its current version and that version's
    predictions and queue. `lease` (core.workers.Lease): a job's writes, checked to be its own.

    With `ids`, only those texts' older predictions are replaced, and they take ranks below
    every other open text's: the queue starts with them, in the new model's order, and the
    rest keeps its order until `score_rest` reaches it.
    """
    from core.model.predict import load_tagger

    with session_scope(url) as s:
        project = s.get(Project, project_id)
        mv = s.get(ModelVersion, version_id)
        chosen = get_strategy(strategy or project.strategy or "random")
        path = mv.path
        wanted = ids
        ids = list(
            s.scalars(
                select(Document.id).where(
                    Document.project_id == project_id, Document.state == "open"
                )
            )
        )
        if wanted is not None:
            still_open = set(ids)
            ids = [i for i in wanted if i in still_open]
    if model is None:
        model = load_tagger(path)
    scorer = chosen if chosen.needs_model else get_strategy("least_confidence")
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
        preds, scores = predict_and_score(
            model,
            inputs,
            scorer,
            progress=_chunk_progress(progress, start, len(docs), len(ids)),
        )
        with session_scope(url) as s:
            if lease is not None:
                lease.hold(s)
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
    superseded = None
    with session_scope(url) as s:
        if lease is not None:
            lease.hold(s, message="switching to the new scores")
        project = s.get(Project, project_id)
        mv = s.get(ModelVersion, version_id)
        if make_current:
            set_current(s, project, mv.version)
        if not mv.is_current:
            # another version became current while this one scored (a retrain finished):
            # its scores win; these are dropped
            s.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
            superseded = mv.version
        elif wanted is None:
            # Predictions of older versions are superseded; keep the table the pool's size.
            old = select(ModelVersion.id).where(
                ModelVersion.project_id == project_id, ModelVersion.id != version_id
            )
            s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
            if chosen.needs_model and all_ids:
                s.execute(
                    update(Document),
                    [
                        {"id": doc_id, "rank": rank}
                        for doc_id, rank in queue_ranks(all_ids, all_scores, all_texts)
                    ],
                )
        else:
            _replace_older(s, all_ids, version_id)
            if chosen.needs_model and all_ids:
                base = _lowest_rank(s, project_id)
                s.execute(
                    update(Document),
                    [
                        {"id": doc_id, "rank": base - len(all_ids) + rank}
                        for doc_id, rank in queue_ranks(all_ids, all_scores, all_texts)
                    ],
                )
    if superseded is not None:
        raise ScoringSuperseded(
            f"version {superseded} is no longer current; its scores were not applied"
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


def _replace_older(session, doc_ids: Sequence[int], version_id: int) -> None:
    """Drop the texts' predictions by other versions: each text keeps its newest."""
    for start in range(0, len(doc_ids), SCORE_CHUNK):
        session.execute(
            delete(Prediction).where(
                Prediction.document_id.in_(doc_ids[start : start + SCORE_CHUNK]),
                Prediction.model_version_id != version_id,
            )
        )


def _lowest_rank(session, project_id: int) -> float:
    """The queue head's rank (the queue index makes it one lookup), 0 for an empty queue."""
    lowest = session.scalar(
        select(func.min(Document.rank)).where(
            Document.project_id == project_id, Document.state == "open"
        )
    )
    return float(lowest) if lowest is not None else 0.0


def candidate_ids(session, project: Project, size: int | None = None) -> list[int] | None:
    """What a new version scores before it orders the queue (issue 14: the wait after a
    Retrain must not grow with the pool): the current queue's head, which the previous model
    found most uncertain (half of `size`), and a fresh random sample of the other open texts.
    None when the open pool is no larger than `size`: then it is scored whole."""
    size = size or candidate_size(project)
    is_open = (Document.project_id == project.id) & (Document.state == "open")
    n_open = session.scalar(select(func.count()).select_from(Document).where(is_open))
    if n_open <= size:
        return None
    head = list(
        session.scalars(
            select(Document.id).where(is_open).order_by(Document.rank, Document.id).limit(size // 2)
        )
    )
    fresh = session.scalars(
        select(Document.id)
        .where(is_open, Document.id.not_in(head))
        .order_by(func.random())
        .limit(size - len(head))
    )
    return head + list(fresh)


def candidate_size(project: Project) -> int:
    """The project's candidate set size (settings["candidates"]), else the default."""
    value = (project.settings or {}).get("candidates")
    return int(value) if value else defaults.CANDIDATES


def unscored_ids(session, project_id: int, version_id: int, *, after: int, limit: int) -> list:
    """Open texts with id > `after` that `version_id` has not scored, in id order."""
    scored = select(Prediction.document_id).where(
        Prediction.model_version_id == version_id, Prediction.document_id == Document.id
    )
    return list(
        session.scalars(
            select(Document.id)
            .where(
                Document.project_id == project_id,
                Document.state == "open",
                Document.id > after,
                ~scored.exists(),
            )
            .order_by(Document.id)
            .limit(limit)
        )
    )


def score_rest(url: str, project_id: int, *, progress: Progress | None = None, lease=None) -> int:
    """Score the open texts the current version has not scored (what its Retrain left after
    the candidates), a chunk at a time, always with the newest current version: a Retrain that
    finishes meanwhile is picked up at the next chunk. When every text is scored, the whole
    queue is put in the current model's order. Returns how many texts were scored."""
    from core.model.predict import load_tagger

    loaded: tuple[int, object] | None = None
    after, total, t0 = 0, 0, time.perf_counter()
    while True:
        with session_scope(url) as s:
            project = s.get(Project, project_id)
            mv = current_version(s, project) if project else None
            if mv is None:
                return total
            version_id, path = mv.id, mv.path
            scorer = get_strategy(project.strategy or "random")
            scorer = scorer if scorer.needs_model else get_strategy("least_confidence")
            if loaded is None or loaded[0] != version_id:
                after = 0  # a newer version: start over from the first unscored text
            chunk = unscored_ids(s, project_id, version_id, after=after, limit=SCORE_CHUNK)
            docs = s.execute(
                select(Document.id, Document.text, Document.tokens).where(Document.id.in_(chunk))
            ).all()
            remaining = s.scalar(
                select(func.count())
                .select_from(Document)
                .where(Document.project_id == project_id, Document.state == "open")
            )
        if not docs:
            break
        if loaded is None or loaded[0] != version_id:
            loaded = (version_id, load_tagger(path))
        inputs = [(text, words_of(text, tokens)) for _, text, tokens in docs]
        preds, scores = predict_and_score(loaded[1], inputs, scorer)
        with session_scope(url) as s:
            if lease is not None:
                lease.hold(s)
            if not s.get(ModelVersion, version_id).is_current:
                continue  # a newer version took over: its model scores from the start
            s.add_all(
                Prediction(
                    document_id=doc_id, model_version_id=version_id, spans=p.spans, score=float(x)
                )
                for (doc_id, _, _), p, x in zip(docs, preds, scores, strict=True)
            )
            _replace_older(s, [d[0] for d in docs], version_id)
        after, total = max(d[0] for d in docs), total + len(docs)
        if progress:
            rate = total / max(time.perf_counter() - t0, 1e-6)
            progress(
                min(0.99, total / max(1, remaining)),
                f"scored {total} more texts with the current model ({rate:.0f}/s)",
            )
    if total:
        rerank(url, project_id, lease=lease)
    return total


def rerank(url: str, project_id: int, *, lease=None, batch: int = 20_000) -> int:
    """Put every open text the current version scored in its order (the head diverse), with
    ranks below the whole queue's, written a batch per transaction so annotators keep saving;
    a text claimed in between keeps its claim. Returns how many texts were ranked."""
    with session_scope(url) as s:
        project = s.get(Project, project_id)
        mv = current_version(s, project)
        if mv is None or not get_strategy(project.strategy or "random").needs_model:
            return 0
        rows = s.execute(
            select(Document.id, Prediction.score)
            .join(Prediction, Prediction.document_id == Document.id)
            .where(
                Document.project_id == project_id,
                Document.state == "open",
                Prediction.model_version_id == mv.id,
            )
            .order_by(Document.id)
        ).all()
        base = _lowest_rank(s, project_id)
        # the diverse head needs texts; only the most uncertain few are read
        top = np.argsort(-np.asarray([r[1] for r in rows], dtype=np.float64), kind="stable")
        head_ids = [rows[i][0] for i in top[: 4 * DIVERSE_HEAD]]
        texts = dict(
            s.execute(select(Document.id, Document.text).where(Document.id.in_(head_ids))).all()
        )
    ranked = queue_ranks(
        head_ids, [rows[i][1] for i in top[: 4 * DIVERSE_HEAD]], [texts[i] for i in head_ids]
    )
    order = [doc_id for doc_id, _ in ranked] + [rows[i][0] for i in top[4 * DIVERSE_HEAD :]]
    for start in range(0, len(order), batch):
        with session_scope(url) as s:
            if lease is not None:
                lease.hold(s, message="putting the queue in the current model's order")
            s.execute(
                update(Document),
                [
                    {"id": doc_id, "rank": base - len(order) + start + r}
                    for r, doc_id in enumerate(order[start : start + batch])
                ],
            )
    return len(order)


def run_score_job(url: str, job_id: int, params: dict, report) -> dict:
    """The `score` job: rescore the unlabeled pool with the current version (new strategy),
    or with `rest`, score what the current version's Retrain left after its candidates."""
    with session_scope(url) as s:
        project = s.get(Project, params["project_id"])
        mv = current_version(s, project) if project else None
        if mv is None:
            raise FewlabelError("there is no model version to score with: train one first")
        project_id, version_id = project.id, mv.id
    if params.get("rest"):
        return {"scored": score_rest(url, project_id, progress=report, lease=report.lease)}
    n = score_pool(url, project_id, version_id, progress=report, lease=report.lease)
    return {"scored": n}
