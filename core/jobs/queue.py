"""The job queue: enqueue, list, cancel, start a worker for a job, reap the dead.

The Retrain button and `fewlabel train` enqueue a job row; a worker process (never the
Streamlit script thread; core.jobs.worker) claims it and runs its handler, writing progress to the
row in short transactions of its own. The database allows one queued-or-running job of a kind
per project (a partial unique index). A worker that dies is found by `reap`: its row is marked
failed with the reason, and annotations, which live in other tables, are untouched.

Workers run anywhere the database and the model store (core.config) are reached: the app
starts one on its own machine per job (`start`, unless FEWLABEL_LOCAL_WORKER=0), and
`fewlabel worker` runs queued jobs on any machine, e.g. a GPU box (core.jobs.worker.work).
Liveness is the lease's heartbeat (core.jobs.worker.Lease), read against the database's clock
(core.store.db.db_now), so machines with different clocks agree; a process id says more only on the
worker's own host. A job whose lease expires is run once more (its half-written files removed
first), then failed.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from core.store.db import db_now, session_scope
from core.store.schema import Job, Project, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
# A running job whose heartbeat is older than this is taken for dead, wherever it ran (read at
# each reap, so a test or the fault probe may shorten it; FEWLABEL_LEASE_SECONDS sets it for
# every process of a deployment).
HEARTBEAT_TIMEOUT = timedelta(seconds=float(os.environ.get("FEWLABEL_LEASE_SECONDS", 300)))
# A job whose worker was lost is queued again this many times in all, then failed.
MAX_ATTEMPTS = 2
# A queued job nobody started within this long (its worker failed to start) is failed.
START_TIMEOUT = timedelta(minutes=2)
# A job queued to be started here whose worker has no pid after this long: the process that
# was starting it died in between (an app killed right after Retrain); reap starts another.
SPAWN_GRACE = timedelta(seconds=10)


def enqueue(session: Session, kind: str, project: Project | None, params: dict) -> Job:
    """Add a queued job; ConflictError when the project already has one of this kind active."""
    # reaped in a transaction of its own: a job queued again must stay queued when this
    # enqueue is refused because of it (the caller's transaction then rolls back)
    with session_scope(session.get_bind().url.render_as_string(hide_password=False)) as own:
        reap(own)
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


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


def reap(session: Session) -> int:
    """Mark jobs whose worker is gone as failed, or queue them again once (MAX_ATTEMPTS);
    returns how many. A job queued again is started on this machine when local workers are
    on (core.config), after this transaction commits; else a `fewlabel worker` takes it.

    Each row is changed only if it is still as it was read (same status and heartbeat), so a
    worker that finished meanwhile keeps its result; a reaped worker's lease is gone for good.
    """
    now = db_now(session)
    host = socket.gethostname()
    n = 0
    retried: list[int] = []
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE))):
        reason = _why_dead(job, now, host)
        if reason is None and job.status != "running" and _never_spawned(job, now):
            # never ran, so no attempt is spent: the row loses its mark and a new worker is
            # started after this transaction commits (a second reaper's worker finds it taken)
            if _unmark_spawned(session, job):
                retried.append(job.id)
            session.expire(job)
            continue
        if reason:
            changed, queued = _reap_one(session, job, reason, now)
            n += changed
            if changed and queued:
                retried.append(job.id)
            session.expire(job)
    session.flush()
    if retried:
        _start_after_commit(session, retried)
    return n


def _why_dead(job: Job, now, host: str) -> str | None:
    """Why an active job's worker counts as gone, or None while it may still be alive."""
    if job.status == "running":
        if job.host == host and job.pid and not _pid_alive(job.pid):
            return f"the worker process (pid {job.pid}) died"
        if job.heartbeat_at and now - job.heartbeat_at > HEARTBEAT_TIMEOUT:
            return f"the worker stopped reporting (no heartbeat for {_span(HEARTBEAT_TIMEOUT)})"
        return None
    if (
        job.params.get("worker_host") == host
        and job.params.get("worker_pid")
        and not _pid_alive(job.params["worker_pid"])
    ):
        return f"the worker process (pid {job.params['worker_pid']}) died before it started"
    if now - job.created_at > START_TIMEOUT and job.params.get("spawned"):
        return "the worker process never started"
    return None


def _never_spawned(job: Job, now) -> bool:
    """A queued job marked spawned whose starter stopped before the worker did (no worker pid
    after SPAWN_GRACE), where this machine starts local workers."""
    from core.config import get_settings

    return bool(
        job.params.get("spawned")
        and not job.params.get("worker_pid")
        and now - job.created_at > SPAWN_GRACE
        and get_settings().local_worker
    )


def _unmark_spawned(session: Session, job: Job) -> bool:
    """Drop a never-started job's spawned mark, if it is still queued and unstarted."""
    params = {k: v for k, v in job.params.items() if k != "spawned"}
    return bool(
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "queued", Job.started_at.is_(None))
            .values(params=params, message="starting a worker (its starter was stopped)")
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def _reap_one(session: Session, job: Job, reason: str, now) -> tuple[int, bool]:
    """Queue a dead worker's running job again (attempts left) or fail it, only if the row is
    still as read; returns (rows changed, whether it was queued again)."""
    same = [Job.id == job.id, Job.status == job.status]
    same.append(
        Job.heartbeat_at.is_(None)
        if job.heartbeat_at is None
        else Job.heartbeat_at == job.heartbeat_at
    )
    attempt = int(job.params.get("attempt", 1))
    if job.status == "running" and attempt < MAX_ATTEMPTS:
        params = {
            k: v for k, v in job.params.items() if k not in ("spawned", "worker_pid", "worker_host")
        }
        values = dict(
            status="queued",
            pid=None,
            host=None,
            started_at=None,
            heartbeat_at=None,
            progress=0.0,
            params={**params, "attempt": attempt + 1},
            message=f"queued again ({reason})"[:500],
        )
    else:
        values = dict(status="failed", error=reason, finished_at=now, message=f"failed: {reason}")
    changed = session.execute(
        update(Job).where(*same).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    return changed, values["status"] == "queued"


def _start_after_commit(session: Session, job_ids: list[int]) -> None:
    """Start a worker for each job once the session's transaction commits."""
    url = session.get_bind().url.render_as_string(hide_password=False)

    def start_retried(_session) -> None:
        for job_id in job_ids:
            start(url, job_id)

    event.listen(session, "after_commit", start_retried, once=True)


def start(url: str, job_id: int) -> subprocess.Popen | None:
    """Run a queued job: in a worker process on this machine, unless local workers are off
    (FEWLABEL_LOCAL_WORKER=0), when a `fewlabel worker` elsewhere takes it from the queue."""
    from core.config import get_settings

    if not get_settings().local_worker:
        return None
    return spawn_worker(url, job_id)


def spawn_worker(url: str, job_id: int, log_dir: Path | None = None) -> subprocess.Popen:
    """Start a detached worker process for a job (it outlives a Streamlit rerun). The
    database URL goes through the environment, never the command line, which `ps` shows
    to every user of the machine."""
    from core.config import get_settings

    log_dir = log_dir or get_settings().home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = (log_dir / f"job-{job_id}.log").open("ab")
    with session_scope(url) as s:
        job = get_job(s, job_id)
        job.params = {**job.params, "spawned": True}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.jobs.worker", str(job_id)],
        env={**os.environ, "FEWLABEL_DB": url},
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=os.getcwd(),
    )
    # a worker that dies before it claims its job is reaped at once, not after START_TIMEOUT
    with session_scope(url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                params={**job.params, "worker_pid": proc.pid, "worker_host": socket.gethostname()}
            )
        )
    return proc
