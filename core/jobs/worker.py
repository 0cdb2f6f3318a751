"""The worker side of a job: claim it, run its handler, report progress, hold the lease.

A worker holds its job under a lease (`Lease`): every write it makes (progress, a model
version, scores, the final status) goes through `Lease.hold`, which checks in the same
transaction that the row is still running under this worker's claim. A worker that was
stalled past its heartbeat and reaped (core.jobs.queue.reap) therefore writes nothing more: not its
status, not a version.

A worker is a process of its own: `python -m core.jobs.worker JOB_ID`, which core.jobs.queue.start
spawns on the app's machine, or `fewlabel worker` (`work`), which runs queued jobs on any
machine that reaches the database and the model store.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import Cancelled, ConflictError, FewlabelError, JobLost
from core.jobs import queue as jobs
from core.jobs.queue import get_job, reap
from core.store.db import db_now_sql, session_scope
from core.store.schema import Job, utcnow

log = logging.getLogger(__name__)

# How often a worker beats while its handler is busy between progress reports: every 30 s,
# or a quarter of the lease when the lease is shorter (FEWLABEL_LEASE_SECONDS), so a live
# worker that reports nothing for a while (importing torch, loading or saving a model) is
# never taken for dead.
HEARTBEAT_INTERVAL = timedelta(seconds=30)


def heartbeat_interval() -> float:
    """Seconds between two beats of a busy worker, for the lease in force now."""
    return max(0.05, min(HEARTBEAT_INTERVAL, jobs.HEARTBEAT_TIMEOUT / 4).total_seconds())


def lost_by_this_process(job: Job) -> bool:
    """Whether `job`, as run_job returned it, is another run's now: this process's run was
    reaped (a stall past the lease) and the job queued again or taken by another worker."""
    return job.pid != os.getpid() or job.host != socket.gethostname()


# kind -> handler(url, job_id, params, reporter) -> result dict. Handlers register themselves
# lazily (see _handlers) so importing this module stays cheap for the UI.
Handler = Callable[[str, int, dict, "Reporter"], dict]


def _handlers() -> dict[str, Handler]:
    from core.active.candidates import run_score_job
    from core.jobs.training import run_pretrain_job, run_train_job

    return {"train": run_train_job, "score": run_score_job, "pretrain": run_pretrain_job}


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
    """Beats the lease every heartbeat_interval() while a handler works without reporting
    (loading a model, saving it); a stopped process (SIGSTOP) stops beating with it."""

    def __init__(self, reporter: Reporter):
        super().__init__(name=f"heartbeat-{reporter.job_id}", daemon=True)
        self.reporter, self.done = reporter, threading.Event()

    def run(self) -> None:
        while not self.done.wait(heartbeat_interval()):
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
    reserved and never registered (core.store.versions). An aligned base's checkpoint folder
    stays: pretraining resumes from it."""
    from core.store.versions import discard_lost_files

    removed = discard_lost_files(url, job_id)
    if removed:
        log.info("job %s: removed what its lost run left: %s", job_id, ", ".join(removed))


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


def main(argv: list[str] | None = None) -> int:
    import argparse

    from core.config import background_priority, get_settings

    parser = argparse.ArgumentParser(description="Run one fewlabel job (the worker process).")
    parser.add_argument(
        "--db", help="database URL (default: $FEWLABEL_DB, which keeps a password out of ps)"
    )
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    background_priority()  # a job yields the CPU to the annotators' saves
    job = run_job(get_settings(args.db).db_url, args.job_id)
    if lost_by_this_process(job):
        # this run lost the job (reaped after a stall); the row is another run's
        print(f"job {job.id}: lost by this worker; the row is another run's", flush=True)
        return 1
    print(f"job {job.id}: {job.status} {job.error or ''}".rstrip(), flush=True)
    return 0 if job.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
