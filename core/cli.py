"""The `fewlabel` command: everything the UI does, from a shell.

Errors a user can cause exit non-zero with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from core.config import PROJECT_ROOT, get_settings
from core.errors import FewlabelError

_EVIDENCE = (
    "give the model the weak labeler's tag of every word as input, or not; default: yes for "
    "acronyms (the rule's tags), no for concepts (TF-IDF keyphrases: a point either way)"
)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL or SQLite file (default: $FEWLABEL_DB or ./fewlabel.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fewlabel", description="Active-learning span labeling with Few Example Learning."
    )
    _add_db(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create or upgrade the database schema")
    _add_db(p)
    p.add_argument("--demo", action="store_true", help="also load the demo project if empty")

    proj = sub.add_parser("project", help="create and list projects")
    _add_db(proj)
    psub = proj.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    pc = psub.add_parser("create", help="create a project")
    _add_db(pc)
    pc.add_argument("name")
    pc.add_argument("--task", required=True, choices=["acronym", "concept", "custom"])
    pc.add_argument("--labels", help="comma-separated labels (custom task)")
    pl = psub.add_parser("list", help="list projects with progress")
    _add_db(pl)

    pi = sub.add_parser("import", help="import a file of texts (and labels) into a project")
    _add_db(pi)
    pi.add_argument("project")
    pi.add_argument("file")
    pi.add_argument(
        "--format", default="auto", choices=["auto", "csv", "txt", "jsonl", "conll", "sciad"]
    )
    pi.add_argument("--annotator", default="import", help="name for imported labels")
    pi.add_argument("--text-column", help="CSV column holding the text (default: text)")
    pi.add_argument("--txt-mode", default="auto", choices=["auto", "lines", "paragraphs"])
    pi.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip records with invalid spans (listed by line) instead of aborting",
    )

    pe = sub.add_parser("export", help="export a project's labels")
    _add_db(pe)
    pe.add_argument("project")
    pe.add_argument("-o", "--output", required=True, help="output file ('-' for stdout)")
    pe.add_argument("--format", default="csv", choices=["csv", "jsonl", "conll"])
    pe.add_argument("--annotator", help="only this annotator's labels")
    pe.add_argument("--all", action="store_true", help="include documents not labeled yet")

    ps = sub.add_parser("serve", help="run the annotation UI")
    _add_db(ps)
    ps.add_argument("--port", type=int, default=8501)
    ps.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 serves a whole network)"
    )
    ps.add_argument("--no-demo", action="store_true", help="do not create the demo project")
    pt = sub.add_parser("train", help="finetune a model version on a project's labels")
    _add_db(pt)
    pt.add_argument("project")
    pt.add_argument("--base", help="backbone: default, a Hugging Face id, or a local path")
    pt.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    pt.add_argument("--warm-start", action="store_true", help="start from the current version")
    pt.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=_EVIDENCE)
    pt.add_argument(
        "--background", action="store_true", help="start a worker process and return at once"
    )

    pp = sub.add_parser("predict", help="tag a file with a saved model version")
    pp.add_argument("--model", required=True, help="a model version directory")
    pp.add_argument("--input", required=True, help="SciAD JSON, CoNLL, JSONL or TXT")
    pp.add_argument(
        "--output",
        required=True,
        help="its suffix picks the format: .jsonl, .csv, .conll, .json (SciAD), .txt (tagged "
        "text); another suffix gets the input's format",
    )
    pp.add_argument(
        "--format", default="auto", choices=["auto", "csv", "txt", "jsonl", "conll", "sciad"]
    )
    pp.add_argument("--batch-size", type=int, default=32)

    pq = sub.add_parser("queue", help="show the next texts to label, with their scores")
    _add_db(pq)
    pq.add_argument("project")
    pq.add_argument("--n", type=int, default=10)
    pq.add_argument(
        "--strategy",
        help="rescore the pool with this strategy (random, least_confidence, margin, entropy, "
        "bald) using the current model",
    )
    pq.add_argument("--save", action="store_true", help="make --strategy the project's queue order")

    pw = sub.add_parser("weak", help="weak labelers: score one against a labeled file")
    wsub = pw.add_subparsers(dest="weak_command", required=True, metavar="ACTION")
    we = wsub.add_parser("eval", help="precision/recall/F1 of a task's weak labeler")
    we.add_argument("file", help="a labeled SciAD JSON, CoNLL or JSONL file")
    we.add_argument("--task", required=True, choices=["acronym", "concept"])
    we.add_argument(
        "--labeler", default=None, help="one labeler by name (default: the task's combination)"
    )
    we.add_argument("--fit", help="a file of texts to fit the keyphrase statistics on (concept)")
    we.add_argument("--format", default="auto")

    pv = sub.add_parser("eval", help="span P/R/F1 of a predictions file against a gold file")
    pv.add_argument("--task", required=True, choices=["acronym", "concept"])
    pv.add_argument("--gold", required=True)
    pv.add_argument("--pred", required=True)

    pr = sub.add_parser("pretrain", help="objective-aligned (or MLM-only) continued pretraining")
    pr.add_argument("--task", required=True, choices=["acronym", "concept"])
    pr.add_argument(
        "--corpus", required=True, nargs="+", help="files `import` reads; labels unused"
    )
    pr.add_argument("--out", required=True, help="checkpoint directory (resumed if present)")
    pr.add_argument("--objective", default="aligned", choices=["aligned", "mlm"])
    pr.add_argument("--base", default="default", help="backbone id or path")
    budget = pr.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int)
    budget.add_argument("--max-minutes", type=float)

    pb = sub.add_parser("bench", help="benchmarks: few-example learning, active learning, speed")
    bsub = pb.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    bf = bsub.add_parser("fewshot", help="F1 against N labeled documents, per base")
    bf.add_argument("--task", required=True, choices=["acronym", "concept"])
    bf.add_argument("--train", required=True)
    bf.add_argument("--test", required=True)
    bf.add_argument("--n", default="50,100,200,400")
    bf.add_argument("--seeds", type=int, default=3)
    bf.add_argument("--bases", default="base,mlm,aligned")
    bf.add_argument("--rule", action="store_true", help="add the weak labeler alone")
    bf.add_argument("--backbone", default="default", help="what `base` means")
    bf.add_argument("--epochs", type=int)
    bf.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=_EVIDENCE)
    bf.add_argument("--pretrain-minutes", type=float, default=15.0)
    bf.add_argument("--pretrain-steps", type=int, help="instead of minutes (quick runs, tests)")
    bf.add_argument("--work-dir", default="bench_out", help="where on-the-fly bases are kept")
    bf.add_argument("--json", required=True)
    bf.add_argument("--plot")
    ba = bsub.add_parser("active", help="simulated annotation: strategies against random")
    ba.add_argument("--task", required=True, choices=["acronym", "concept"])
    ba.add_argument("--train", required=True)
    ba.add_argument("--test", required=True)
    ba.add_argument("--strategies", default="random,least_confidence,entropy")
    ba.add_argument("--seed-size", type=int, default=20)
    ba.add_argument("--step", type=int, default=20)
    ba.add_argument("--budget", type=int, default=200)
    ba.add_argument("--base", default="default")
    ba.add_argument("--seed", type=int, default=0, help="first seed")
    ba.add_argument("--seeds", type=int, default=1, help="runs from seed, seed+1, ...; F1 averaged")
    ba.add_argument("--epochs", type=int)
    ba.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=_EVIDENCE)
    ba.add_argument("--diversity", action="store_true", help="no near-duplicates in a round")
    ba.add_argument("--json", required=True)
    ba.add_argument("--plot")

    pj = sub.add_parser("jobs", help="list a project's background jobs, or cancel one")
    _add_db(pj)
    pj.add_argument("project")
    pj.add_argument("--cancel", type=int, metavar="JOB_ID")
    return parser


def _print_metrics(metrics: dict | None) -> None:
    dev = (metrics or {}).get("dev")
    if not dev:
        print("  dev metrics: none (fewer labels than the held-out slice needs)")
        return
    print(f"  {'label':<12} {'P':>6} {'R':>6} {'F1':>6} {'n':>5}")
    for label, m in dev["per_label"].items():
        print(f"  {label:<12} {m['p']:6.3f} {m['r']:6.3f} {m['f1']:6.3f} {m['support']:>5}")
    print(f"  macro F1 {dev['f1_macro']:.3f}   micro F1 {dev['f1_micro']:.3f}")


def cmd_train(args, url: str) -> int:
    from core.db import ensure_schema, session_scope
    from core.jobs import enqueue, run_job, spawn_worker
    from core.projects import get_project

    ensure_schema(url)
    params: dict = {"warm_start": args.warm_start}
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
        proc = spawn_worker(url, job_id)
        print(f"job {job_id} started in worker process {proc.pid}")
        return 0
    print(f"job {job_id}: training (this process is the worker)...", file=sys.stderr)
    job = run_job(url, job_id)
    if job.status != "done":
        print(f"fewlabel: error: training {job.status}: {job.error}", file=sys.stderr)
        return 1
    r = job.result
    print(
        f"version {r['version']} of {args.project}: {r['n_labels']} labeled documents, "
        f"{r['train_seconds']:.1f} s, saved to {r['path']}; scored {r['scored']} unlabeled"
    )
    _print_metrics(r["metrics"])
    return 0


def cmd_predict(args, url: str) -> int:
    from core.predict_io import predict_file

    n = predict_file(
        args.model, args.input, args.output, fmt=args.format, batch_size=args.batch_size
    )
    print(f"tagged {n} documents -> {args.output}", file=sys.stderr)
    return 0


def cmd_queue(args, url: str) -> int:
    from core.db import ensure_schema, session_scope
    from core.projects import get_project
    from core.training import current_version, queue_preview, score_pool

    ensure_schema(url)
    if args.strategy:
        from core.active import STRATEGIES

        if args.strategy not in STRATEGIES:
            raise FewlabelError(
                f"unknown strategy {args.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        with session_scope(url) as session:
            project = get_project(session, args.project)
            mv = current_version(session, project)
            if args.save:
                project.strategy = args.strategy
            pid, vid = project.id, mv.id if mv else None
        if vid is None and args.strategy != "random":
            raise FewlabelError("no model version yet: run `fewlabel train` first")
        if vid is not None:
            score_pool(url, pid, vid, strategy=args.strategy)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        rows = queue_preview(session, project, args.n)
    if not rows:
        print("the queue is empty: every document is labeled or skipped")
    for r in rows:
        score = "   -   " if r["score"] is None else f"{r['score']:.4f}"
        text = r["text"] if len(r["text"]) <= 100 else r["text"][:97] + "..."
        print(f"{r['id']:>7}  {score}  {text}")
    return 0


def cmd_jobs(args, url: str) -> int:
    from core.db import ensure_schema, session_scope
    from core.jobs import recent_jobs, request_cancel
    from core.projects import get_project

    ensure_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        if args.cancel:
            job = request_cancel(session, args.cancel)
            print(f"job {job.id}: {job.message}")
            return 0
        for job in recent_jobs(session, project, limit=20):
            print(
                f"{job.id:>5}  {job.kind:<8} {job.status:<9} {job.progress:6.1%}  "
                f"{job.created_at:%Y-%m-%d %H:%M}  {job.message}"
            )
    return 0


def cmd_weak(args, url: str) -> int:
    from core.corpus import read_texts
    from core.weak import LABELERS, weak_labeler
    from core.weak.evaluate import evaluate_labeler, format_report

    options = {}
    if args.fit:
        options["corpus"] = [r.text for r in read_texts(args.fit)]
    if args.labeler:
        factories = LABELERS[args.task]
        if args.labeler not in factories:
            raise FewlabelError(
                f"no {args.task} labeler {args.labeler!r}; choose one of {', '.join(factories)}"
            )
        labeler = factories[args.labeler](**options)
    else:
        labeler = weak_labeler(args.task, **options)
    result = evaluate_labeler(args.task, args.file, args.format, labeler)
    print(format_report(result))
    return 0


def _ints(value: str) -> list[int]:
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise FewlabelError(f"expected comma-separated integers, got {value!r}") from None


def cmd_bench(args, url: str) -> int:
    from core import bench

    common = dict(
        task=args.task,
        train_path=args.train,
        test_path=args.test,
        epochs=args.epochs,
        evidence=args.evidence,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    if args.bench_command == "fewshot":
        records = bench.fewshot(
            **common,
            ns=_ints(args.n),
            seeds=args.seeds,
            bases=[b.strip() for b in args.bases.split(",") if b.strip()],
            rule=args.rule,
            backbone=args.backbone,
            pretrain_minutes=args.pretrain_minutes,
            pretrain_steps=args.pretrain_steps,
            work_dir=args.work_dir,
        )
        table, x, group, title = bench.fewshot_table(records), "n", "base", "few-example"
    else:
        records = bench.active(
            **common,
            strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
            seed_size=args.seed_size,
            step=args.step,
            budget=args.budget,
            base=args.base,
            seed=args.seed,
            seeds=args.seeds,
            diversity=args.diversity,
        )
        table, x, group, title = bench.active_table(records), "labels", "strategy", "active"
    bench.write_json(records, args.json)
    print(table)
    if args.plot:
        bench.plot(records, args.plot, x=x, group=group, title=f"{args.task}: {title}")
    return 0


def cmd_eval(args, url: str) -> int:
    from core.bench import load_labeled, task_labels
    from core.metrics import span_prf
    from core.weak.evaluate import format_report

    gold, pred = load_labeled(args.gold, args.task), load_labeled(args.pred, args.task)
    if [d.text for d in gold] != [d.text for d in pred]:
        raise FewlabelError("the gold and predicted files do not hold the same texts in order")
    result = span_prf([d.spans for d in gold], [d.spans for d in pred], task_labels(args.task))
    result.update(labeler="predictions", path=args.pred, task=args.task, documents=len(gold))
    print(format_report(result))
    return 0


def cmd_pretrain(args, url: str) -> int:
    from core.corpus import read_texts
    from core.model.pretrain import PretrainArgs, pretrain
    from core.weak import plain_corpus

    texts, anchors = plain_corpus(
        (r.text, r.tokens) for path in args.corpus for r in read_texts(path) if r.text.strip()
    )
    if anchors:
        print(f"{len(anchors)} texts with link anchors (markup stripped)", file=sys.stderr)
    out = pretrain(
        texts,
        anchors=anchors,
        task=args.task,
        out_dir=args.out,
        args=PretrainArgs(
            objective=args.objective,
            base=args.base,
            steps=args.steps,
            max_minutes=args.max_minutes,
        ),
        corpus_names=[str(p) for p in args.corpus],
        progress=lambda f, m: print(f"\r[{f:6.1%}] {m[:90]:<90}", end="", file=sys.stderr),
    )
    print(file=sys.stderr)
    print(f"checkpoint written to {out}")
    return 0


def cmd_init(args, url: str) -> int:
    from core.db import upgrade
    from core.demo import ensure_demo

    upgrade(url)
    print(f"database ready: {url}")
    if args.demo:
        msg = ensure_demo(url)
        if msg:
            print(msg)
    return 0


def cmd_project(args, url: str) -> int:
    from core.db import ensure_schema, session_scope
    from core.projects import create_project, list_projects

    ensure_schema(url)
    with session_scope(url) as session:
        if args.project_command == "create":
            labels = args.labels.split(",") if args.labels else None
            p = create_project(session, args.name, args.task, labels)
            print(
                f"created project {p.name!r} (id {p.id}, task {p.task}, "
                f"labels {','.join(p.labels)})"
            )
            return 0
        rows = list_projects(session)
        if not rows:
            print("no projects yet; create one with `fewlabel project create NAME --task acronym`")
            return 0
        print(
            f"{'id':>4}  {'name':<24} {'task':<8} {'labels':<20} "
            f"{'docs':>7} {'done':>6} {'skip':>5}"
        )
        for r in rows:
            print(
                f"{r.id:>4}  {r.name:<24} {r.task:<8} {','.join(r.labels):<20} "
                f"{r.total:>7} {r.done:>6} {r.skipped:>5}"
            )
    return 0


def cmd_import(args, url: str) -> int:
    from core.corpus import import_file
    from core.db import ensure_schema, session_scope
    from core.projects import get_project

    ensure_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        report = import_file(
            session,
            project,
            args.file,
            fmt=args.format,
            annotator=args.annotator,
            text_column=args.text_column,
            txt_mode=args.txt_mode,
            skip_invalid=args.skip_invalid,
        )
    for item in report.skipped_invalid[:20]:
        print(f"skipped {args.file} {item}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_export(args, url: str) -> int:
    from core.corpus import export
    from core.db import ensure_schema, session_scope
    from core.projects import get_project

    ensure_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        kwargs = dict(annotator=args.annotator, include_unlabeled=args.all)
        if args.output == "-":
            n = export(session, project, sys.stdout, args.format, **kwargs)
        else:
            out = Path(args.output)
            # Write beside the target, then rename: a failed export never leaves half a file.
            fd, tmp = tempfile.mkstemp(dir=out.parent.resolve(), prefix=f".{out.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    n = export(session, project, fh, args.format, **kwargs)
                os.replace(tmp, out)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            print(f"exported {n} documents to {out} ({args.format})", file=sys.stderr)
    return 0


def cmd_serve(args, url: str) -> int:
    from core.demo import ensure_demo

    msg = ensure_demo(url) if not args.no_demo else None
    if msg:
        print(msg)
    env = {**os.environ, "FEWLABEL_DB": url}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "app" / "main.py"),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    print(f"fewlabel: serving on http://{args.host}:{args.port} (database {url})")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


COMMANDS = {
    "init": cmd_init,
    "project": cmd_project,
    "import": cmd_import,
    "export": cmd_export,
    "serve": cmd_serve,
    "train": cmd_train,
    "predict": cmd_predict,
    "queue": cmd_queue,
    "jobs": cmd_jobs,
    "weak": cmd_weak,
    "bench": cmd_bench,
    "pretrain": cmd_pretrain,
    "eval": cmd_eval,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = get_settings(getattr(args, "db", None)).db_url
    try:
        return COMMANDS[args.command](args, url)
    except FewlabelError as exc:
        print(f"fewlabel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fewlabel: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises no tracebacks
        if os.environ.get("FEWLABEL_DEBUG"):
            raise
        print(f"fewlabel: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
