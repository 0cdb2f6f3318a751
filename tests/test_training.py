"""The model loop on a real SQLite file with a tiny random BERT: jobs, versions, queue order.
The job and queue tests run on PostgreSQL too (marked both_backends)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import POOL_SENTENCES, seed_labeled_project
from sqlalchemy import func, select

from core.errors import ConflictError
from core.jobs.queue import enqueue, get_job, reap, request_cancel
from core.jobs.worker import run_job
from core.labeling import annotations as svc
from core.labeling.projects import get_project
from core.store.db import session_scope
from core.store.schema import Annotation, Document, Job, Prediction
from core.store.versions import current_version, list_versions, queue_preview

pytestmark = pytest.mark.slow

POOL = POOL_SENTENCES


@pytest.fixture
def tiny(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture
def project(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    seed_labeled_project(db_url)
    return "p"


def _train(db_url, tiny, **extra):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        params = {"project_id": p.id, "base": tiny, "train_args": {"epochs": 3, **extra}}
        return enqueue(s, "train", p, params).id


@pytest.mark.both_backends
def test_a_worker_process_trains_registers_and_reorders_the_queue(db_url, tiny, project):
    with session_scope(db_url) as s:
        before = [r["id"] for r in queue_preview(s, get_project(s, "p"), 24)]
    job_id = _train(db_url, tiny)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    res = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--db", db_url, str(job_id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        job = get_job(s, job_id)
        assert (job.status, job.progress, job.result["version"]) == ("done", 1.0, 1)
        mv = current_version(s, p)
        assert mv.version == 1 and mv.n_labels == 6 and os.path.isdir(mv.path)
        preds = s.scalar(select(func.count(Prediction.id)))
        assert preds == len(POOL)
        rows = queue_preview(s, p, 24)
        scores = [r["score"] for r in rows]
        assert None not in scores
        # the queue now serves the most uncertain first (the head is diversity-filtered)
        assert scores[0] == max(scores)
        assert [r["id"] for r in rows] != before
        task = svc.next_document(s, p, "ann")
        assert task.score == scores[0] and isinstance(task.suggestions, list)


def _retrain_with_candidates(db_url, tiny, size: int) -> Job:
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        params = {"project_id": p.id, "base": tiny, "train_args": {"epochs": 1}, "cv": False}
        job_id = enqueue(s, "train", p, {**params, "candidates": size}).id
    job = run_job(db_url, job_id)
    assert job.status == "done", job.error
    return job


@pytest.mark.both_backends
def test_a_retrain_scores_its_candidates_first_and_texts_keep_their_newest_suggestions(
    db_url, tiny, project, monkeypatch
):
    """In a pool larger than the candidate set, a new version scores the old queue's head and
    a random sample, and those open the queue; the other texts keep the older version's
    suggestions (and say so) until the background job reaches them."""
    import core.jobs.training
    from core.labeling.annotations import stored_predictions

    _retrain_with_candidates(db_url, tiny, 3000)  # v1 scores the whole (small) pool
    with session_scope(db_url) as s:
        head = [r["id"] for r in queue_preview(s, get_project(s, "p"), 3)]
    started = []
    monkeypatch.setattr(core.jobs.training, "_score_the_rest", lambda url, pid: started.append(pid))
    job = _retrain_with_candidates(db_url, tiny, 6)
    assert job.result["scored"] == 6 and started  # the rest is left to a background job
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert current_version(s, p).version == 2
        queue = [r["id"] for r in queue_preview(s, p, len(POOL))]
        docs = list(s.scalars(select(Document).where(Document.id.in_(queue))))
        by = {d: v for d, (_, _, v) in stored_predictions(s, docs).items()}
        candidates = [d for d in queue if by[d] == 2]
        assert len(candidates) == 6 and set(head) <= set(candidates)  # the old head, rescored
        assert queue[:6] == candidates  # and they open the queue
        assert {by[d] for d in queue[6:]} == {1}  # the others keep v1's suggestions
        assert s.scalar(select(func.count(Prediction.id))) == len(POOL)  # one per text
        # and each text knows whose scores put it where it is ("why this text")
        ranked = {d.id: d.ranked_by for d in docs}
        assert {ranked[d] for d in candidates} == {2} and {ranked[d] for d in queue[6:]} == {1}
        assert svc.next_document(s, p, "ann").ranked_by == 2


@pytest.mark.both_backends
def test_the_rest_of_the_pool_is_scored_by_a_background_worker(db_url, tiny, project):
    """The Retrain's own worker starts a `score` worker for what its candidates left; when it
    is done every open text has the current version's suggestions and the queue follows them."""
    job = _retrain_with_candidates(db_url, tiny, 4)
    assert job.result["scored"] == 4 and job.result["rest_job"]
    deadline = time.monotonic() + 180
    while True:
        with session_scope(db_url) as s:
            rest = get_job(s, job.result["rest_job"])
            status, result, error = rest.status, rest.result, rest.error
        if status not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == "done", error
    assert result == {"scored": len(POOL) - 4}
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        rows = queue_preview(s, p, len(POOL))
        assert s.scalar(select(func.count(Prediction.id))) == len(POOL)
        scores = [r["score"] for r in rows]
        assert None not in scores and scores[0] == max(scores)  # reranked by the current model
        is_open = Document.state == "open"
        current = current_version(s, p).version
        assert set(s.scalars(select(Document.ranked_by).where(is_open))) == {current}


@pytest.mark.both_backends
def test_retrain_keeps_versions_and_one_job_at_a_time(db_url, tiny, project):
    first = _train(db_url, tiny)
    with pytest.raises(ConflictError, match="already queued"), session_scope(db_url) as s:
        enqueue(s, "train", get_project(s, "p"), {})
    assert run_job(db_url, first).status == "done"
    assert run_job(db_url, _train(db_url, tiny)).status == "done"
    with session_scope(db_url) as s:
        versions = list_versions(s, get_project(s, "p"))
        assert [v.version for v in versions] == [1, 2]
        assert [v.is_current for v in versions] == [False, True]


@pytest.mark.both_backends
def test_cancel_before_start_and_failure_is_recorded(db_url, tiny, project):
    job_id = _train(db_url, tiny)
    with session_scope(db_url) as s:
        assert request_cancel(s, job_id).status == "cancelled"
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        bad = enqueue(s, "train", p, {"project_id": p.id, "base": "/nonexistent/model"}).id
    job = run_job(db_url, bad)
    assert job.status == "failed" and "nonexistent" in job.error


@pytest.mark.both_backends
def test_a_killed_worker_leaves_annotations_intact_and_the_job_queued_again(
    db_url, tiny, project, monkeypatch
):
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")  # nothing starts the retry here
    with session_scope(db_url) as s:
        n_ann = s.scalar(select(func.count(Annotation.id)))
    job_id = _train(db_url, tiny, epochs=500)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.jobs.worker", "--db", db_url, str(job_id)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with session_scope(db_url) as s:
            job = get_job(s, job_id)
            if job.status == "running" and job.progress > 0:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the worker never reported progress")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with session_scope(db_url) as s:
        assert reap(s) == 1
    with session_scope(db_url) as s:
        job = get_job(s, job_id)
        assert job.status == "queued" and "died" in job.message and job.params["attempt"] == 2
        assert s.scalar(select(func.count(Annotation.id))) == n_ann
        assert current_version(s, get_project(s, "p")) is None


def test_cancelling_a_running_job_stops_it_and_registers_nothing(db_url, tiny, project):
    import threading

    job_id = _train(db_url, tiny, epochs=2000)
    result = {}
    worker = threading.Thread(target=lambda: result.update(job=run_job(db_url, job_id)))
    worker.start()
    deadline = time.time() + 120
    while time.time() < deadline:
        with session_scope(db_url) as s:
            job = get_job(s, job_id)
            if job.status == "running" and job.progress > 0:
                request_cancel(s, job_id)
                break
        time.sleep(0.2)
    worker.join(timeout=120)
    assert result["job"].status == "cancelled"
    with session_scope(db_url) as s:
        assert current_version(s, get_project(s, "p")) is None


def test_a_pretrain_job_builds_an_aligned_base_for_the_project(db_url, tiny, project):
    from core.model.backbone import Tagger

    with session_scope(db_url) as s:
        p = get_project(s, "p")
        p.base_model = tiny
        job_id = enqueue(s, "pretrain", p, {"project_id": p.id, "steps": 3}).id
    job = run_job(db_url, job_id)
    assert job.status == "done", job.error
    with session_scope(db_url) as s:
        base = get_project(s, "p").base_model
    assert base == job.result["checkpoint"] != tiny
    info = Tagger.load(base).info["pretraining"]
    assert info["objective"] == "aligned" and info["steps"] == 3
    assert info["corpus"][0].startswith("project p") and "wiki_sentences" in info["corpus"][1]
    # the next retrain starts from it, and says so
    assert run_job(db_url, _train(db_url, base)).status == "done"
    with session_scope(db_url) as s:
        assert current_version(s, get_project(s, "p")).aligned is True


def test_cli_train_gives_acronym_models_evidence_unless_told_not_to(db_url, tiny, project):
    from core.cli import main
    from core.model.backbone import Tagger

    evidence = []
    for extra in ([], ["--no-evidence"], ["--evidence"]):
        argv = ["train", "p", "--db", db_url, "--base", tiny, "--epochs", "1", *extra]
        assert main(argv) == 0
        with session_scope(db_url) as s:
            path = current_version(s, get_project(s, "p")).path
        evidence.append(Tagger.load(path).evidence)
    assert [e and e.name for e in evidence] == ["acronym", None, "acronym"]


def test_a_custom_project_labeled_short_long_is_no_acronym_project(
    db_url, tiny, tmp_path, monkeypatch
):
    """Evidence and decoding rules are the task's, never the label tuple's (issue 26): a
    custom project whose labels happen to be SHORT,LONG trains without the acronym rule's
    evidence and decodes without its rules."""
    from core.model.backbone import Tagger
    from core.model.predict import predict
    from core.text import tokenize

    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    seed_labeled_project(db_url, task="custom")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert (p.task, list(p.labels)) == ("custom", ["SHORT", "LONG"])
        params = {"project_id": p.id, "base": tiny, "train_args": {"epochs": 1}, "cv": False}
        job_id = enqueue(s, "train", p, params).id
    job = run_job(db_url, job_id)
    assert job.status == "done", job.error
    with session_scope(db_url) as s:
        model = Tagger.load(current_version(s, get_project(s, "p")).path)
    assert model.evidence is None and model.evidence_embedding is None
    assert model.info["decode_rules"] is None
    text = "We train a support vector machine ( SVM ) on GPU clusters ."
    [pred] = predict(model, [(text, tokenize(text))])
    assert all(sp.get("source") != "rule" for sp in pred.spans)


def test_concept_evidence_learns_from_every_project_text(db_url, tiny, project):
    from core.io.imports import import_bytes
    from core.jobs.training import project_texts
    from core.labeling.projects import create_project
    from core.model.backbone import Tagger
    from core.weak.evidence import Evidence

    labeled, pool = POOL[:6], POOL[6:]
    conll = "\n\n".join(
        "\n".join(f"{w}\t{'B-CONCEPT' if w == 'cats' else 'O'}" for w in s.split()) for s in labeled
    )
    with session_scope(db_url) as s:
        p = create_project(s, "c", "concept")
        import_bytes(s, p, "gold.conll", (conll + "\n").encode(), annotator="gold")
        import_bytes(s, p, "pool.txt", "\n".join(pool).encode())
        params = {"project_id": p.id, "base": tiny, "train_args": {"epochs": 1, "evidence": True}}
        job_id = enqueue(s, "train", p, params).id
    job = run_job(db_url, job_id)
    assert job.status == "done", job.error
    with session_scope(db_url) as s:
        p = get_project(s, "c")
        model, texts = Tagger.load(current_version(s, p).path), project_texts(s, p)
    assert len(texts) == len(POOL)  # the labeled and the unlabeled texts
    assert model.evidence == Evidence("concept").fit(texts)


def test_a_train_job_with_few_labels_stores_cross_validated_f1(db_url, tiny, project, capsys):
    """6 labeled texts: no dev slice, so the job adds 3-fold cross-validation to the version,
    its saved model, and the CLI's report; --no-cv leaves it out."""
    from core.cli import main
    from core.model.backbone import Tagger

    job = run_job(db_url, _train(db_url, tiny))
    assert job.status == "done", job.error
    with session_scope(db_url) as s:
        mv = current_version(s, get_project(s, "p"))
        metrics, path = mv.metrics, mv.path
    cv = metrics["cv"]
    assert metrics["dev"] is None
    assert (cv["folds"], cv["texts"]) == (3, 6) and cv["spans"] > 0
    assert set(cv["f1_micro"]) == {"mean", "sd"} and set(cv["per_label"]) == {"SHORT", "LONG"}
    assert cv["per_label"]["SHORT"]["support"] == cv["spans"]
    assert job.result["metrics"]["cv"] == cv
    assert Tagger.load(path).info["metrics"]["cv"] == cv

    assert main(["train", "p", "--db", db_url, "--base", tiny, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"3-fold cross-validation: 6 held-out texts, {cv['spans']} spans" in out
    assert " ± " in out and "None" not in out
    assert main(["train", "p", "--db", db_url, "--base", tiny, "--epochs", "1", "--no-cv"]) == 0
    out = capsys.readouterr().out
    assert "F1 not measured: fewer than 40 labels" in out and "cross-validation" not in out
    with session_scope(db_url) as s:
        assert "cv" not in current_version(s, get_project(s, "p")).metrics


def test_the_queue_follows_a_new_version_before_cross_validation_runs(
    db_url, tiny, project, monkeypatch
):
    """Cross-validation only measures: the new version is current, with the pool scored,
    when its folds start, so annotators do not wait for them (issue 14)."""
    import core.model.crossval as crossval

    seen = {}
    real = crossval.cross_validate

    def observed(*args, **kwargs):
        with session_scope(db_url) as s:
            mv = current_version(s, get_project(s, "p"))
            seen["version"] = mv.version if mv else None
            seen["scored"] = s.scalar(
                select(func.count())
                .select_from(Prediction)
                .where(Prediction.model_version_id == mv.id)
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(crossval, "cross_validate", observed)
    job = run_job(db_url, _train(db_url, tiny))
    assert job.status == "done", job.error
    assert seen == {"version": 1, "scored": job.result["scored"]} and seen["scored"] > 0
    with session_scope(db_url) as s:
        assert current_version(s, get_project(s, "p")).metrics["cv"]["folds"] == 3


def test_pretraining_resumes_with_weights_only_and_refuses_a_pickled_state(tmp_path, tiny):
    """The resume state holds tensors and plain values only (torch.load weights_only=True);
    a state that would need unpickling code is refused with one line saying what to do."""
    import torch

    from core.errors import FewlabelError
    from core.model.pretrain import STATE_FILE, PretrainArgs, pretrain
    from core.text import tokenize

    texts = [(s, tokenize(s)) for s in POOL]
    out = tmp_path / "aligned"

    def run(steps):
        args = PretrainArgs(base=tiny, steps=steps, batch_size=8)
        return pretrain(texts, task="acronym", out_dir=out, args=args)

    run(2)
    state = torch.load(out / STATE_FILE, weights_only=True)  # loads without unpickling code
    assert state["step"] == 2 and not list(out.glob("*.tmp"))
    run(4)
    assert torch.load(out / STATE_FILE, weights_only=True)["step"] == 4
    state["extra"] = Path("an object weights_only refuses")
    torch.save(state, out / STATE_FILE)
    with pytest.raises(FewlabelError, match="delete it to start pretraining over"):
        run(6)


@pytest.mark.both_backends
def test_the_queue_order_reads_only_the_head_texts_and_matches_the_whole_pool_order(db_url):
    """core.active.scoring.queue_order keeps 16 bytes a text (ids, scores) and reads the texts of
    the 4 x DIVERSE_HEAD most uncertain only; the order is the one queue_ranks gives over the
    whole pool with every text, near-duplicates kept out of the head in both."""
    import random

    from helpers import seed_project

    from core.active.scoring import DIVERSE_HEAD, queue_order, queue_ranks, write_ranks

    rng = random.Random(0)
    words = [f"w{i}" for i in range(60)]
    # many near-duplicates among the most uncertain, so the diverse head has work to do
    texts = [" ".join(rng.sample(words, 8)) + f" doc{i % 300}" for i in range(5 * DIVERSE_HEAD)]
    texts = list(dict.fromkeys(texts))
    ids = seed_project(db_url, "q", texts)
    scores = [rng.random() for _ in ids]
    with session_scope(db_url) as s:
        order = queue_order(s, ids, scores)
        whole = [doc_id for doc_id, _ in queue_ranks(ids, scores, texts)]
        assert order.tolist() == whole and len(set(whole)) == len(ids)
        assert write_ranks(s, order, first=-10.0, ranked_by=2, batch=333) == len(ids)
    with session_scope(db_url) as s:
        ranks = dict(s.execute(select(Document.id, Document.rank)).all())
        assert set(s.scalars(select(Document.ranked_by))) == {2}  # for "why this text"
    assert sorted(ids, key=ranks.get) == whole and ranks[whole[0]] == -10.0
