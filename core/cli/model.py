"""Commands that train, score and apply models: train, queue, predict, pretrain."""

from __future__ import annotations

import argparse
import os
import sys

from core import defaults
from core.active.strategies import STRATEGIES, get_strategy
from core.cli.common import EVIDENCE, READ_FORMATS, WEAK_TASKS, ProgressBar, positive, table
from core.errors import FewlabelError


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", parents=[db], help="finetune a model version on a project's labels")
    p.add_argument("project")
    p.add_argument("--base", help="backbone: default, a Hugging Face id, or a local path")
    p.add_argument(
        "--epochs",
        type=int,
        help=defaults.EPOCHS_HELP,
    )
    p.add_argument("--warm-start", action="store_true", help="start from the current version")
    p.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=EVIDENCE)
    p.add_argument(
        "--cv",
        action=argparse.BooleanOptionalAction,
        help="while labels are too few for a dev slice to measure F1, also report k-fold "
        "cross-validated F1 (k more finetunes; default: yes)",
    )
    p.add_argument(
        "--background", action="store_true", help="start a worker process and return at once"
    )
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("predict", help="tag a file with a saved model version")
    p.add_argument("--model", required=True, help="a model version directory")
    p.add_argument("--input", required=True, help="a file of any import format")
    p.add_argument(
        "--output",
        required=True,
        help="its suffix picks the format (.jsonl, .csv, .conll, .json for SciAD, .txt for "
        "tagged text, .spacy); another suffix gets the input's format",
    )
    p.add_argument("--format", default="auto", choices=READ_FORMATS)
    p.add_argument("--batch-size", type=positive, default=32)
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser(
        "queue", parents=[db], help="show the next texts to label, with their scores"
    )
    p.add_argument("project")
    p.add_argument("--n", type=positive, default=10, help="how many texts (default 10)")
    p.add_argument(
        "--strategy",
        help="rescore the pool with this strategy using the current model: "
        + "; ".join(f"{s.name}: {s.help}" for s in STRATEGIES.values()),
    )
    p.add_argument("--save", action="store_true", help="make --strategy the project's queue order")
    p.set_defaults(handler=cmd_queue)

    p = sub.add_parser(
        "pretrain",
        parents=[db],
        help="objective-aligned (or MLM-only) continued pretraining: a project's aligned base "
        "(--project), or a checkpoint from corpus files (--task, --corpus, --out)",
    )
    p.add_argument(
        "--project",
        help="build this project's aligned base from its texts and weak sources (the Train "
        "page's job); it becomes the base of the project's next train",
    )
    p.add_argument("--task", choices=WEAK_TASKS)
    p.add_argument("--corpus", nargs="+", help="files `import` reads; labels unused")
    p.add_argument("--out", help="checkpoint directory (resumed if present)")
    p.add_argument("--objective", choices=["aligned", "mlm"], help="default aligned")
    p.add_argument(
        "--base", help="backbone id or path (default: the project's base model, else default)"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int)
    budget.add_argument(
        "--max-minutes",
        type=float,
        default=defaults.PRETRAIN_MINUTES,
        help=f"wall-clock budget (default {defaults.PRETRAIN_MINUTES:g})",
    )
    p.set_defaults(handler=cmd_pretrain)


def _print_metrics(metrics: dict | None, n_labels: int) -> None:
    """A version's F1 in percent, each figure beside the held-out texts and spans behind it."""
    from core.metrics import headline, percent

    metrics = metrics or {}
    dev, cv = metrics.get("dev"), metrics.get("cv")
    if dev:
        small = " (too few to trust alone)" if cv else ""
        print(f"  dev slice: {dev['documents']} held-out texts, {dev['support']} spans{small}")
        rows = [
            {
                "label": label,
                "P (%)": percent(m["p"]),
                "R (%)": percent(m["r"]),
                "F1 (%)": percent(m["f1"]),
                "spans": m["support"],
            }
            for label, m in dev["per_label"].items()
        ]
        print("\n".join("    " + line for line in table(rows, left=["label"]).splitlines()))
        print(f"    micro F1 {percent(dev['f1_micro'])} %   macro F1 {percent(dev['f1_macro'])} %")
    if cv:
        print(
            f"  {cv['folds']}-fold cross-validation: {cv['texts']} held-out texts, "
            f"{cv['spans']} spans, mean ± sd over folds"
        )
        rows = [
            {
                "label": label,
                "F1 (%)": "no spans" if m["mean"] is None else percent(m["mean"], m["sd"]),
                "spans": m["support"],
            }
            for label, m in cv["per_label"].items()
        ]
        print("\n".join("    " + line for line in table(rows, left=["label"]).splitlines()))
        print(f"    micro F1 {percent(cv['f1_micro']['mean'], cv['f1_micro']['sd'])} %")
    if not dev and not cv:
        print(f"  F1 {headline(metrics, n_labels)['note']}")


def _run_job_here(url: str, job_id: int):
    """Run a queued job in this process, its progress (from the job's row) on a bar; Ctrl-C
    asks the job to stop, as the Cancel button does, and waits for it to."""
    import threading

    from core.jobs.queue import get_job, request_cancel
    from core.jobs.worker import run_job
    from core.store.db import session_scope

    outcome: dict = {}

    def work() -> None:
        try:
            outcome["job"] = run_job(url, job_id)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"job-{job_id}", daemon=True)
    worker.start()
    with ProgressBar() as bar:
        while worker.is_alive():
            try:
                worker.join(0.5)
            except KeyboardInterrupt:
                with session_scope(url) as s:
                    request_cancel(s, job_id)
                print(f"\ncancelling job {job_id}...", file=sys.stderr)
                continue
            with session_scope(url) as s:
                job = get_job(s, job_id)
                bar(job.progress, job.message or job.status)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["job"]


def cmd_train(args, url: str) -> int:
    from core.jobs.queue import enqueue, start
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    params: dict = {"warm_start": args.warm_start}
    if args.cv is False:
        params["cv"] = False
    if args.base:
        params["base"] = args.base
    train_args = {"epochs": args.epochs} if args.epochs else {}
    if args.evidence is not None:
        train_args["evidence"] = args.evidence
    if train_args:
        params["train_args"] = train_args
    with session_scope(url) as session:
        project = get_project(session, args.project)
        job = enqueue(session, "train", project, {**params, "project_id": project.id})
        job_id = job.id
    if args.background:
        proc = start(url, job_id)
        if proc is None:
            print(f"job {job_id} queued for a `fewlabel worker` (local workers are off)")
        else:
            print(f"job {job_id} started in worker process {proc.pid}")
        return 0
    print(f"job {job_id}: training (this process is the worker)...", file=sys.stderr)
    job = _run_job_here(url, job_id)
    if job.status != "done":
        print(f"fewlabel: error: training {job.status}: {job.error}", file=sys.stderr)
        return 1
    r = job.result
    cv = (r["metrics"] or {}).get("cv")
    cv_time = f" (+ {cv['seconds']:.1f} s cross-validation)" if cv else ""
    print(
        f"version {r['version']} of {args.project}: {r['n_labels']} labeled documents, "
        f"{r['train_seconds']:.1f} s{cv_time}, saved to {r['path']}; "
        f"scored {r['scored']} unlabeled"
    )
    _print_metrics(r["metrics"], r["n_labels"])
    return 0


def cmd_predict(args, url: str) -> int:
    from core.io.predict_io import predict_file

    n = predict_file(
        args.model, args.input, args.output, fmt=args.format, batch_size=args.batch_size
    )
    print(f"tagged {n} documents -> {args.output}", file=sys.stderr)
    return 0


def cmd_queue(args, url: str) -> int:
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, require_schema, session_scope
    from core.store.versions import current_version, queue_preview

    # showing the queue only reads; rescoring it (--strategy) writes
    ensure_schema(url) if args.strategy else require_schema(url)
    if args.strategy:
        from core.active.scoring import score_pool

        strategy = get_strategy(args.strategy)
        with session_scope(url) as session:
            project = get_project(session, args.project)
            mv = current_version(session, project)
            if args.save:
                project.strategy = strategy.name
            pid, vid = project.id, mv.id if mv else None
        if vid is None and strategy.needs_model:
            raise FewlabelError("no model version yet: run `fewlabel train` first")
        if vid is not None:
            score_pool(url, pid, vid, strategy=strategy.name)
    with session_scope(url) as session:
        rows = queue_preview(session, get_project(session, args.project), args.n)
    if not rows:
        print("the queue is empty: every document is labeled or skipped")
        return 0
    shown = [
        {
            "id": r["id"],
            "score": "-" if r["score"] is None else f"{r['score']:.4f}",
            "text": r["text"] if len(r["text"]) <= 100 else r["text"][:97] + "...",
        }
        for r in rows
    ]
    print(table(shown, left=["text"]))
    return 0


def cmd_pretrain(args, url: str) -> int:
    ranks = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun (core.model.distributed)
    if args.project:
        if ranks > 1:
            raise FewlabelError(
                "pretrain --project runs as one of the project's jobs, not under torchrun; "
                "export the project's texts and pretrain them with --task, --corpus and --out"
            )
        return _pretrain_project(args, url)
    missing = [f"--{o}" for o in ("task", "corpus", "out") if not getattr(args, o)]
    if missing:
        raise FewlabelError(
            f"pretrain needs --project NAME, or --task, --corpus and --out (missing "
            f"{', '.join(missing)})"
        )
    from core.io.corpus import read_texts
    from core.jobs.training import pretrain_args
    from core.model.pretrain import pretrain
    from core.weak import plain_corpus

    texts, anchors = plain_corpus(
        (r.text, r.tokens) for path in args.corpus for r in read_texts(path) if r.text.strip()
    )
    if anchors:
        print(f"{len(anchors)} texts with link anchors (markup stripped)", file=sys.stderr)
    budget = pretrain_args(
        args.objective or "aligned",
        args.base or "default",
        steps=args.steps,
        minutes=args.max_minutes,
    )
    with ProgressBar() as bar:
        out = pretrain(
            texts,
            anchors=anchors,
            task=args.task,
            out_dir=args.out,
            args=budget,
            corpus_names=[str(p) for p in args.corpus],
            progress=bar,
        )
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint written to {out}")
    return 0


def _pretrain_project(args, url: str) -> int:
    """`pretrain --project`: the project's pretrain job (core.jobs.training.run_pretrain_job), run
    here as `train` runs its job; the checkpoint becomes the project's base."""
    from core.jobs.queue import enqueue
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, session_scope

    corpus_mode = [f"--{o}" for o in ("task", "corpus", "out") if getattr(args, o)]
    if corpus_mode or args.objective == "mlm":
        given = ", ".join(corpus_mode + (["--objective mlm"] if args.objective == "mlm" else []))
        raise FewlabelError(
            f"--project builds the project's aligned base from its own texts and labels; "
            f"{given}: only without --project (pretraining from corpus files)"
        )
    ensure_schema(url)
    params: dict = {"steps": args.steps} if args.steps else {"max_minutes": args.max_minutes}
    if args.base:
        params["base"] = args.base
    with session_scope(url) as session:
        project = get_project(session, args.project)
        job = enqueue(session, "pretrain", project, {**params, "project_id": project.id})
        job_id, name = job.id, project.name
    print(
        f"job {job_id}: building the aligned base of {name} (this process is the worker)...",
        file=sys.stderr,
    )
    job = _run_job_here(url, job_id)
    if job.status != "done":
        print(f"fewlabel: error: pretraining {job.status}: {job.error}", file=sys.stderr)
        return 1
    r = job.result
    print(f"checkpoint {r['checkpoint']}: from {r['texts']} texts; the base of {name}'s next train")
    for source, info in r["weak_sources"].items():
        print(f"  weak source {source}: {_describe(info)}")
    for note in r["notes"]:
        print(f"note: {note}")
    return 0


def _describe(info: dict) -> str:
    """A weak source's description (core.weak.sources' describe()) on one line."""
    parts = []
    for key, value in info.items():
        if isinstance(value, dict):
            value = "(" + ", ".join(f"{k} {v}" for k, v in value.items()) + ")"
        parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)
