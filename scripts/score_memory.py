"""Peak memory of scoring the whole pool against the pool's size (issue 14's last target).

For each --docs N this builds, in a temporary folder, a SQLite project holding the tests'
labeled acronym sentences and N unlabeled texts (lines of sciad/unlabeled_train.txt, cycled
and numbered so every text is distinct), trains version 1 on a tiny random BERT (the worker's
own train job, run in this process), then in a fresh process loads that version and scores
every open text as the Rescore job does (core.active.scoring.score_pool, which writes predictions
and the queue order) and puts the queue in order once more (core.active.candidates.rerank). That
process reports its resident memory after loading the model and its peak resident size
(VmHWM, reset after loading, and again between scoring and reranking); the difference is
what scoring N texts costs on top of the model.

Not ru_maxrss: Linux carries it across exec, so a child started by this process, which
holds the N texts it imported, would report this process's size as its own peak (the
figures before 2026-12-05 did: +1,724 MB "for scoring" at a million texts was the parent).

    .venv/bin/python scripts/score_memory.py --docs 10000 100000 [--json out.json]

The tiny model keeps the run short; the memory that grows with the pool is the pool's data
(ids, scores, texts, rows), not the model's, so the real backbone adds a constant.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SCIAD = ROOT.parent / "shared" / "benchmarks" / "sciad" / "unlabeled_train.txt"

CHILD = """
import json, sys, time
from core.store.db import session_scope
from core.model.predict import load_tagger
from core.store.schema import ModelVersion
url, project_id, version_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with session_scope(url) as s:
    path = s.get(ModelVersion, version_id).path
model = load_tagger(path)
from core.active.candidates import rerank
from core.active.scoring import score_pool
def status_mb(key):  # VmRSS now, or VmHWM: this process image's peak since the last reset
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
def reset_peak():  # Linux >= 4.0: VmHWM starts again from the current resident size
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
load_peak, before = status_mb("VmHWM"), status_mb("VmRSS")
reset_peak()
t0 = time.perf_counter()
n = score_pool(url, project_id, version_id, model=model)
seconds = time.perf_counter() - t0
score_peak = status_mb("VmHWM")
reset_peak()
ranked = rerank(url, project_id)
rerank_peak = status_mb("VmHWM")
print(json.dumps({"scored": n, "ranked": ranked, "score_seconds": round(seconds, 1),
                  "rss_after_model_mb": round(before, 1),
                  "peak_loading_mb": round(load_peak, 1),
                  "peak_scoring_mb": round(score_peak, 1),
                  "peak_rerank_mb": round(rerank_peak, 1)}))
"""


def pool_texts(n: int) -> bytes:
    lines = [ln.strip() for ln in SCIAD.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return "\n".join(f"{lines[i % len(lines)]} ({i})" for i in range(n)).encode()


def measure(n: int, work: Path, tiny: str) -> dict:
    from helpers import ACRONYM_SENTENCES

    from core.io.imports import import_bytes
    from core.jobs.queue import enqueue
    from core.jobs.worker import run_job
    from core.labeling.projects import create_project
    from core.store.db import ensure_schema, session_scope
    from core.store.schema import ModelVersion

    url = f"sqlite:///{work / f'pool-{n}.db'}"
    ensure_schema(url)
    conll = "\n\n".join(
        "\n".join(f"{w}\t{'B-SHORT' if w.isupper() and len(w) > 1 else 'O'}" for w in s.split())
        for s in ACRONYM_SENTENCES
    )
    t0 = time.perf_counter()
    with session_scope(url) as s:
        p = create_project(s, "mem", "acronym")
        import_bytes(s, p, "gold.conll", (conll + "\n").encode(), annotator="gold")
        import_bytes(s, p, "pool.txt", pool_texts(n))
        project_id = p.id
        params = {"project_id": p.id, "base": tiny, "cv": False, "train_args": {"epochs": 1}}
        job_id = enqueue(s, "train", p, params).id
    job = run_job(url, job_id)
    if job.status != "done":
        raise SystemExit(f"training failed: {job.error}")
    with session_scope(url) as s:
        version_id = s.query(ModelVersion.id).filter_by(project_id=project_id).scalar()
    setup = time.perf_counter() - t0
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(project_id), str(version_id)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(out.stdout.splitlines()[-1])
    record = {"docs": n, "setup_seconds": round(setup, 1), **measured}
    peak = max(record["peak_scoring_mb"], record["peak_rerank_mb"])
    record["scoring_mb"] = round(peak - record["rss_after_model_mb"], 1)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ["FEWLABEL_LOCAL_WORKER"] = "0"  # the train job's follow-up scoring waits
    with tempfile.TemporaryDirectory(prefix="fewlabel-mem-") as tmp:
        work = Path(tmp)
        os.environ["FEWLABEL_HOME"] = str(work / "home")
        from helpers import POOL_SENTENCES, tiny_backbone

        words = " ".join(POOL_SENTENCES).split()
        words += SCIAD.read_text(encoding="utf-8").split()[:20000]
        tiny = tiny_backbone(work / "tiny", words)
        records = []
        for n in args.docs:
            rec = measure(n, work, tiny)
            records.append(rec)
            print(
                f"{n:>9} texts: scored {rec['scored']} in {rec['score_seconds']} s; "
                f"RSS after loading the model {rec['rss_after_model_mb']} MB, peak while "
                f"scoring {rec['peak_scoring_mb']} MB, reranking {rec['peak_rerank_mb']} MB: "
                f"scoring added {rec['scoring_mb']} MB",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
