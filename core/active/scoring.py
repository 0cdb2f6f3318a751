"""Scoring the unlabeled pool with a model version: predicted spans, uncertainty, queue order.

Runs inside a job (core.jobs.worker) or the CLI; torch is imported only when a model is loaded.
What a Retrain scores first, and the rest of the pool after it: core.active.candidates.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core import defaults
from core.active.strategies import (
    Strategy,
    get_strategy,
    project_strategy,
    score_documents,
    scorer_of,
)
from core.active.strategies import select as select_batch
from core.errors import FewlabelError
from core.store.db import session_scope
from core.store.schema import Document, ModelVersion, Prediction, Project
from core.store.versions import set_current
from core.text import words_of

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
    predictions and queue. `lease` (core.jobs.worker.Lease): a job's writes, checked to be its own.

    With `ids`, only those texts' older predictions are replaced, and they take ranks below
    every other open text's: the queue starts with them, in the new model's order, and the
    rest keeps its order until `core.active.candidates.score_rest` reaches it.
    """
    from core.model.predict import load_tagger

    chosen, path, todo = _pool(url, project_id, version_id, strategy, ids)
    if model is None:
        model = load_tagger(path)
    scorer = scorer_of(chosen)
    # what the switch needs of every scored text: its id and score, 16 bytes (its text is read
    # again for the few at the head only), so memory barely grows with the pool
    all_ids, all_scores = array("q"), array("d")
    t0 = time.perf_counter()
    for start in range(0, len(todo), SCORE_CHUNK):
        chunk_ids, scores = score_chunk(
            url,
            version_id,
            todo[start : start + SCORE_CHUNK],
            model,
            scorer,
            lease=lease,
            progress=progress,
            done=(start, len(todo)),
        )
        all_ids.extend(chunk_ids)
        all_scores.extend(float(x) for x in scores)
    with session_scope(url) as s:
        if lease is not None:
            lease.hold(s, message="switching to the new scores")
        superseded = _switch(
            s, project_id, version_id, chosen, all_ids, all_scores, make_current, whole=ids is None
        )
    if superseded is not None:
        raise ScoringSuperseded(
            f"version {superseded} is no longer current; its scores were not applied"
        )
    if progress:
        progress(1.0, f"scored {len(all_ids)} documents in {time.perf_counter() - t0:.1f} s")
    return len(all_ids)


def _pool(
    url: str, project_id: int, version_id: int, strategy: str | None, ids: Sequence[int] | None
) -> tuple[Strategy, str, array]:
    """The strategy that orders the queue, the version's model path and the ids to score: every
    open text, or those of `ids` still open."""
    with session_scope(url) as s:
        project = s.get(Project, project_id)
        chosen = get_strategy(strategy) if strategy else project_strategy(project)
        path = s.get(ModelVersion, version_id).path
        # streamed: the ORM otherwise buffers every row first (+148 MB at a million texts,
        # +28 MB streamed)
        open_ids = s.scalars(
            select(Document.id)
            .where(Document.project_id == project_id, Document.state == "open")
            .execution_options(yield_per=50_000)
        )
        if ids is None:
            return chosen, path, array("q", open_ids)  # 8 bytes a text: a million is 8 MB
        still_open = set(open_ids)
        return chosen, path, array("q", (i for i in ids if i in still_open))


def score_chunk(
    url: str,
    version_id: int,
    ids: Sequence[int],
    model,
    scorer: Strategy,
    *,
    lease=None,
    progress: Progress | None = None,
    done: tuple[int, int] = (0, 0),
    only_current: bool = False,
    replace: bool = False,
) -> tuple[list[int], Sequence[float]]:
    """Predict and score the texts `ids` with a version's `model` under `scorer` (a strategy
    that needs a model), and store the predictions under the version, in one transaction
    (under `lease`, a job's). The one chunk step of scoring the pool (score_pool) and of
    scoring what a Retrain's candidates left (core.active.candidates.score_rest).

    `done`: (texts before this chunk, texts in all) for `progress` over the whole pool. With
    `only_current`, nothing is stored when the version is no longer current: ([], []). With
    `replace`, the texts' predictions by other versions go in the same transaction.
    Returns the ids scored (those of `ids` that still exist) and their scores."""
    with session_scope(url) as s:
        docs = s.execute(
            select(Document.id, Document.text, Document.tokens).where(Document.id.in_(ids))
        ).all()
    inputs = [(text, words_of(text, tokens)) for _, text, tokens in docs]
    offset, total = done
    preds, scores = predict_and_score(
        model,
        inputs,
        scorer,
        progress=_chunk_progress(progress, offset, len(docs), total) if progress else None,
    )
    doc_ids = [d[0] for d in docs]
    with session_scope(url) as s:
        if lease is not None:
            lease.hold(s)
        if only_current and not s.get(ModelVersion, version_id).is_current:
            return [], []
        s.execute(
            delete(Prediction).where(
                Prediction.document_id.in_(doc_ids),
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
            for doc_id, pred, score in zip(doc_ids, preds, scores, strict=True)
        )
        if replace:
            replace_older(s, doc_ids, version_id)
    return doc_ids, scores


def _switch(
    s, project_id, version_id, chosen, all_ids, all_scores, make_current, *, whole: bool
) -> int | None:
    """The last transaction of score_pool: the version becomes current (`make_current`) or is
    checked to still be; its scores order the queue. Returns the version's number when another
    version became current meanwhile (its scores win; these are dropped), else None."""
    project = s.get(Project, project_id)
    mv = s.get(ModelVersion, version_id)
    if make_current:
        set_current(s, project, mv.version)
    if not mv.is_current:
        # another version became current while this one scored (a retrain finished)
        s.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
        return mv.version
    if whole:
        # Predictions of older versions are superseded; keep the table the pool's size.
        old = select(ModelVersion.id).where(
            ModelVersion.project_id == project_id, ModelVersion.id != version_id
        )
        s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
        if chosen.needs_model and all_ids:
            order = queue_order(s, all_ids, all_scores)
            write_ranks(s, order, first=0.0, ranked_by=mv.version)
    else:
        replace_older(s, all_ids, version_id)
        if chosen.needs_model and all_ids:
            first = lowest_rank(s, project_id) - len(all_ids)
            order = queue_order(s, all_ids, all_scores)
            write_ranks(s, order, first=first, ranked_by=mv.version)
    return None


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


def queue_order(session, ids: Sequence[int], scores: Sequence[float]) -> np.ndarray:
    """The ids in queue order: the most uncertain first, the head free of near-duplicates.

    Only the 4 x DIVERSE_HEAD most uncertain texts are read (for the diverse head), never the
    pool's: the rest follows by score, as it would after a head chosen over the whole pool."""
    ids_arr = np.asarray(ids, dtype=np.int64)
    arr = np.asarray(scores, dtype=np.float64)
    top = np.argsort(-arr, kind="stable")
    head = top[: 4 * DIVERSE_HEAD]
    head_ids = [int(i) for i in ids_arr[head]]
    texts = dict(
        session.execute(select(Document.id, Document.text).where(Document.id.in_(head_ids))).all()
    )
    ranked = queue_ranks(head_ids, arr[head].tolist(), [texts[i] for i in head_ids])
    first = np.fromiter((doc_id for doc_id, _ in ranked), dtype=np.int64, count=len(ranked))
    return np.concatenate([first, ids_arr[top[4 * DIVERSE_HEAD :]]])


def write_ranks(
    session, order: Iterable[int], *, first: float, ranked_by: int, batch: int = 20_000
) -> int:
    """Give the texts of `order` the ranks first, first + 1, ..., from the scores of model
    version `ranked_by` (its number, kept with each text for "why this text"); written
    `batch` rows a statement, so no list of the whole pool is built. Returns how many."""
    n, rows = 0, []
    for doc_id in order:
        rows.append({"id": int(doc_id), "rank": first + n, "ranked_by": ranked_by})
        n += 1
        if len(rows) == batch:
            session.execute(update(Document), rows)
            rows = []
    if rows:
        session.execute(update(Document), rows)
    return n


def replace_older(session, doc_ids: Sequence[int], version_id: int) -> None:
    """Drop the texts' predictions by other versions: each text keeps its newest."""
    for start in range(0, len(doc_ids), SCORE_CHUNK):
        session.execute(
            delete(Prediction).where(
                Prediction.document_id.in_(doc_ids[start : start + SCORE_CHUNK]),
                Prediction.model_version_id != version_id,
            )
        )


def lowest_rank(session, project_id: int) -> float:
    """The queue head's rank (the queue index makes it one lookup), 0 for an empty queue."""
    lowest = session.scalar(
        select(func.min(Document.rank)).where(
            Document.project_id == project_id, Document.state == "open"
        )
    )
    return float(lowest) if lowest is not None else 0.0


def set_strategy(session: Session, project: Project, strategy: str) -> None:
    """Choose how the queue is ordered after the next scoring (random keeps import order)."""
    project.strategy = get_strategy(strategy).name
    session.flush()
