"""`fewlabel bench speed`: how the product's loop behaves at a backlog of N texts.

One run on one database measures, through the product's own code paths: the import rate of
N texts, "next text" latency (claim + pre-fill, one transaction, as the Annotate page asks),
a Retrain at the labeled sample's size run by a real worker process (as the button starts
it): its finetuning seconds, and the time from the button to a queue ordered by the new
model (worker start, model load, finetune, save, pool scoring), and pool scoring
texts/s per inference engine. The texts are the lines of a corpus file cycled to N; copies
after the first pass get a " [k]" suffix, since the product stores each distinct text once.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from core import defaults
from core.errors import FewlabelError

Progress = Callable[[str], None]
KEYS = (
    "docs",
    "import_docs_per_s",
    "next_p50_ms",
    "next_p95_ms",
    "retrain_s",
    "retrain_to_queue_s",
    "score_texts_per_s",
)


def write_corpus(source: Path, n: int, out: Path) -> int:
    """N distinct lines from `source` (cycled, copies suffixed " [k]") into `out`."""
    lines = [ln.strip() for ln in source.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise FewlabelError(f"{source}: no text lines to build a corpus from")
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n):
            k, line = divmod(i, len(lines))
            fh.write(f"{lines[line]} [{k}]\n" if k else lines[line] + "\n")
    return n


def labeled_sample(path: Path, n: int, out: Path, seed: int = 1) -> int:
    """The first n records of a SciAD JSON file shuffled with random.Random(seed) (the SciAD
    split of docs/benchmarks.md), written as a SciAD JSON file to import as gold labels."""
    records = json.loads(path.read_text(encoding="utf-8"))
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    out.write_text(json.dumps([records[i] for i in order[:n]]), encoding="utf-8")
    return min(n, len(records))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _next_latency(url: str, project_id: int, samples: int) -> list[float]:
    """Milliseconds per "next text" for `samples` calls by 8 rotating annotators; each text
    is skipped afterwards (untimed) so the next call claims a fresh one."""
    from core.labeling.annotations import next_document, skip
    from core.store.db import session_scope
    from core.store.schema import Project

    times = []
    for i in range(samples):
        who = f"bench-{i % 8}"
        t0 = time.perf_counter()
        with session_scope(url) as s:
            task = next_document(s, s.get(Project, project_id), who)
        times.append((time.perf_counter() - t0) * 1000)
        if task is None:
            break
        with session_scope(url) as s:
            skip(s, s.get(Project, project_id), task.document_id, who)
    return times


def _retrain(url: str, project_id: int, params: dict, log_dir: Path, poll: float = 0.1) -> dict:
    """Start a train job in a worker process, as Retrain does: seconds until a new version
    orders the queue (it becomes current only with the pool scored) and until the job is done
    (cross-validation, when the labels are few, runs after the queue is fresh)."""
    from core.jobs import queue as jobs
    from core.store.db import session_scope
    from core.store.schema import Project
    from core.store.versions import current_version

    def current() -> int:
        with session_scope(url) as s:
            mv = current_version(s, s.get(Project, project_id))
            return mv.version if mv else 0

    before = current()
    with session_scope(url) as s:
        job_id = jobs.enqueue(s, "train", s.get(Project, project_id), params).id
    t0 = time.perf_counter()
    worker = jobs.spawn_worker(url, job_id, log_dir=log_dir)
    fresh = None
    while True:
        with session_scope(url) as s:
            job = jobs.get_job(s, job_id)
            status, result, error = job.status, job.result, job.error
        now = time.perf_counter() - t0
        if fresh is None and current() > before:
            fresh = now
        if status not in jobs.ACTIVE:
            break
        if worker.poll() is not None and status == "running":
            time.sleep(1)  # the worker may have written its last row just now
            with session_scope(url) as s:
                if jobs.get_job(s, job_id).status in jobs.ACTIVE:
                    raise FewlabelError(f"the train worker exited ({worker.returncode}) mid-job")
        time.sleep(poll)
    worker.wait(timeout=60)
    if status != "done":
        raise FewlabelError(f"the train job ended {status}: {error}")
    return {"retrain_to_queue_s": fresh or now, "job_s": now, "result": result}


def _scoring_rate(path: str, texts: Sequence[tuple[str, list]], strategy: str) -> dict:
    """texts/s of pool scoring (prediction + uncertainty) per engine, on the same texts: torch
    (bf16 autocast where the CPU has it) and, on CPU, ONNX Runtime fp32 and int8 (exported
    before timing; left out where the export fails). The engines take turns, twice, and each
    keeps its faster run, since other processes may share the CPU."""
    import torch

    from core import defaults
    from core.active.strategies import get_strategy, score_documents
    from core.model import engines
    from core.model.predict import load_tagger, predict

    model = load_tagger(path)
    chosen = get_strategy(strategy)
    mc = defaults.BALD_SAMPLES if chosen.needs_samples else 0
    names = ["torch"]
    if engines.resolve(model, "onnx-int8", len(texts), mc_dropout=mc) != "torch":
        try:
            for name in ("onnx", "onnx-int8"):
                engines.network(model, name, torch.get_num_threads())
                names.append(name)
        except Exception as e:  # an export the exporter cannot do: torch alone
            engines.disable(model, e)

    def score(engine: str, batch: Sequence[tuple[str, list]]) -> None:
        preds = predict(model, batch, engine=engine, mc_dropout=mc)
        score_documents(
            [p.word_probs for p in preds],
            strategy=chosen.name,
            samples_list=[p.mc_probs for p in preds] if mc else None,
        )

    for name in names:
        score(name, texts[:64])  # warm-up
    best: dict[str, float] = {}
    for _ in range(2):
        for name in names:
            t0 = time.perf_counter()
            score(name, texts)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    return {name: len(texts) / best[name] for name in names}


def _machine() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cpu_cores": os.cpu_count(),
    }


def speed(
    *,
    docs: int,
    corpus: str | Path,
    labeled: str | Path,
    n_labels: int = 200,
    backbone: str = "default",
    url: str | None = None,
    work_dir: str | Path | None = None,
    epochs: int | None = None,
    next_samples: int = 200,
    score_sample: int = 2000,
    progress: Progress | None = None,
) -> dict:
    """Run the measurements on a fresh project (in a fresh SQLite file unless `url` names a
    database) and return one record with KEYS plus what was measured on which machine."""
    from core.store.db import ensure_schema

    say = progress or (lambda _m: None)
    corpus, labeled = Path(corpus), Path(labeled)
    for path in (corpus, labeled):
        if not path.is_file():
            raise FewlabelError(f"{path}: no such file (benchmark data: ../shared/benchmarks)")
    work = Path(work_dir or tempfile.mkdtemp(prefix="fewlabel-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    if url is None:
        db = work / "speed.db"
        for leftover in work.glob("speed.db*"):
            leftover.unlink()
        url = f"sqlite:///{db}"
    # What the Retrain's worker (a child process) inherits: with a throwaway database, its
    # model folder beside it; and no background scoring of the rest of the pool
    # (core.active.candidates.score_rest), which would share the CPU with the scoring rates measured
    # below. Restored when the run ends.
    worker_env = {"FEWLABEL_LOCAL_WORKER": "0"}
    if url is None or url.startswith(f"sqlite:///{work}"):
        worker_env["FEWLABEL_HOME"] = str(work / "home")
    ensure_schema(url)
    project_id, n_gold, import_s = _speed_project(
        url, work, corpus, labeled, docs=docs, n_labels=n_labels, backbone=backbone, say=say
    )

    say(f"retraining on {n_gold} labeled texts in a worker process")
    # cross-validated F1 runs after the queue is fresh (core.jobs.training) and measures nothing
    # the loop waits for: left out, so the scoring rate below is timed on an idle machine
    params: dict = {"project_id": project_id, "cv": False}
    if epochs:
        params["train_args"] = {"epochs": epochs}
    with _environment(worker_env):
        retrain = _retrain(url, project_id, params, work / "logs")

    say(f"timing {next_samples} next-text calls")
    next_ms = _next_latency(url, project_id, next_samples)

    say(f"scoring {score_sample} pool texts per engine")
    sample, strategy = _pool_sample(url, project_id, score_sample)
    rates = _scoring_rate(retrain["result"]["path"], sample, strategy)

    return {
        "docs": docs,
        "import_docs_per_s": round(docs / import_s, 1),
        "next_p50_ms": round(statistics.median(next_ms), 2),
        "next_p95_ms": round(_percentile(next_ms, 0.95), 2),
        "retrain_s": retrain["result"]["train_seconds"],
        "retrain_to_queue_s": round(retrain["retrain_to_queue_s"], 1),
        "job_s": round(retrain["job_s"], 1),
        "score_texts_per_s": {k: round(v, 1) for k, v in rates.items()},
        "n_labels": n_gold,
        "scored_in_job": retrain["result"].get("scored"),
        "candidates": defaults.CANDIDATES,
        "database": url.split(":", 1)[0],
        "backbone": backbone,
        "strategy": strategy,
        "machine": _machine(),
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set while the block runs, restored after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _speed_project(
    url: str, work: Path, corpus: Path, labeled: Path, *, docs, n_labels, backbone, say
) -> tuple[int, int, float]:
    """A fresh project on `backbone` with `docs` texts of the corpus imported (timed) and a
    sample of `n_labels` labeled texts: (its id, the labeled texts, the import's seconds)."""
    from core.io.imports import import_file
    from core.labeling.projects import create_project
    from core.store.db import session_scope
    from core.store.schema import Project

    texts_file, gold_file = work / "pool.txt", work / "gold.json"
    write_corpus(corpus, docs, texts_file)
    n_gold = labeled_sample(labeled, n_labels, gold_file)
    name = f"speed-{docs}-{int(time.time())}"
    with session_scope(url) as s:
        project = create_project(s, name, "acronym")
        project.base_model = backbone
        project_id = project.id

    say(f"importing {docs} texts")
    t0 = time.perf_counter()
    with session_scope(url) as s:
        import_file(s, s.get(Project, project_id), texts_file, fmt="txt", txt_mode="lines")
    import_s = time.perf_counter() - t0
    with session_scope(url) as s:
        import_file(s, s.get(Project, project_id), gold_file, annotator="gold")
    return project_id, n_gold, import_s


def _pool_sample(url: str, project_id: int, size: int) -> tuple[list[tuple[str, list]], str]:
    """(text, words) of `size` open texts, and the project's strategy's name."""
    from sqlalchemy import select

    from core.active.strategies import project_strategy
    from core.store.db import session_scope
    from core.store.schema import Document, Project
    from core.text import words_of

    with session_scope(url) as s:
        rows = s.execute(
            select(Document.text, Document.tokens)
            .where(Document.project_id == project_id, Document.state == "open")
            .limit(size)
        ).all()
        strategy = project_strategy(s.get(Project, project_id)).name
    return [(text, words_of(text, tokens)) for text, tokens in rows], strategy


def speed_table(record: dict) -> str:
    """The record as the lines a person reads."""
    rates = ", ".join(f"{k} {v:.0f}" for k, v in record["score_texts_per_s"].items())
    return "\n".join(
        [
            f"documents               {record['docs']:,} ({record['database']})",
            f"import                  {record['import_docs_per_s']:,.0f} texts/s",
            f"next text               p50 {record['next_p50_ms']} ms, "
            f"p95 {record['next_p95_ms']} ms",
            f"retrain ({record['n_labels']} labels)   {record['retrain_s']} s finetuning "
            f"(the whole job {record['job_s']} s)",
            f"retrain to fresh queue  {record['retrain_to_queue_s']} s "
            f"({record['scored_in_job']:,} texts scored first; candidate set "
            f"{record['candidates']:,}, the rest in the background)",
            f"pool scoring            {rates} texts/s",
            f"machine                 {record['machine']['device']}, "
            f"torch {record['machine']['torch']}",
        ]
    )
