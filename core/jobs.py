"""Background jobs: enqueue, run in a worker process, report progress, cancel, reap the dead.

The Retrain button and `fewlabel train` enqueue a job row; a worker process (never the
Streamlit script thread) claims it and runs its handler, writing progress to the row in short
transactions of its own. The database allows one queued-or-running job of a kind per project
(a partial unique index). A worker that dies is found by `reap`: its row is marked failed with
the reason, and annotations, which live in other tables, are untouched.

A worker holds its job under a lease (`Lease`): every write it makes (progress, a model
version, scores, the final status) goes through `Lease.hold`, which checks in the same
transaction that the row is still running under this worker's claim. A worker that was
stalled past its heartbeat and reaped therefore writes nothing more: not its status, not a
version.

Workers run anywhere the database and the model store (core.config) are reached: the app
starts one on its own machine per job (`start`, unless FEWLABEL_LOCAL_WORKER=0), and
`fewlabel worker` runs queued jobs on any machine, e.g. a GPU box (`work`). Liveness is the
lease's heartbeat, read against the database's clock (core.db.db_now), so machines with
different clocks agree; a process id says more only on the worker's own host. A job whose
lease expires is run once more (its half-written files removed first), then failed.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import db_now, db_now_sql, session_scope
from core.errors import Cancelled, ConflictError, FewlabelError, JobLost, NotFoundError
from core.schema import Job, Project, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
# A running job whose heartbeat is older than this is taken for dead, wherever it ran (read at
# each reap, so a test or the fault probe may shorten it; FEWLABEL_LEASE_SECONDS sets it for
# every process of a deployment).
HEARTBEAT_TIMEOUT = timedelta(seconds=float(os.environ.get("FEWLABEL_LEASE_SECONDS", 300)))
# A job whose worker was lost is queued again this many times in all, then failed.
MAX_ATTEMPTS = 2
# How often a worker beats while its handler is busy between progress reports.
HEARTBEAT_INTERVAL = timedelta(seconds=30)
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
        reason = None
        if job.status == "running":
            if job.host == host and job.pid and not _pid_alive(job.pid):
                reason = f"the worker process (pid {job.pid}) died"
            elif job.heartbeat_at and now - job.heartbeat_at > HEARTBEAT_TIMEOUT:
                reason = (
                    f"the worker stopped reporting (no heartbeat for {_span(HEARTBEAT_TIMEOUT)})"
                )
        elif (
            job.params.get("worker_host") == host
            and job.params.get("worker_pid")
            and not _pid_alive(job.params["worker_pid"])
        ):
            reason = f"the worker process (pid {job.params['worker_pid']}) died before it started"
        elif now - job.created_at > START_TIMEOUT and job.params.get("spawned"):
            reason = "the worker process never started"
        if reason:
            same = [Job.id == job.id, Job.status == job.status]
            same.append(
                Job.heartbeat_at.is_(None)
                if job.heartbeat_at is None
                else Job.heartbeat_at == job.heartbeat_at
            )
            attempt = int(job.params.get("attempt", 1))
            if job.status == "running" and attempt < MAX_ATTEMPTS:
                params = {
                    k: v
                    for k, v in job.params.items()
                    if k not in ("spawned", "worker_pid", "worker_host")
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
                values = dict(
                    status="failed", error=reason, finished_at=now, message=f"failed: {reason}"
                )
            changed = session.execute(
                update(Job)
                .where(*same)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            n += changed
            if changed and values["status"] == "queued":
                retried.append(job.id)
            session.expire(job)
    session.flush()
    if retried:
        url = session.get_bind().url.render_as_string(hide_password=False)
        def start_retried(_session) -> None:
            for job_id in retried:
                start(url, job_id)

        event.listen(session, "after_commit", start_retried, once=True)
    return n


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a running job: the row, and the process that claimed it."""

    url: str
    job_id: int
    pid: int
    host: str

    def _owned(self):
        # a job queued again after its worker was lost is claimed by another process (the
        # lost one is stalled, or busy with the run it lost): pid and host tell them apart
        return (
            Job.id == self.job_id,
            Job.status == "running",
            Job.pid == self.pid,
            Job.host == self.host,
        )

    def hold(self, session: Session, **values) -> None:
        """In the caller's transaction: check the job is still this worker's, beat its
        heartbeat and set `values`; JobLost when it was reaped (or never ours). The UPDATE
        also takes the row (PostgreSQL) or the database (SQLite) for the rest of the
        transaction, so no reap slips between this check and the caller's writes."""
        done = session.execute(
            update(Job)
            .where(*self._owned())
            .values(heartbeat_at=db_now_sql(session), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            raise JobLost(
                f"job {self.job_id} is no longer this worker's (reaped after a stall, or "
                "finished elsewhere); its work is discarded"
            )

    def beat(self) -> bool:
        """A heartbeat in a transaction of its own; False once the job is lost."""
        try:
            with session_scope(self.url) as s:
                self.hold(s)
            return True
        except JobLost:
            return False


class Reporter:
    """Progress and cancellation for a running job, each write in a transaction of its own
    and under the job's lease: a reaped worker's next report raises JobLost, which stops it."""

    def __init__(self, lease: Lease, min_interval: float = 1.0):
        self.lease, self.min_interval = lease, min_interval
        self.url, self.job_id = lease.url, lease.job_id
        self._last = 0.0
        self._cancel = False
        self.lost = False

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        if self.lost:
            raise JobLost(f"job {self.job_id} is no longer this worker's")
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        with session_scope(self.url) as s:
            self.lease.hold(s, progress=max(0.0, min(1.0, fraction)), message=message[:500])
            self._cancel = bool(s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))

    def should_stop(self) -> bool:
        if self.lost:
            raise JobLost(f"job {self.job_id} is no longer this worker's")
        return self._cancel


class _Heartbeat(threading.Thread):
    """Beats the lease every HEARTBEAT_INTERVAL while a handler works without reporting
    (loading a model, saving it); a stopped process (SIGSTOP) stops beating with it."""

    def __init__(self, reporter: Reporter):
        super().__init__(name=f"heartbeat-{reporter.job_id}", daemon=True)
        self.reporter, self.done = reporter, threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_INTERVAL.total_seconds()):
            try:
                if not self.reporter.lease.beat():
                    self.reporter.lost = True
                    return
            except Exception:  # noqa: BLE001 - a busy database: the next beat tries again
                log.warning("heartbeat of job %s failed", self.reporter.job_id, exc_info=True)


def run_job(url: str, job_id: int) -> Job:
    """Claim a queued job and run it in this process; the row ends done, failed or cancelled,
    unless the job was reaped meanwhile (a stall past its heartbeat): then this worker's
    result is discarded and the row keeps what the reaper wrote."""
    lease = Lease(url, job_id, os.getpid(), socket.gethostname())
    with session_scope(url) as s:
        claimed = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                pid=lease.pid,
                host=lease.host,
                started_at=db_now_sql(s),
                heartbeat_at=db_now_sql(s),
                message="starting",
            )
        ).rowcount
        job = get_job(s, job_id)
        kind, params = job.kind, dict(job.params)
    if not claimed:
        raise ConflictError(f"job {job_id} is {job.status}, not queued")
    if int(params.get("attempt", 1)) > 1:
        _discard_lost_run(url, job_id)
    reporter = Reporter(lease)
    heartbeat = _Heartbeat(reporter)
    heartbeat.start()
    status, result, error = "done", None, None
    try:
        handler = _handlers().get(kind)
        if handler is None:
            raise FewlabelError(f"no handler for job kind {kind!r}")
        result = handler(url, job_id, params, reporter)
    except JobLost as exc:
        status, error = "lost", str(exc)
        log.warning("job %s: %s", job_id, exc)
    except Cancelled as exc:
        status, error = "cancelled", str(exc) or "cancelled"
    except FewlabelError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a job records any failure instead of vanishing
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
    finally:
        heartbeat.done.set()
    if status != "lost":
        message = {"done": "done", "cancelled": "cancelled"}.get(status, f"failed: {error}")
        values = dict(status=status, result=result, error=error, message=message[:500])
        if status == "done":
            values["progress"] = 1.0
        try:
            with session_scope(url) as s:
                lease.hold(s, finished_at=utcnow(), **values)
        except JobLost as exc:
            log.warning(
                "job %s finished %s after it was reaped; not recorded: %s", job_id, status, exc
            )
    with session_scope(url) as s:
        return get_job(s, job_id)


def _discard_lost_run(url: str, job_id: int) -> None:
    """Before a job runs again: remove the files its lost run left under a version number it
    reserved and never registered (core.versions). An aligned base's checkpoint folder
    stays: pretraining resumes from it."""
    from core.versions import discard_lost_files

    removed = discard_lost_files(url, job_id)
    if removed:
        log.info("job %s: removed what its lost run left: %s", job_id, ", ".join(removed))


def start(url: str, job_id: int) -> subprocess.Popen | None:
    """Run a queued job: in a worker process on this machine, unless local workers are off
    (FEWLABEL_LOCAL_WORKER=0), when a `fewlabel worker` elsewhere takes it from the queue."""
    from core.config import get_settings

    if not get_settings().local_worker:
        return None
    return spawn_worker(url, job_id)


def claim_next(url: str, kinds: tuple[str, ...] = ("train", "score", "pretrain")) -> Job | None:
    """Run the oldest queued job of `kinds` in this process, if any; None when none is left.
    Two workers may pick the same row: run_job's claim lets one have it, the other takes the
    next."""
    while True:
        with session_scope(url) as s:
            reap(s)
            job_id = s.scalar(
                select(Job.id)
                .where(Job.status == "queued", Job.kind.in_(kinds))
                .order_by(Job.created_at, Job.id)
                .limit(1)
            )
        if job_id is None:
            return None
        try:
            return run_job(url, job_id)
        except ConflictError:
            continue  # another worker claimed it first


def work(
    url: str,
    kinds: tuple[str, ...] = ("train", "score", "pretrain"),
    *,
    once: bool = False,
    poll: float = 2.0,
    on_job: Callable[[Job], None] | None = None,
) -> int:
    """`fewlabel worker`: run queued jobs of `kinds` one after another, waiting `poll`
    seconds when there are none; with `once`, until the queue is empty. Returns jobs run."""
    n = 0
    while True:
        job = claim_next(url, kinds)
        if job is not None:
            n += 1
            if on_job is not None:
                on_job(job)
            continue
        if once:
            return n
        time.sleep(poll)


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
        [sys.executable, "-m", "core.jobs", str(job_id)],
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    from core.config import get_settings

    parser = argparse.ArgumentParser(description="Run one fewlabel job (the worker process).")
    parser.add_argument(
        "--db", help="database URL (default: $FEWLABEL_DB, which keeps a password out of ps)"
    )
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    job = run_job(get_settings(args.db).db_url, args.job_id)
    if job.pid != os.getpid() or job.host != socket.gethostname():
        # this run lost the job (reaped after a stall); the row is another run's
        print(f"job {job.id}: lost by this worker; the row is another run's", flush=True)
        return 1
    print(f"job {job.id}: {job.status} {job.error or ''}".rstrip(), flush=True)
    return 0 if job.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
