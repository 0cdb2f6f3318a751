"""Workers anywhere (issue 13): `fewlabel worker` processes take queued jobs from the shared
database, each job runs exactly once, and a worker killed mid-job is replaced by another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import seed_labeled_project
from sqlalchemy import select

from core.jobs.queue import ACTIVE, enqueue, get_job
from core.labeling.projects import get_project
from core.store.db import session_scope
from core.store.schema import Job
from core.store.versions import list_versions

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """What a worker on another machine is given: the database, the shared model store, and
    no local workers of its own (the app's machine would set the same)."""
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FEWLABEL_MODELS", str(tmp_path / "store"))
    monkeypatch.setenv("FEWLABEL_LOCAL_WORKER", "0")
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _worker(db_url, env, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core.cli", "worker", "--poll", "0.2", *args]
    return subprocess.Popen(
        cmd,
        env={**env, "FEWLABEL_DB": db_url},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _enqueue(db_url, project, kind, tiny, **params) -> int:
    with session_scope(db_url) as s:
        p = get_project(s, project)
        return enqueue(s, kind, p, {"project_id": p.id, "base": tiny, **params}).id


def _jobs(db_url) -> list[Job]:
    with session_scope(db_url) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


@pytest.mark.both_backends
def test_two_workers_run_every_queued_job_exactly_once(db_url, env, tiny_model_dir, tmp_path):
    for name in ("p", "q"):
        seed_labeled_project(db_url, name)
    queued = [
        _enqueue(db_url, name, "train", tiny_model_dir, cv=False, train_args={"epochs": 1})
        for name in ("p", "q")
    ]
    workers = [_worker(db_url, env, "--once", "--kinds", "train,score") for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    lines = [ln for out, _ in outputs for ln in out.splitlines() if ln.startswith("job ")]
    assert sorted(lines) == sorted(f"job {j} (train): done" for j in queued)  # once each
    # the models went to the shared store, and a score job queued now is taken the same way
    assert all(v.path.startswith(str(tmp_path / "store")) for v in _versions(db_url, "p"))
    rescore = _enqueue(db_url, "p", "score", tiny_model_dir)
    out, err = _worker(db_url, env, "--once").communicate(timeout=300)
    assert f"job {rescore} (score): done" in out, err
    assert {j.status for j in _jobs(db_url)} == {"done"}


def _versions(db_url, project):
    with session_scope(db_url) as s:
        return list_versions(s, get_project(s, project))


@pytest.mark.both_backends
def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_on_the_other(
    db_url, env, tiny_model_dir
):
    seed_labeled_project(db_url, "p")
    job_id = _enqueue(db_url, "p", "train", tiny_model_dir, cv=False, train_args={"epochs": 400})
    first = _worker(db_url, env, "--once")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = _jobs(db_url)[0]
            if job.status == "running" and job.pid == first.pid and job.progress > 0.01:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the first worker never got going: {job.status} {job.error}")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    second = _worker(db_url, env, "--once")  # reaps the dead worker's job: queued again
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"job {job_id} (train): done" in out
    with session_scope(db_url) as s:
        job = get_job(s, job_id)
        assert (job.status, job.params["attempt"], job.pid) == ("done", 2, second.pid)
        assert job.status not in ACTIVE
    # the killed run may have registered its version before it died (not made current
    # without its scores); the retry's is the current one; every version has its files
    versions = _versions(db_url, "p")
    assert versions[-1].is_current and all(Path(v.path).is_dir() for v in versions)
    assert sum(v.is_current for v in versions) == 1


def test_worker_refuses_an_unknown_kind_in_one_line(db_url, capsys):
    from core.cli import main

    assert main(["worker", "--db", db_url, "--kinds", "train,bake", "--once"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bake" in err
