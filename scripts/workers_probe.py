"""Two `fewlabel worker` processes and the app on one PostgreSQL, with workers killed mid-job.

Issue 13's worker target: 20 train/score jobs, each done exactly once; a worker killed
mid-job is replaced and the job finishes on another. This starts a throwaway PostgreSQL
cluster on loopback (tests/conftest.py's PostgresCluster; or takes --db), a few projects
labeled for a tiny random BERT (tests/helpers.py), a shared model store (FEWLABEL_MODELS),
and two `fewlabel worker` processes as users run them (the console script, FEWLABEL_DB in
the environment). The probe is the app (FEWLABEL_LOCAL_WORKER=0): it queues the jobs as the
Train page's Retrain and Rescore buttons do (core.jobs.queue.enqueue, then
core.jobs.queue.start, which starts nothing here), one project's jobs one after another, the
projects side by side. While
they run it SIGKILLs the worker of a running job --kills times, spread over the run, and
starts a replacement at once. Then it checks:

- every queued job ends done, run to the end by exactly one worker (the job rows and the
  workers' own "job N (kind): done" lines), attempt 1, or attempt 2 for a killed job, which
  another worker picked up and finished;
- per project, version numbers 1..N with no gap and no repeat, each a done train job's
  version or a number a killed run reserved (never reused); each done train job has its own
  version; every registered version's files match its row (tagger.json's version and
  metrics, head weights) and lie in the store; the newest train job's version is current
  and has a prediction for every open text;
- nothing half-written is left in the store;
- each killed job is running on another worker within the lease plus 15 s of the kill.

With --hosts distinct (the default where `unshare --uts` works, i.e. as root) each worker
runs under a hostname of its own, as on separate machines: a killed worker's job is then
found only by its lease running out (FEWLABEL_LEASE_SECONDS, --lease, default 40 s). With
--hosts same the other worker sees at once that the pid on its host is gone. A worker busy
without reporting beats its lease every 30 s or a quarter of the lease, whichever is shorter
(core.jobs.worker.heartbeat_interval), so a short lease costs a live worker nothing.

    .venv/bin/python scripts/workers_probe.py [--jobs 20] [--kills 3] [--json out.json]

Exit status 1 when an invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# a killed job is picked up within the lease (distinct hosts) plus this much
PICKUP_SLACK_S = 15.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=20, help="train/score jobs to queue (default 20)")
    p.add_argument("--kills", type=int, default=3, help="workers to SIGKILL mid-job (default 3)")
    p.add_argument("--projects", type=int, default=4, help="projects the jobs go to (default 4)")
    p.add_argument("--lease", type=float, default=40.0, help="FEWLABEL_LEASE_SECONDS (default 40)")
    p.add_argument(
        "--hosts",
        choices=("auto", "distinct", "same"),
        default="auto",
        help="workers under hostnames of their own (unshare --uts) or this machine's",
    )
    p.add_argument("--poll", type=float, default=1.0, help="the workers' --poll (default 1 s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each train job")
    p.add_argument("--pool", type=int, default=100, help="unlabeled texts per project")
    p.add_argument(
        "--base", help="the backbone to finetune (default: a tiny random BERT, written here)"
    )
    p.add_argument("--db", help="an existing database URL (default: a throwaway PostgreSQL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many s")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--work", help="work folder (default: a new temporary one)")
    return p.parse_args(argv)


def unshare_works() -> bool:
    try:
        res = subprocess.run(
            ["unshare", "--uts", "hostname", "fewlabel-probe"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    host: str
    out: Path
    killed_at: float | None = None


@dataclass
class Planned:
    """A job the app queues: its project, kind, and what became of it."""

    project: str
    kind: str
    job_id: int | None = None
    queued_at: float | None = None
    runs: list = field(default_factory=list)  # [(worker name, attempt, seconds into the probe)]


class Probe:
    def __init__(self, args: argparse.Namespace, work: Path, url: str):
        self.args, self.work, self.url = args, work, url
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.distinct = args.hosts == "distinct"
        self.workers: list[Worker] = []
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.names = [f"wp{args.seed}-{os.getpid()}-{i + 1}" for i in range(args.projects)]
        self.plan = [
            Planned(
                self.names[i % args.projects], "train" if (i // args.projects) % 2 == 0 else "score"
            )
            for i in range(args.jobs)
        ]
        self.kills: list[dict] = []
        self.kills_between_jobs = 0
        self.seen: dict[int, tuple] = {}  # job id -> (status, pid, attempt) last seen
        self.claimed: dict[int, float] = {}  # job id -> when it was last seen claimed
        self.durations: dict[str, list[float]] = defaultdict(list)  # kind -> claim to done

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    # ---- setup ------------------------------------------------------------------------
    def seed(self) -> None:
        from helpers import ACRONYM_SENTENCES, POOL_SENTENCES, seed_labeled_project, tiny_backbone

        from core.io.imports import import_bytes
        from core.labeling.projects import get_project
        from core.store.db import session_scope

        words = " ".join(ACRONYM_SENTENCES + POOL_SENTENCES).split()
        self.tiny = self.args.base or tiny_backbone(self.work / "tiny", words)
        extra = [f"more text {i} about {w} ." for i, w in enumerate(words * self.args.pool)]
        for name in self.names:
            seed_labeled_project(self.url, name)
            with session_scope(self.url) as s:
                p = get_project(s, name)
                import_bytes(s, p, "more.txt", "\n".join(extra[: self.args.pool]).encode())
        with session_scope(self.url) as s:
            self.project_ids = {get_project(s, n).id: n for n in self.names}

    def start_worker(self) -> Worker:
        """`fewlabel worker`, the console script, under a hostname of its own if distinct."""
        n = len(self.workers) + 1
        name = f"w{n}"
        host = f"probe-{name}" if self.distinct else os.uname().nodename
        script = Path(sys.executable).with_name("fewlabel")
        cli = [str(script)] if script.is_file() else [sys.executable, "-m", "core.cli"]
        cmd = [
            *cli,
            "worker",
            "--poll",
            str(self.args.poll),
            "--kinds",
            "train,score",
        ]
        if self.distinct:
            # unshare and sh exec: the worker keeps the pid Popen returns
            cmd = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host, *cmd]
        out = self.logs / f"{name}.out"
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, "FEWLABEL_DB": self.url, "OMP_NUM_THREADS": "1"},
            cwd=ROOT,
            stdout=out.open("wb"),
            stderr=(self.logs / f"{name}.err").open("wb"),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        w = Worker(name, proc, host, out)
        self.workers.append(w)
        print(f"[{self.now():6.1f}] started {name} (pid {proc.pid}, host {host})", flush=True)
        return w

    # ---- the app side -----------------------------------------------------------------
    def enqueue(self, job: Planned) -> None:
        """What the Train page's buttons do (app/views/train.py _start)."""
        from core.jobs.queue import enqueue, start
        from core.labeling.projects import get_project
        from core.store.db import session_scope

        params = (
            {
                "base": self.tiny,
                "warm_start": False,
                "cv": False,
                "train_args": {"epochs": self.args.epochs},
            }
            if job.kind == "train"
            else {}
        )
        with session_scope(self.url) as s:
            p = get_project(s, job.project)
            job.job_id = enqueue(s, job.kind, p, {**params, "project_id": p.id}).id
        if start(self.url, job.job_id) is not None:
            raise SystemExit("a local worker was started: FEWLABEL_LOCAL_WORKER=0 is not in force")
        job.queued_at = self.now()

    def rows(self) -> dict:
        from sqlalchemy import select

        from core.store.db import session_scope
        from core.store.schema import Job

        with session_scope(self.url) as s:
            jobs = s.scalars(select(Job).where(Job.project_id.in_(self.project_ids)))
            return {
                j.id: (
                    j.status,
                    j.pid,
                    int(j.params.get("attempt", 1)),
                    j.progress,
                    j.message,
                    j.project_id,
                    j.kind,
                )
                for j in jobs
            }

    def worker_of(self, pid: int | None) -> str | None:
        return next((w.name for w in self.workers if w.proc.pid == pid), None)

    def _killed(self, name: str | None) -> bool:
        return any(w.name == name and w.killed_at is not None for w in self.workers)

    def observe(self, rows: dict) -> None:
        """Record each claim (which worker runs which attempt of which job, and when) and how
        long the jobs of each kind take."""
        by_id = {j.job_id: j for j in self.plan if j.job_id is not None}
        for job_id, (status, pid, attempt, *_, kind) in rows.items():
            key = (status, pid, attempt)
            if self.seen.get(job_id) == key:
                continue
            self.seen[job_id] = key
            if status == "running" and job_id in by_id:
                self.claimed[job_id] = time.monotonic()
                by_id[job_id].runs.append(
                    (self.worker_of(pid) or f"pid {pid}", attempt, self.now())
                )
                for k in self.kills:
                    if k["job"] == job_id and k.get("picked_up_s") is None and attempt > 1:
                        k["picked_up_s"] = round(time.monotonic() - k["t"], 2)
                        k["picked_up_by"] = self.worker_of(pid) or f"pid {pid}"
            if status == "done" and job_id in self.claimed and attempt == 1:
                self.durations[kind].append(time.monotonic() - self.claimed[job_id])
            if status == "queued" and attempt > 1:
                for k in self.kills:
                    if k["job"] == job_id and k.get("queued_again_s") is None:
                        k["queued_again_s"] = round(time.monotonic() - k["t"], 2)

    def maybe_kill(self, rows: dict, done: int, target: float) -> bool:
        """SIGKILL the worker of a first attempt running for `target` of a typical run of its
        kind (the median so far; 2 s before any has finished); every other kill waits until
        the job is past its start (a fresh worker's first job spends long importing, the
        moment a kill at random hits most). True if the worker died mid-job."""
        past_start = len(self.kills) % 2 == 1
        for job_id, (status, pid, attempt, _, message, _, kind) in sorted(rows.items()):
            w = next((w for w in self.workers if w.proc.pid == pid and w.killed_at is None), None)
            if status != "running" or attempt != 1 or w is None or job_id not in self.claimed:
                continue
            if past_start and message == "starting":
                continue
            typical = statistics.median(self.durations[kind]) if self.durations[kind] else 2.0
            if time.monotonic() - self.claimed[job_id] < target * typical:
                continue
            w.proc.send_signal(signal.SIGKILL)
            w.killed_at = time.monotonic()
            w.proc.wait()
            after = self.rows()
            self.start_worker()
            # `rows` is a moment old: the job the worker held when it died is the row that
            # still names its pid, or, when a worker on this host already saw the pid gone
            # and queued it again, the row whose attempt went up since `rows` (only this
            # worker died); none: it died between two jobs, which is no kill mid-job
            held = [(i, row) for i, row in after.items() if row[0] == "running" and row[1] == pid]
            if not held:
                held = [
                    (i, (row[0], pid, row[2] - 1, *row[3:]))
                    for i, row in after.items()
                    if i in rows and row[2] > rows[i][2]
                ]
            if not held:
                print(f"[{self.now():6.1f}] SIGKILL {w.name} between jobs", flush=True)
                self.kills_between_jobs += 1
                return False
            [(job_id, (_, _, attempt, progress, message, _, kind))] = held
            self.kills.append(
                {
                    "job": job_id,
                    "kind": kind,
                    "worker": w.name,
                    "attempt": attempt,
                    "t": w.killed_at,
                    "wall": time.time(),  # beside the row's started_at (this host's clock)
                    "at_s": self.now(),
                    "progress": round(progress, 2),
                    "phase": message.split(":")[0][:60],
                    "jobs_done_before": done,
                }
            )
            print(
                f"[{self.now():6.1f}] SIGKILL {w.name} in job {job_id} ({kind}, "
                f"{progress:.0%}: {message[:50]})",
                flush=True,
            )
            return True
        return False

    def run(self) -> float:
        """Queue the plan, kill workers on the way, wait for the end; seconds it took."""
        from core.jobs.queue import ACTIVE

        per_project = defaultdict(list)
        for job in self.plan:
            per_project[job.project].append(job)
        n = len(self.plan)
        kill_after = [(i + 1) * n // (self.args.kills + 1) for i in range(self.args.kills)]
        target = self.rng.uniform(0.1, 0.9)
        started = time.monotonic()
        while time.monotonic() - started < self.args.timeout:
            rows = self.rows()
            self.observe(rows)

            def state(job: Planned, rows: dict = rows) -> str | None:
                # a job just queued is not in rows yet
                return rows.get(job.job_id, ("queued",))[0] if job.job_id else None

            settled = 0
            for jobs in per_project.values():
                # a project's next job once its previous one is done (a score job needs the
                # train job's version, and one job of a kind is active per project)
                nxt = next((j for j in jobs if j.job_id is None), None)
                prev = next((j for j in reversed(jobs) if j.job_id is not None), None)
                if nxt and (prev is None or state(prev) == "done"):
                    self.enqueue(nxt)
                elif prev and state(prev) not in ACTIVE:
                    settled += 1  # all done, or stopped by a job that was not
            if settled == len(per_project):
                break
            done = sum(state(j) == "done" for j in self.plan)
            if len(self.kills) < len(kill_after) and done >= kill_after[len(self.kills)]:
                # once the plan is all queued, a kill still due takes whatever runs now
                late = all(j.job_id is not None for j in self.plan)
                if self.maybe_kill(rows, done, 0.0 if late else target):
                    target = self.rng.uniform(0.1, 0.9)
            time.sleep(0.1)
        return time.monotonic() - started

    def wait_for_reports(self, timeout: float = 120.0) -> list[str]:
        """Wait until every run a live worker started has its "job N (kind): ..." line in
        that worker's output (the row is written before the line); the runs still without
        one after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            missing = []
            for w in self.workers:
                if w.killed_at is not None:
                    continue
                out = w.out.read_text(errors="replace")
                ran = [j.job_id for j in self.plan for name, *_ in j.runs if name == w.name]
                missing += [f"{w.name}: job {i}" for i in ran if f"job {i} (" not in out]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.terminate()
        for w in self.workers:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()

    # ---- invariants -------------------------------------------------------------------
    def check(self) -> tuple[list[str], dict]:
        from sqlalchemy import func, select

        from core.jobs.training import project_models_dir
        from core.store.db import session_scope
        from core.store.schema import Document, Job, ModelVersion, Prediction, Project
        from core.store.versions import RESERVED

        bad: list[str] = []
        killed = {k["job"]: k for k in self.kills}
        planned = {j.job_id: j for j in self.plan if j.job_id is not None}
        if len(planned) != len(self.plan):
            bad.append(f"only {len(planned)} of {len(self.plan)} jobs could be queued")
        # each worker's "job N (kind): status" lines: who ran what to the end
        finished_by: dict[int, list[str]] = defaultdict(list)
        for w in self.workers:
            for line in w.out.read_text(errors="replace").splitlines():
                if line.startswith("job ") and "(" in line:
                    job_id = int(line.split()[1])
                    finished_by[job_id].append(f"{w.name}: {line.split(': ', 1)[1]}")
        with session_scope(self.url) as s:
            jobs = {
                j.id: j for j in s.scalars(select(Job).where(Job.project_id.in_(self.project_ids)))
            }
            for job in jobs.values():
                s.expunge(job)
            versions = list(
                s.scalars(
                    select(ModelVersion)
                    .where(ModelVersion.project_id.in_(self.project_ids))
                    .order_by(ModelVersion.project_id, ModelVersion.version)
                )
            )
            open_docs = dict(
                s.execute(
                    select(Document.project_id, func.count())
                    .where(Document.project_id.in_(self.project_ids), Document.state == "open")
                    .group_by(Document.project_id)
                ).all()
            )
            scored = dict(
                s.execute(
                    select(ModelVersion.project_id, func.count())
                    .join(Prediction, Prediction.model_version_id == ModelVersion.id)
                    .where(ModelVersion.project_id.in_(self.project_ids), ModelVersion.is_current)
                    .group_by(ModelVersion.project_id)
                ).all()
            )
            folders = {
                pid: project_models_dir(pid, s.get(Project, pid).name) for pid in self.project_ids
            }
            for v in versions:
                s.expunge(v)
        others = sorted(set(jobs) - set(planned))
        for job_id in others:
            if jobs[job_id].status != "done":
                bad.append(
                    f"job {job_id} ({jobs[job_id].kind}, not queued by the probe) "
                    f"ended {jobs[job_id].status}"
                )
        for job_id in planned:
            job = jobs[job_id]
            attempt = int(job.params.get("attempt", 1))
            want = 2 if job_id in killed else 1
            if job.status != "done":
                bad.append(f"job {job_id} ({job.kind}) ended {job.status}: {job.error}")
            if attempt != want:
                why = "killed once" if want == 2 else "never killed (a live worker lost it?)"
                bad.append(f"job {job_id} ({job.kind}) ran {attempt} times, {why}")
            lines = finished_by.get(job_id, [])
            runner = self.worker_of(job.pid)
            # a worker SIGKILLed between committing a job and printing its line: the row is
            # done and names it, and no other worker ran the job; nothing to report
            unlogged = not lines and job.status == "done" and self._killed(runner)
            if not unlogged and [ln.split(": ", 1)[1] for ln in lines] != ["done"]:
                bad.append(f"job {job_id}: the workers reported {lines or 'nothing'}, not one done")
            if lines and runner and lines[0].split(":")[0] != runner:
                bad.append(f"job {job_id}: the row says {runner}, the log {lines[0]}")
            if job_id in killed:
                k = killed[job_id]
                k["finished_by"] = runner
                if runner is None or runner == k["worker"]:
                    bad.append(f"killed job {job_id} was finished by {runner}, not another worker")
                if k.get("picked_up_s") is None and job.started_at is not None:
                    # rerun and done between two looks (a tiny job, a worker on this host
                    # that saw the pid gone): the row's start of the retry tells when
                    started = job.started_at.replace(tzinfo=UTC).timestamp()
                    if started >= k["wall"] - 1.0:
                        k["picked_up_s"] = round(max(0.0, started - k["wall"]), 2)
                        k["picked_up_by"] = runner
                if k.get("picked_up_s") is None:
                    bad.append(f"killed job {job_id} was never seen running again")
                elif k["picked_up_s"] > self.pickup_limit():
                    bad.append(
                        f"killed job {job_id} was picked up after {k['picked_up_s']} s "
                        f"(over {self.pickup_limit():g} s)"
                    )
        # versions: numbers 1..N per project, each a done train job's or a killed run's
        per_project = defaultdict(list)
        for v in versions:
            per_project[v.project_id].append(v)
        claimed = {
            (jobs[j].project_id, jobs[j].result["version"]): j
            for j in planned
            if jobs[j].kind == "train" and jobs[j].status == "done" and jobs[j].result
        }
        train_kills = sum(k["kind"] == "train" for k in self.kills)
        reserved_left = orphans = 0
        for pid, name in self.project_ids.items():
            vs = per_project.get(pid, [])
            numbers = [v.version for v in vs]
            if numbers != list(range(1, len(numbers) + 1)):
                bad.append(f"{name}: version numbers {numbers}, not 1..{len(numbers)}")
            trains = [j for j in planned if jobs[j].project_id == pid and jobs[j].kind == "train"]
            mine = [n for (p, n) in claimed if p == pid]
            if len(set(mine)) != len(trains):
                bad.append(f"{name}: {len(trains)} train jobs claim versions {sorted(mine)}")
            current = [v for v in vs if v.is_current]
            newest = max((claimed_v for (p, claimed_v) in claimed if p == pid), default=None)
            if [v.version for v in current] != ([newest] if newest else []):
                bad.append(
                    f"{name}: current {[v.version for v in current]}, newest job's v{newest}"
                )
            if current and scored.get(pid, 0) != open_docs.get(pid, 0):
                bad.append(
                    f"{name}: current version scored {scored.get(pid, 0)} of "
                    f"{open_docs.get(pid, 0)} open texts"
                )
            owned = set()
            for v in vs:
                if v.n_labels == RESERVED:
                    reserved_left += 1
                    continue
                owned.add(Path(v.path).name)
                if (pid, v.version) not in claimed:
                    orphans += 1  # registered by a run killed before it could finish
                bad += [f"{name} v{v.version}: {b}" for b in self.files_disagree(v)]
            folder = folders[pid]
            left = (
                sorted(e.name for e in folder.iterdir() if e.name not in owned)
                if (folder.is_dir())
                else []
            )
            if left:
                bad.append(f"{name}: left in the store: {', '.join(left)}")
        if reserved_left + orphans > train_kills:
            bad.append(
                f"{reserved_left} reserved and {orphans} unclaimed versions after "
                f"{train_kills} train kills"
            )
        figures = {
            "versions": len(versions) - reserved_left,
            "numbers_reserved_by_killed_runs": reserved_left,
            "versions_registered_by_killed_runs": orphans,
            "jobs_not_queued_by_the_probe": len(others),
        }
        return bad, figures

    def pickup_limit(self) -> float:
        return (self.args.lease if self.distinct else 0.0) + PICKUP_SLACK_S

    def files_disagree(self, v) -> list[str]:
        """What a registered version's folder says against its row (scripts/fault_probe.py)."""
        from core.config import get_settings

        folder = Path(v.path)
        meta_file = folder / "tagger.json"
        if folder.name != f"v{v.version}" or not meta_file.is_file():
            return [f"no model at {v.path}"]
        found = []
        if not folder.is_relative_to(get_settings().models_dir):
            found.append(f"{folder} is outside the store {get_settings().models_dir}")
        info = json.loads(meta_file.read_text()).get("info", {})
        if info.get("version") != v.version:
            found.append(f"files say version {info.get('version')}")
        if info.get("metrics") != json.loads(json.dumps(v.metrics)):
            found.append("files' metrics differ from the row's")
        if not (folder / "head.safetensors").is_file() and not list(folder.glob("*head*")):
            found.append("no head weights")
        return found


def start_postgres(work: Path):
    """A throwaway cluster on a loopback port, as the test session starts one."""
    from conftest import PostgresCluster

    cluster = PostgresCluster()
    cluster.start()
    name = cluster.create_database()
    return cluster, cluster.url(name)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.kills >= args.jobs:
        print("workers_probe: --kills must be fewer than --jobs", file=sys.stderr)
        return 2
    if args.hosts == "auto":
        args.hosts = "distinct" if unshare_works() else "same"
    elif args.hosts == "distinct" and not unshare_works():
        print("workers_probe: unshare --uts is not allowed here: --hosts same", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="fewlabel-workers-"))
    work.mkdir(parents=True, exist_ok=True)
    # the app's settings, which the workers inherit; set before core.jobs.queue is imported
    os.environ.update(
        FEWLABEL_HOME=str(work / "home"),
        FEWLABEL_MODELS=str(work / "store"),
        FEWLABEL_LOCAL_WORKER="0",
        FEWLABEL_LEASE_SECONDS=f"{args.lease:g}",
    )
    from datetime import timedelta

    from core.jobs import queue as jobs
    from core.store.db import display_url, get_engine, upgrade

    jobs.HEARTBEAT_TIMEOUT = timedelta(seconds=args.lease)
    cluster = None
    probe = None
    try:
        if args.db:
            url = args.db
        else:
            cluster, url = start_postgres(work)
        upgrade(url)
        probe = Probe(args, work, url)
        print(
            f"database {display_url(url)}, store {work / 'store'}, lease {args.lease:g} s, "
            f"hosts {args.hosts}; {args.jobs} jobs over {args.projects} projects, "
            f"{args.kills} kills",
            flush=True,
        )
        # the workers start (and import what they need) while the projects are seeded
        probe.start_worker()
        probe.start_worker()
        probe.seed()
        seconds = probe.run()
        unreported = probe.wait_for_reports()
        probe.stop_workers()
        violations, figures = probe.check()
        violations += [f"a run without its worker's report line: {m}" for m in unreported]
    finally:
        if probe is not None:
            probe.stop_workers()
        if cluster is not None:
            get_engine(url).dispose()
            cluster.stop()
    kills = [{k: v for k, v in kill.items() if k != "t"} for kill in probe.kills]
    if len(kills) < args.kills:
        violations.append(f"only {len(kills)} of {args.kills} kills landed mid-job")
    pickups = [k["picked_up_s"] for k in kills if k.get("picked_up_s") is not None]
    workers = defaultdict(list)  # worker -> the jobs it claimed, in order
    for _, name, attempt, job_id in sorted(
        (t, name, attempt, j.job_id) for j in probe.plan for name, attempt, t in j.runs
    ):
        workers[name].append(job_id if attempt == 1 else f"{job_id} (attempt {attempt})")
    result = {
        "command": "scripts/workers_probe.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "database": "postgresql (throwaway cluster)" if cluster else display_url(url),
        "hosts": args.hosts,
        "lease_seconds": args.lease,
        "poll_seconds": args.poll,
        "jobs": len(probe.plan),
        "jobs_done": sum(
            probe.seen.get(j.job_id, ("",))[0] == "done" for j in probe.plan if j.job_id
        ),
        "kinds": {k: sum(j.kind == k for j in probe.plan) for k in ("train", "score")},
        "projects": args.projects,
        "kills": kills,
        "kills_between_jobs": probe.kills_between_jobs,
        "pickup_seconds": {
            "median": round(statistics.median(pickups), 2) if pickups else None,
            "max": max(pickups) if pickups else None,
        },
        "runs_by_worker": dict(workers),
        **figures,
        "seconds": round(seconds, 1),
        "violations": violations,
        "work": str(work),
    }
    print()
    print(
        f"{result['jobs']} jobs ({result['kinds']['train']} train, {result['kinds']['score']} "
        f"score) in {result['seconds']} s on {result['hosts']} hosts, lease {args.lease:g} s"
    )
    for k in kills:
        print(
            f"  kill: {k['worker']} in job {k['job']} ({k['kind']}, {k['phase']}) -> queued "
            f"again after {k.get('queued_again_s')} s, running on {k.get('picked_up_by')} "
            f"after {k.get('picked_up_s')} s, finished by {k.get('finished_by')}"
        )
    for name, ran in result["runs_by_worker"].items():
        print(f"  {name}: {', '.join(map(str, ran))}")
    print(
        f"  versions {figures['versions']}, numbers kept by killed runs "
        f"{figures['numbers_reserved_by_killed_runs']}, registered by killed runs "
        f"{figures['versions_registered_by_killed_runs']}"
    )
    print(f"violations: {len(violations)}")
    for v in violations:
        print(f"  violation: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
