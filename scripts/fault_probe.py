"""Kill -9 job workers at random moments and check what is left (issue 12's fault targets).

For each job kind (train, score, pretrain) this starts real worker processes
(core.jobs.queue.spawn_worker) on a tiny randomly initialised BERT, kills each with SIGKILL at a
random moment of its run, then checks:

- every registered model version's folder holds the model its row describes (tagger.json's
  version and metrics equal the row's), and the current version has a prediction for every
  open document;
- the project's base (pretrain) is a complete checkpoint;
- the next job of the kind is claimed by its worker within 10 s of the kill (reap + spawn);
- after one last uninterrupted job per kind, no temporary or unregistered folder is left.

    .venv/bin/python scripts/fault_probe.py --kills 20 [--seed 0] [--json out.json]

Runs in a temporary folder; nothing outside it is touched. Exit status 1 when an invariant
was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

KINDS = ("train", "score", "pretrain")
START_LIMIT_S = 10.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20, help="kills per job kind (default 20)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated job kinds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=300, help="unlabeled texts to score")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--work", help="work folder (default: a new temporary one)")
    return p.parse_args(argv)


class Probe:
    def __init__(self, work: Path, pool: int):
        os.environ["FEWLABEL_HOME"] = str(work / "home")
        from helpers import ACRONYM_SENTENCES, POOL_SENTENCES, seed_labeled_project, tiny_backbone

        from core.io.imports import import_bytes
        from core.labeling.projects import get_project
        from core.store.db import session_scope, upgrade

        self.url = f"sqlite:///{work / 'probe.db'}"
        upgrade(self.url)
        words = " ".join(ACRONYM_SENTENCES + POOL_SENTENCES).split()
        self.tiny = tiny_backbone(work / "tiny", words)
        seed_labeled_project(self.url)
        extra = [f"more text {i} about {w} ." for i, w in enumerate(words * pool)][:pool]
        with session_scope(self.url) as s:
            import_bytes(s, get_project(s, "p"), "more.txt", "\n".join(extra).encode())
            self.project_id = get_project(s, "p").id
        self.log_dir = work / "logs"

    # ---- jobs -------------------------------------------------------------------------
    def params(self, kind: str) -> dict:
        base = {"project_id": self.project_id}
        if kind == "train":
            return {**base, "base": self.tiny, "cv": False, "train_args": {"epochs": 3}}
        if kind == "pretrain":
            return {**base, "base": self.tiny, "steps": 12, "sample_corpus": False}
        return base

    def start(self, kind: str):
        """Enqueue (which reaps a dead job first) and spawn a worker: (job id, process)."""
        from core.jobs.queue import enqueue, spawn_worker
        from core.labeling.projects import get_project
        from core.store.db import session_scope

        with session_scope(self.url) as s:
            job_id = enqueue(s, kind, get_project(s, "p"), self.params(kind)).id
        return job_id, spawn_worker(self.url, job_id, log_dir=self.log_dir)

    def job(self, job_id: int):
        from core.jobs.queue import get_job
        from core.store.db import session_scope

        with session_scope(self.url) as s:
            return get_job(s, job_id)

    def wait_running(self, job_id: int, timeout: float = 60.0) -> float | None:
        """Seconds until the worker claimed the job (None: never within `timeout`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.job(job_id).status != "queued":
                return time.monotonic() - t0
            time.sleep(0.02)
        return None

    def run_to_end(self, kind: str) -> tuple[float, str]:
        job_id, proc = self.start(kind)
        t0 = time.monotonic()
        proc.wait(timeout=600)
        return time.monotonic() - t0, self.job(job_id).status

    # ---- invariants -------------------------------------------------------------------
    def violations(self) -> list[str]:
        """What disagrees: a version's files and its row, the current version's scores, the
        project's base."""
        from sqlalchemy import func, select

        from core.labeling.projects import get_project
        from core.model.backbone import is_tagger_checkpoint
        from core.store.db import session_scope
        from core.store.schema import Document, Prediction
        from core.store.versions import current_version, list_versions

        found = []
        with session_scope(self.url) as s:
            p = get_project(s, "p")
            versions = [(v.version, v.path, v.metrics) for v in list_versions(s, p)]
            current = current_version(s, p)
            open_docs = s.scalar(
                select(func.count()).where(Document.project_id == p.id, Document.state == "open")
            )
            scored = (
                s.scalar(select(func.count()).where(Prediction.model_version_id == current.id))
                if current
                else None
            )
            base = p.base_model
        for number, path, metrics in versions:
            folder = Path(path)
            meta_file = folder / "tagger.json"
            if folder.name != f"v{number}" or not meta_file.is_file():
                found.append(f"v{number}: no model at {path}")
                continue
            info = json.loads(meta_file.read_text()).get("info", {})
            if info.get("version") != number:
                found.append(f"v{number}: files say version {info.get('version')}")
            if info.get("metrics") != json.loads(json.dumps(metrics)):
                found.append(f"v{number}: files' metrics differ from the row's")
            if not (folder / "head.safetensors").is_file() and not list(folder.glob("*head*")):
                found.append(f"v{number}: no head weights")
        if current is not None and scored != open_docs:
            found.append(f"current v{current.version}: {scored} predictions for {open_docs} open")
        if base and base != self.tiny and not is_tagger_checkpoint(base):
            found.append(f"base {base} is not a complete checkpoint")
        return found

    def leftovers(self) -> list[str]:
        """Folders under the project's model folder that no registered version or base owns."""
        from core.jobs.training import project_models_dir
        from core.labeling.projects import get_project
        from core.store.db import session_scope
        from core.store.versions import list_versions

        with session_scope(self.url) as s:
            p = get_project(s, "p")
            owned = {Path(v.path).name for v in list_versions(s, p)}
            if p.base_model:
                owned.add(Path(p.base_model).name)
            folder = project_models_dir(p.id, p.name)
        if not folder.is_dir():
            return []
        done_aligned = {f"aligned-{j}" for j in self.done_jobs()}
        return sorted(
            e.name for e in folder.iterdir() if e.name not in owned and e.name not in done_aligned
        )

    def done_jobs(self) -> set[int]:
        from sqlalchemy import select

        from core.store.db import session_scope
        from core.store.schema import Job

        with session_scope(self.url) as s:
            return set(s.scalars(select(Job.id).where(Job.status == "done")))


def probe_kind(probe: Probe, kind: str, kills: int, rng: random.Random) -> dict:
    duration, status = probe.run_to_end(kind)  # calibration: how long one run takes
    if status != "done":
        raise SystemExit(f"a {kind} job without faults ended {status}: see {probe.log_dir}")
    print(f"{kind}: one run takes {duration:.1f} s; killing {kills} at random moments", flush=True)
    starts, violations, phases = [], [], Counter()
    finished_first = left_after_kill = 0
    kill_at = None
    hit = 0
    while hit < kills:
        job_id, proc = probe.start(kind)
        started = probe.wait_running(job_id)
        if kill_at is not None:
            # the next job after a kill: claimed by its worker within START_LIMIT_S?
            starts.append(None if started is None else time.monotonic() - kill_at)
        # half the kills anywhere in the run, half in its last 40 % (saving, registering,
        # scoring, switching), where the windows that matter are short
        low = 0.0 if hit % 2 == 0 else 0.6
        delay = rng.uniform(low * duration, duration * 1.05)
        time.sleep(delay)
        job = probe.job(job_id)
        phase = job.message.split(":")[0][:40]
        if proc.poll() is not None or job.status != "running":
            # the job had finished (its process may still be exiting): not a kill mid-job
            proc.wait()
            finished_first += 1
            kill_at = None
            continue
        proc.send_signal(signal.SIGKILL)
        kill_at = time.monotonic()
        proc.wait()
        hit += 1
        phases[phase] += 1
        bad = probe.violations()
        violations += [f"kill {hit} ({phase}): {b}" for b in bad]
        left_after_kill += bool(probe.leftovers())
        print(f"  kill {hit:2d} at {delay:5.2f} s ({phase}): {'; '.join(bad) or 'ok'}", flush=True)
    # one last job after the last kill: it starts in time, finishes, and sweeps what was left
    job_id, proc = probe.start(kind)
    started = probe.wait_running(job_id)
    starts.append(None if started is None else time.monotonic() - kill_at)
    proc.wait(timeout=600)
    final_status = probe.job(job_id).status
    violations += [f"after the last job: {b}" for b in probe.violations()]
    left = probe.leftovers()
    if left:
        violations.append(f"after the last job, left on disk: {', '.join(left)}")
    measured = [s for s in starts if s is not None]
    late = sum(1 for s in starts if s is None or s > START_LIMIT_S)
    return {
        "kind": kind,
        "run_seconds": round(duration, 2),
        "kills": hit,
        "finished_before_the_kill": finished_first,
        "phases_at_kill": dict(phases.most_common()),
        "kills_leaving_unfinished_folders": left_after_kill,
        "violations": violations,
        "next_start_seconds": {
            "median": round(statistics.median(measured), 2) if measured else None,
            "max": round(max(measured), 2) if measured else None,
            "over_10_s": late,
        },
        "last_job": final_status,
        "left_on_disk_after_last_job": left,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        print(f"fault_probe: unknown kinds {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="fewlabel-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    # a killed job fails at once here instead of being queued again (core.jobs.queue.MAX_ATTEMPTS,
    # tests/test_workers.py): each kill is then followed by a new job of the kind, whose
    # start time and the files it finds are what this probe measures
    from core.jobs import queue as jobs

    jobs.MAX_ATTEMPTS = 1
    probe = Probe(work, args.pool)
    # a score job needs a current version; kills of train jobs leave the probe's first one
    results = []
    for kind in kinds:
        results.append(probe_kind(probe, kind, args.kills, rng))
        print(json.dumps(results[-1]), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    print()
    print(
        f"{'kind':9} {'kills':>5} {'violations':>10} {'next start median/max (s)':>26} "
        f"{'late':>4} {'left after last job':>19}"
    )
    for r in results:
        st = r["next_start_seconds"]
        print(
            f"{r['kind']:9} {r['kills']:5d} {len(r['violations']):10d} "
            f"{st['median']:>13}/{st['max']:<12} {st['over_10_s']:4d} "
            f"{len(r['left_on_disk_after_last_job']):19d}"
        )
        for v in r["violations"]:
            print(f"  violation: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    bad = any(r["violations"] or r["next_start_seconds"]["over_10_s"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
