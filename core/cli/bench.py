"""Commands that measure: eval (a predictions file against gold), bench fewshot, bench
active, bench session, bench speed, bench load. The `weak` commands are in core/cli/weak.py."""

from __future__ import annotations

import argparse
import sys

from core import defaults
from core.active.strategies import STRATEGIES
from core.cli.common import EVIDENCE, WEAK_TASKS, ints, names
from core.errors import FewlabelError

EPOCHS_HELP = defaults.EPOCHS_HELP


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", help="span P/R/F1 of a predictions file against a gold file")
    p.add_argument("--task", required=True, choices=WEAK_TASKS)
    p.add_argument("--gold", required=True)
    p.add_argument("--pred", required=True)
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("bench", help="benchmarks: few-example learning, active learning, speed")
    benches = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    common = _common_parent()
    _add_fewshot(benches, common)
    _add_active(benches, common)
    _add_session(benches, common, db)
    _add_speed(benches, db)
    _add_load(benches, db)


def _common_parent() -> argparse.ArgumentParser:
    """What both learning benchmarks read: the task, its files, and how every model is
    finetuned."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", required=True, choices=[*WEAK_TASKS, "custom"])
    common.add_argument(
        "--labels", help="a custom task's labels, comma-separated (default: the training file's)"
    )
    common.add_argument("--train", required=True)
    common.add_argument("--test", required=True)
    common.add_argument("--epochs", type=int, help=EPOCHS_HELP)
    common.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=EVIDENCE)
    common.add_argument("--json", required=True)
    common.add_argument("--plot")
    return common


def _add_fewshot(benches: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = benches.add_parser(
        "fewshot", parents=[common], help="F1 against N labeled documents, per base"
    )
    p.add_argument("--n", default="50,100,200,400")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--bases", default="base,mlm,aligned")
    p.add_argument("--rule", action="store_true", help="add the weak labeler alone")
    p.add_argument("--backbone", default="default", help="what `base` means")
    p.add_argument("--pretrain-minutes", type=float, default=defaults.PRETRAIN_MINUTES)
    p.add_argument("--pretrain-steps", type=int, help="instead of minutes (quick runs, tests)")
    p.add_argument("--work-dir", default="bench_out", help="where on-the-fly bases are kept")
    p.add_argument(
        "--patterns", help="a custom task's patterns file (JSONL), a weak source of every base"
    )
    p.add_argument(
        "--pool",
        nargs="+",
        default=[],
        help="files of unlabeled texts that join the aligned bases' pool (a project's other texts)",
    )
    p.set_defaults(handler=cmd_bench_fewshot)


def _add_active(benches: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = benches.add_parser(
        "active", parents=[common], help="simulated annotation: strategies against random"
    )
    p.add_argument(
        "--strategies",
        default="random,least_confidence,entropy",
        help=f"comma-separated, of {', '.join(STRATEGIES)}",
    )
    p.add_argument("--seed-size", type=int, default=20)
    p.add_argument("--step", type=int, default=20)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--base", default="default")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=int, default=1, help="runs from seed, seed+1, ...; F1 averaged")
    p.add_argument("--diversity", action="store_true", help="no near-duplicates in a round")
    p.set_defaults(handler=cmd_bench_active)


def _add_session(
    benches: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    db: argparse.ArgumentParser,
) -> None:
    p = benches.add_parser(
        "session",
        parents=[common, db],
        help="a simulated annotator's minutes in each mode (manual, correct, teach): F1 per budget",
    )
    p.add_argument("--minutes", default="15,30,60", help="simulated budgets, comma-separated")
    p.add_argument("--modes", default="manual,correct,teach")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--bases", default="base", help="base (the backbone) or model folders")
    p.add_argument("--backbone", default="default", help="what `base` means")
    p.add_argument("--patterns", help="a patterns file (JSONL): teach's suggestions before a model")
    costs = p.add_mutually_exclusive_group()
    costs.add_argument("--costs", help="JSON of the cost constants (default: the published ones)")
    costs.add_argument("--costs-from", help="a project whose recorded seconds fit the constants")
    p.add_argument("--retrain-minutes", type=float, default=5.0, help="retrain policy")
    p.add_argument("--pool-size", type=int, default=0, help="the training file's first N (0: all)")
    p.add_argument(
        "--sensitivity", action="store_true", help="rankings with each assisted constant x2, x0.5"
    )
    p.set_defaults(handler=cmd_bench_session)


def _add_speed(benches: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    data = "../shared/benchmarks/sciad"
    p = benches.add_parser(
        "speed",
        parents=[db],
        help="import rate, next-text latency, retrain and retrain-to-queue times, scoring rate",
    )
    p.add_argument("--docs", type=int, required=True, help="texts in the project's pool")
    p.add_argument("--json", required=True, help="where the one JSON object goes")
    p.add_argument("--corpus", default=f"{data}/unlabeled_train.txt", help="lines to cycle")
    p.add_argument(
        "--labeled", default=f"{data}/dev.json", help="SciAD JSON; its split's first --labels"
    )
    p.add_argument("--labels", type=int, default=200, help="labeled texts to retrain on")
    p.add_argument("--backbone", default="default", help="the project's base model")
    p.add_argument("--epochs", type=int, help=EPOCHS_HELP)
    p.add_argument("--next-samples", type=int, default=200)
    p.add_argument("--score-sample", type=int, default=2000, help="texts per engine")
    p.add_argument("--work-dir", help="where the SQLite file and logs go (default: a temp dir)")
    p.set_defaults(handler=cmd_bench_speed)


def _add_load(benches: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = benches.add_parser(
        "load",
        parents=[db],
        help="concurrent annotators saving while a long import runs: throughput, save "
        "latency, and no double claim, lost save or error",
    )
    p.add_argument("--annotators", type=int, required=True, help="annotator processes")
    p.add_argument("--seconds", type=float, required=True, help="how long they label")
    p.add_argument(
        "--import-lines", type=int, required=True, help="lines of the text file imported meanwhile"
    )
    p.add_argument("--json", required=True, help="where the one JSON object goes")
    p.add_argument("--work-dir", help="where the SQLite file and texts go (default: a temp dir)")
    p.set_defaults(handler=cmd_bench_load)


def cmd_eval(args, url: str) -> int:
    from core.bench import load_labeled, task_labels
    from core.bench.weak_eval import format_report
    from core.metrics import span_prf

    gold, pred = load_labeled(args.gold, args.task), load_labeled(args.pred, args.task)
    if [d.text for d in gold] != [d.text for d in pred]:
        raise FewlabelError("the gold and predicted files do not hold the same texts in order")
    result = span_prf([d.spans for d in gold], [d.spans for d in pred], task_labels(args.task))
    result.update(labeler="predictions", path=args.pred, task=args.task, documents=len(gold))
    print(format_report(result))
    return 0


def _options(args, *fields: str) -> dict:
    """The parsed options `fields` as keyword arguments, with what both benchmarks read."""
    return dict(
        task=args.task,
        train_path=args.train,
        test_path=args.test,
        epochs=args.epochs,
        evidence=args.evidence,
        labels=names(args.labels) if args.labels else None,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        **{field: getattr(args, field) for field in fields},
    )


def _report(args, records: list[dict], table: str, *, x: str, group: str, title: str) -> int:
    """Write the records, print the table, draw the plot when asked."""
    from core import bench

    bench.write_json(records, args.json)
    print(table)
    if args.plot:
        key = bench.metric_key(args.task)
        bench.plot(records, args.plot, x=x, group=group, title=f"{args.task}: {title}", key=key)
    return 0


def cmd_bench_fewshot(args, url: str) -> int:
    from core import bench

    options = _options(
        args,
        *("seeds", "rule", "backbone", "pretrain_minutes", "pretrain_steps", "work_dir"),
        *("patterns", "pool"),
    )
    records = bench.fewshot(ns=ints(args.n), bases=names(args.bases), **options)
    table = bench.fewshot_table(records, bench.metric_key(args.task))
    return _report(args, records, table, x="n", group="base", title="few-example")


def cmd_bench_active(args, url: str) -> int:
    from core import bench

    options = _options(args, "seed_size", "step", "budget", "base", "seed", "seeds", "diversity")
    records = bench.active(strategies=names(args.strategies), **options)
    table = bench.active_table(records, bench.metric_key(args.task))
    return _report(args, records, table, x="labels", group="strategy", title="active")


def _session_costs(args, url: str):
    from core.bench import costs

    if args.costs:
        return costs.read_costs(args.costs)
    if args.costs_from:
        return costs.fit_project(url, args.costs_from)
    return costs.published()


def cmd_bench_session(args, url: str) -> int:
    import json

    from core import bench
    from core.bench.session import session_bench, session_table

    try:
        minutes = [float(m) for m in names(args.minutes)]
    except ValueError:
        raise FewlabelError(f"--minutes: numbers, comma-separated, not {args.minutes!r}") from None
    options = _options(args, "seed", "seeds", "patterns", "backbone", "retrain_minutes")
    result = session_bench(
        minutes=minutes,
        modes=names(args.modes),
        bases=names(args.bases),
        costs=_session_costs(args, url),
        pool_size=args.pool_size,
        sensitivity=args.sensitivity,
        **options,
    )
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    key = bench.metric_key(args.task)
    print(session_table(result, key))
    if args.plot:
        title = f"{args.task}: F1 per simulated annotator minutes"
        records = [{**r, "group": f"{r['mode']} {r['base']}"} for r in result["records"]]
        bench.plot(records, args.plot, x="minutes", group="group", title=title, key=key)
    return 0


def cmd_bench_speed(args, url: str) -> int:
    import json

    from core.bench.speed import speed, speed_table

    record = speed(
        docs=args.docs,
        corpus=args.corpus,
        labeled=args.labeled,
        n_labels=args.labels,
        backbone=args.backbone,
        url=url if getattr(args, "db", None) else None,
        work_dir=args.work_dir,
        epochs=args.epochs,
        next_samples=args.next_samples,
        score_sample=args.score_sample,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    print(speed_table(record))
    return 0


def cmd_bench_load(args, url: str) -> int:
    import json

    from core.bench.load import load, load_table

    record = load(
        annotators=args.annotators,
        seconds=args.seconds,
        import_lines=args.import_lines,
        url=url if getattr(args, "db", None) else None,
        work_dir=args.work_dir,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    print(load_table(record))
    ok = record["errors"] == record["double_claims"] == record["lost_saves"] == 0
    return 0 if ok else 1
