"""Background jobs: enqueue, run in a worker process, report progress, cancel, reap the dead.

The Retrain button and `fewlabel train` enqueue a job row; a worker process (never the
Streamlit script thread) claims it and runs its handler, writing progress to the row in short
transactions of its own. The database allows one queued-or-running job of a kind per project
(a partial unique index). A worker that dies is found by `reap`: its row is marked failed with
the reason, and annotations, which live in other tables, are untouched.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import Cancelled, ConflictError, FewlabelError, NotFoundError
from core.schema import Job, Project, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
# A running job whose heartbeat is older than this is taken for dead, wherever it ran.
HEARTBEAT_TIMEOUT = timedelta(minutes=5)
# A queued job nobody started within this long (its worker failed to start) is failed.
START_TIMEOUT = timedelta(minutes=2)


# kind -> handler(url, job_id, params, reporter) -> result dict. Handlers register themselves
# lazily (see _handlers) so importing this module stays cheap for the UI.
Handler = Callable[[str, int, dict, "Reporter"], dict]


def _handlers() -> dict[str, Handler]:
    from core.scoring import run_score_job
    from core.training import run_pretrain_job, run_train_job

    return {"train": run_train_job, "score": run_score_job, "pretrain": run_pretrain_job}


def enqueue(session: Session, kind: str, project: Project | None, params: dict) -> Job:
    """Add a queued job; ConflictError when the project already has one of this kind active."""
    reap(session)
    active = _active(session, kind, project)
    if active is not None:
        raise ConflictError(
            f"a {kind} job for {project.name if project else 'this'} is already {active.status} "
            f"(job {active.id}); wait for it or cancel it"
        )
    job = Job(
        kind=kind,
        project_id=project.id if project else None,
        params=params,
        status="queued",
        message="queued",
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:  # lost a race with another enqueue
        raise ConflictError(f"a {kind} job for this project is already active") from exc
    return job


def _active(session: Session, kind: str, project: Project | None) -> Job | None:
    return session.scalar(
        select(Job).where(
            Job.kind == kind,
            Job.project_id == (project.id if project else None),
            Job.status.in_(ACTIVE),
        )
    )


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return job


def recent_jobs(session: Session, project: Project, kind: str | None = None, limit: int = 10):
    reap(session)
    stmt = select(Job).where(Job.project_id == project.id)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt.order_by(Job.id.desc()).limit(limit)))


def request_cancel(session: Session, job_id: int) -> Job:
    """Ask a job to stop; a queued job is cancelled at once, a running one at its next step."""
    job = get_job(session, job_id)
    if job.status == "queued":
        job.status, job.finished_at, job.message = "cancelled", utcnow(), "cancelled"
    elif job.status == "running":
        job.cancel_requested = True
        job.message = "cancelling..."
    return job


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (killed, not yet waited for) still answers kill(0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def reap(session: Session) -> int:
    """Mark jobs whose worker is gone as failed; returns how many."""
    now = utcnow()
    host = socket.gethostname()
    n = 0
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE))):
        reason = None
        if job.status == "running":
            if job.host == host and job.pid and not _pid_alive(job.pid):
                reason = f"the worker process (pid {job.pid}) died"
            elif job.heartbeat_at and now - job.heartbeat_at > HEARTBEAT_TIMEOUT:
                reason = "the worker stopped reporting (no heartbeat for 5 minutes)"
        elif now - job.created_at > START_TIMEOUT and job.params.get("spawned"):
            reason = "the worker process never started"
        if reason:
            job.status, job.error, job.finished_at = "failed", reason, now
            job.message = f"failed: {reason}"
            n += 1
    session.flush()
    return n


class Reporter:
    """Progress and cancellation for a running job, each write in a transaction of its own."""

    def __init__(self, url: str, job_id: int, min_interval: float = 1.0):
        self.url, self.job_id, self.min_interval = url, job_id, min_interval
        self._last = 0.0
        self._cancel = False

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        with session_scope(self.url) as s:
            s.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(
                    progress=max(0.0, min(1.0, fraction)),
                    message=message[:500],
                    heartbeat_at=utcnow(),
                )
            )
            self._cancel = bool(s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))

    def should_stop(self) -> bool:
        return self._cancel


def run_job(url: str, job_id: int) -> Job:
    """Claim a queued job and run it in this process; the row ends done, failed or cancelled."""
    with session_scope(url) as s:
        claimed = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                pid=os.getpid(),
                host=socket.gethostname(),
                started_at=utcnow(),
                heartbeat_at=utcnow(),
                message="starting",
            )
        ).rowcount
        job = get_job(s, job_id)
        kind, params = job.kind, dict(job.params)
    if not claimed:
        raise ConflictError(f"job {job_id} is {job.status}, not queued")
    reporter = Reporter(url, job_id)
    status, result, error = "done", None, None
    try:
        handler = _handlers().get(kind)
        if handler is None:
            raise FewlabelError(f"no handler for job kind {kind!r}")
        result = handler(url, job_id, params, reporter)
    except Cancelled as exc:
        status, error = "cancelled", str(exc) or "cancelled"
    except FewlabelError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a job records any failure instead of vanishing
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
    with session_scope(url) as s:
        job = get_job(s, job_id)
        job.status, job.result, job.error = status, result, error
        job.finished_at = utcnow()
        job.progress = 1.0 if status == "done" else job.progress
        job.message = {"done": "done", "cancelled": "cancelled"}.get(status, f"failed: {error}")[
            :500
        ]
    with session_scope(url) as s:
        return get_job(s, job_id)


def spawn_worker(url: str, job_id: int, log_dir: Path | None = None) -> subprocess.Popen:
    """Start a detached worker process for a job (it outlives a Streamlit rerun)."""
    from core.config import get_settings

    log_dir = log_dir or get_settings().home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = (log_dir / f"job-{job_id}.log").open("ab")
    with session_scope(url) as s:
        job = get_job(s, job_id)
        job.params = {**job.params, "spawned": True}
    return subprocess.Popen(
        [sys.executable, "-m", "core.jobs", "--db", url, str(job_id)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=os.getcwd(),
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run one fewlabel job (the worker process).")
    parser.add_argument("--db", required=True)
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    job = run_job(args.db, args.job_id)
    print(f"job {job.id}: {job.status} {job.error or ''}".rstrip(), flush=True)
    return 0 if job.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
