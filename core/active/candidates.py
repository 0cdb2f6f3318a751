"""A Retrain's candidates and the rest of the pool (issue 14: the wait after a Retrain must
not grow with the pool).

A new version first scores its candidates (`candidate_ids`: the old queue's head and a fresh
random sample) through core.active.scoring.score_pool, and the queue starts with them; the `score`
job then scores what they left (`score_rest`), a chunk at a time with the newest current
version, and puts the whole queue in that model's order (`rerank`). The `score` job also
rescores the whole pool when the project's strategy changes.
"""

from __future__ import annotations

import time
from array import array

from sqlalchemy import func, select

from core import defaults
from core.active.scoring import (
    SCORE_CHUNK,
    Progress,
    lowest_rank,
    queue_order,
    score_chunk,
    score_pool,
    write_ranks,
)
from core.active.strategies import project_strategy, scorer_of
from core.errors import FewlabelError
from core.store.db import session_scope
from core.store.schema import Document, Prediction, Project
from core.store.versions import current_version


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
            scorer = scorer_of(project_strategy(project))
            if loaded is None or loaded[0] != version_id:
                after = 0  # a newer version: start over from the first unscored text
            chunk = unscored_ids(s, project_id, version_id, after=after, limit=SCORE_CHUNK)
            remaining = s.scalar(
                select(func.count())
                .select_from(Document)
                .where(Document.project_id == project_id, Document.state == "open")
            )
        if not chunk:
            break
        if loaded is None or loaded[0] != version_id:
            loaded = (version_id, load_tagger(path))
        scored, _ = score_chunk(
            url, version_id, chunk, loaded[1], scorer, lease=lease, only_current=True, replace=True
        )
        if not scored:
            continue  # a newer version took over: its model scores from the start
        after, total = max(scored), total + len(scored)
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
        if mv is None or not project_strategy(project).needs_model:
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
            .execution_options(yield_per=50_000)
        )
        ids, scores = array("q"), array("d")  # 16 bytes a text, streamed from the database
        for doc_id, score in rows:
            ids.append(doc_id)
            scores.append(score)
        base = lowest_rank(s, project_id)
        order = queue_order(s, ids, scores)
        version = mv.version
    del ids, scores
    for start in range(0, len(order), batch):
        with session_scope(url) as s:
            if lease is not None:
                lease.hold(s, message="putting the queue in the current model's order")
            first = base - len(order) + start
            write_ranks(s, order[start : start + batch], first=first, ranked_by=version)
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
