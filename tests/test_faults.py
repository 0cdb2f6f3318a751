"""Faults in jobs and model versions, on real SQLite files with a tiny random BERT: a worker
stalled past its heartbeat, scoring cut short, a reaped job that finishes anyway."""

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import POOL_SENTENCES, seed_labeled_project
from sqlalchemy import func, select, update

from core.errors import ConflictError, JobLost
from core.jobs import queue as jobs
from core.jobs import worker as workers
from core.jobs.queue import enqueue, get_job, spawn_worker
from core.jobs.training import project_models_dir
from core.jobs.worker import Lease, run_job
from core.labeling.projects import get_project
from core.store.db import session_scope
from core.store.schema import Document, Job, ModelVersion, Prediction, utcnow
from core.store.versions import (
    current_version,
    list_versions,
    register_version,
    reserve_version,
    sweep_model_files,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def project(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    seed_labeled_project(db_url)
    return "p"


def _enqueue_train(db_url, tiny, epochs=2):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        params = {"project_id": p.id, "base": tiny, "cv": False, "train_args": {"epochs": epochs}}
        return enqueue(s, "train", p, params).id


def _models_dir(db_url) -> Path:
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        return project_models_dir(p.id, p.name)


def _wait(predicate, timeout=120.0, what="a condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _job(db_url, job_id) -> Job:
    with session_scope(db_url) as s:
        return get_job(s, job_id)


def assert_versions_match_their_files(db_url):
    """Every registered version's folder holds the model its row describes; no temporary or
    unregistered version folder is left once the sweep ran."""
    with session_scope(db_url) as s:
        versions = list_versions(s, get_project(s, "p"))
        rows = [(v.version, v.path, v.metrics) for v in versions]
    for number, path, metrics in rows:
        meta = json.loads((Path(path) / "tagger.json").read_text())
        assert Path(path).name == f"v{number}"
        assert meta["info"]["version"] == number
        assert meta["info"]["metrics"] == json.loads(json.dumps(metrics))
    folders = sorted(p.name for p in _models_dir(db_url).iterdir())
    assert folders == sorted(f"v{n}" for n, _, _ in rows), folders


def test_a_stalled_worker_is_reaped_and_never_writes_again(
    db_url, tiny_model_dir, project, monkeypatch
):
    """SIGSTOP a real training worker past a (shortened) heartbeat timeout: the job is queued
    again (once) and another worker runs it; SIGCONT: the stalled worker registers nothing,
    overwrites nothing and does not touch the row."""
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")  # this test runs the retry itself
    stalled = _enqueue_train(db_url, tiny_model_dir, epochs=400)
    proc = spawn_worker(db_url, stalled)
    try:
        # the database URL reaches the worker through its environment, not `ps`
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert db_url not in cmdline and "fewlabel.db" not in cmdline
        _wait(
            lambda: _job(db_url, stalled).progress > 0.01,
            what="the worker to train",
        )
        proc.send_signal(signal.SIGSTOP)
        jobs.HEARTBEAT_TIMEOUT, saved = timedelta(seconds=1), jobs.HEARTBEAT_TIMEOUT
        try:
            time.sleep(1.5)
            with pytest.raises(ConflictError, match="already queued"):
                _enqueue_train(db_url, tiny_model_dir)  # reaps: the job is queued again
        finally:
            jobs.HEARTBEAT_TIMEOUT = saved
        job = _job(db_url, stalled)
        assert job.status == "queued" and job.params["attempt"] == 2
        assert "no heartbeat for 1 s" in job.message
        with session_scope(db_url) as s:  # a shorter run for the test, as the retry
            retry = get_job(s, stalled)
            retry.params = {**retry.params, "train_args": {"epochs": 1}}
        assert run_job(db_url, stalled).status == "done"
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(timeout=120) != 0  # its next report found the job gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job = _job(db_url, stalled)
    assert job.status == "done" and job.pid != proc.pid  # the retry's result, untouched
    with session_scope(db_url) as s:
        assert [v.version for v in list_versions(s, get_project(s, "p"))] == [1]
        assert current_version(s, get_project(s, "p")).version == 1
    assert_versions_match_their_files(db_url)


def _claim(db_url, job_id) -> Lease:
    """Mark a queued job running under this process, as run_job does: its lease."""
    lease = Lease(db_url, job_id, os.getpid(), "test-host")
    with session_scope(db_url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="running", pid=lease.pid, host=lease.host, heartbeat_at=utcnow())
        )
    return lease


def _stall(db_url, job_id):
    """Make a running job's heartbeat six minutes old, as a suspended worker's would be."""
    with session_scope(db_url) as s:
        old = utcnow() - timedelta(minutes=6)
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=old))


def test_a_reaped_job_cannot_register_the_number_it_reserved(
    db_url, tiny_model_dir, project, monkeypatch
):
    """A job reserves v1, writes its files, stalls and is reaped: it is queued again, the
    stalled run's registration is refused, and the retry removes its files and takes v2 (a
    number is never handed out twice)."""
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")  # this test runs the retry itself
    models = _models_dir(db_url)
    a = _enqueue_train(db_url, tiny_model_dir)
    lease_a = _claim(db_url, a)
    a_row, a_number, a_tmp = reserve_version(lease_a, project_id=1, models_dir=models)
    a_tmp.mkdir(parents=True)
    (a_tmp / "tagger.json").write_text("{}")
    _stall(db_url, a)
    with session_scope(db_url) as s:
        assert jobs.reap(s) == 1
    assert (_job(db_url, a).status, _job(db_url, a).params["attempt"]) == ("queued", 2)
    with pytest.raises(JobLost):
        register_version(lease_a, a_row, a_tmp, n_labels=6, metrics={})
    assert a_tmp.is_dir() and not (models / "v1").exists()
    assert run_job(db_url, a).status == "done"  # the retry: the lost run's files go first
    assert not a_tmp.exists() and not (models / "v1").exists()
    with session_scope(db_url) as s:
        versions = list_versions(s, get_project(s, "p"))
        assert (a_number, [v.version for v in versions]) == (1, [2])
        assert s.get(ModelVersion, a_row).n_labels == -1  # still only a reservation
    assert sweep_model_files(db_url, 1, models) == []
    assert_versions_match_their_files(db_url)


def test_a_reaped_job_that_finishes_anyway_does_not_record_its_result(
    db_url, tiny_model_dir, project, monkeypatch
):
    """The handler returns after its job was reaped: run_job must not flip the row to done.
    The job is queued again once; lost a second time, it fails."""
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")

    def handler(url, job_id, params, report):
        _stall(url, job_id)
        with session_scope(url) as s:
            assert jobs.reap(s) == 1
        return {"finished": True}

    monkeypatch.setattr(workers, "_handlers", lambda: {"train": handler})
    job_id = _enqueue_train(db_url, tiny_model_dir)
    job = run_job(db_url, job_id)
    assert job.status == "queued" and job.result is None and "heartbeat" in job.message
    job = run_job(db_url, job_id)
    assert job.status == "failed" and job.result is None and "heartbeat" in job.error


def test_scoring_cut_short_keeps_the_old_version_current_with_its_scores(
    db_url, tiny_model_dir, project, monkeypatch
):
    """A retrain whose pool scoring dies half-way: the new version is registered but not
    current; the old one stays current with every prediction and the queue order it had."""
    import core.active.scoring

    assert run_job(db_url, _enqueue_train(db_url, tiny_model_dir)).status == "done"

    def ranks():
        with session_scope(db_url) as s:
            return dict(s.execute(select(Document.id, Document.rank)).all())

    before = ranks()
    real = core.active.scoring.predict_and_score
    calls = []

    def dies_on_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("killed half-way through scoring")
        return real(*args, **kwargs)

    monkeypatch.setattr(core.active.scoring, "SCORE_CHUNK", 10)
    monkeypatch.setattr(core.active.scoring, "predict_and_score", dies_on_the_second_chunk)
    job = run_job(db_url, _enqueue_train(db_url, tiny_model_dir))
    assert job.status == "failed" and "killed half-way" in job.error
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert [(v.version, v.is_current) for v in list_versions(s, p)] == [(1, True), (2, False)]
        v1 = current_version(s, p)
        n_v1 = s.scalar(select(func.count()).where(Prediction.model_version_id == v1.id))
    assert n_v1 == len(POOL_SENTENCES)
    assert ranks() == before
    assert_versions_match_their_files(db_url)


def test_a_worker_that_dies_before_claiming_is_reaped_at_once(db_url, tiny_model_dir, project):
    import socket
    import subprocess

    job_id = _enqueue_train(db_url, tiny_model_dir)
    gone = subprocess.Popen(["true"])
    gone.wait()
    with session_scope(db_url) as s:
        job = get_job(s, job_id)
        job.params = {**job.params, "worker_pid": gone.pid, "worker_host": socket.gethostname()}
    with session_scope(db_url) as s:
        assert jobs.reap(s) == 1
    job = _job(db_url, job_id)
    assert job.status == "failed" and "died before it started" in job.error
    _enqueue_train(db_url, tiny_model_dir)  # the next job is not blocked for START_TIMEOUT


@pytest.mark.both_backends
def test_a_worker_silent_for_longer_than_a_short_lease_keeps_its_job(db_url, project, monkeypatch):
    """A lease shorter than the 30 s heartbeat (FEWLABEL_LEASE_SECONDS=10, say) once let a
    live worker that reported nothing for a while (importing torch, loading a model) be taken
    for dead: its job ran twice. The busy worker now beats at a quarter of the lease."""
    import threading

    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")  # a retry would wait for a worker
    monkeypatch.setattr(jobs, "HEARTBEAT_TIMEOUT", timedelta(seconds=1))

    def silent(url, job_id, params, reporter):  # three leases without a progress report
        time.sleep(3.0)
        return {"silent": True}

    monkeypatch.setattr(workers, "_handlers", lambda: {"train": silent})
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        job_id = enqueue(s, "train", p, {"project_id": p.id}).id
    stop = threading.Event()
    reaped: list[int] = []

    def reaper() -> None:  # the app and other workers reap whenever they enqueue or poll
        while not stop.is_set():
            with session_scope(db_url) as s:
                reaped.append(jobs.reap(s))
            time.sleep(0.1)

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        job = run_job(db_url, job_id)
    finally:
        stop.set()
        thread.join()
    assert not workers.lost_by_this_process(job)
    assert (job.status, job.result) == ("done", {"silent": True})
    assert job.params.get("attempt", 1) == 1 and sum(reaped) == 0


def test_a_job_whose_starter_was_killed_before_its_worker_runs_soon(
    db_url, project, tiny_model_dir, monkeypatch
):
    """The app killed between queueing a Retrain and starting its worker (the Train page
    marks the job `spawned` as it queues it): the next reap, after SPAWN_GRACE, starts a
    worker, with no attempt spent, instead of failing the job after START_TIMEOUT."""
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "1")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        params = {"project_id": p.id, "base": tiny_model_dir, "cv": False, "spawned": True}
        job_id = enqueue(s, "train", p, {**params, "train_args": {"epochs": 1}}).id
    with session_scope(db_url) as s:  # ... and nothing started it
        assert jobs.reap(s) == 0 and get_job(s, job_id).status == "queued"
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=utcnow() - jobs.SPAWN_GRACE - timedelta(seconds=1))
        )
    with session_scope(db_url) as s:
        jobs.reap(s)  # e.g. the Train page listing its jobs after the app came back
    _wait(lambda: _job(db_url, job_id).status != "queued", what="a worker to take the job")
    _wait(lambda: _job(db_url, job_id).status == "done", what="the job to finish")
    job = _job(db_url, job_id)
    assert job.params.get("attempt", 1) == 1 and job.params.get("worker_pid")
