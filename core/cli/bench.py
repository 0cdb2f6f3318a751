"""Commands that measure: weak eval, eval, bench fewshot, bench active."""

from __future__ import annotations

import argparse
import sys

from core import defaults
from core.active import STRATEGIES
from core.cli.common import EVIDENCE, WEAK_TASKS, ints, names
from core.errors import FewlabelError


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser("weak", help="weak labelers: score one against a labeled file")
    actions = p.add_subparsers(dest="weak_command", required=True, metavar="ACTION")
    p = actions.add_parser("eval", help="precision/recall/F1 of a task's weak labeler")
    p.add_argument("file", help="a labeled SciAD JSON, CoNLL or JSONL file")
    p.add_argument("--task", required=True, choices=WEAK_TASKS)
    p.add_argument(
        "--labeler", default=None, help="one labeler by name (default: the task's combination)"
    )
    p.add_argument("--fit", help="a file of texts to fit the keyphrase statistics on (concept)")
    p.add_argument("--format", default="auto")
    p.set_defaults(handler=cmd_weak_eval)

    p = sub.add_parser("eval", help="span P/R/F1 of a predictions file against a gold file")
    p.add_argument("--task", required=True, choices=WEAK_TASKS)
    p.add_argument("--gold", required=True)
    p.add_argument("--pred", required=True)
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("bench", help="benchmarks: few-example learning, active learning, speed")
    benches = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    # what both benchmarks read: the task, its files, and how every model is finetuned
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", required=True, choices=WEAK_TASKS)
    common.add_argument("--train", required=True)
    common.add_argument("--test", required=True)
    common.add_argument("--epochs", type=int, help=f"maximum epochs (default {defaults.EPOCHS})")
    common.add_argument("--evidence", action=argparse.BooleanOptionalAction, help=EVIDENCE)
    common.add_argument("--json", required=True)
    common.add_argument("--plot")

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
    p.set_defaults(handler=cmd_bench_fewshot)

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


def cmd_weak_eval(args, url: str) -> int:
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


def _options(args, *names: str) -> dict:
    """The parsed options `names` as keyword arguments, with what both benchmarks read."""
    return dict(
        task=args.task,
        train_path=args.train,
        test_path=args.test,
        epochs=args.epochs,
        evidence=args.evidence,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        **{name: getattr(args, name) for name in names},
    )


def _report(args, records: list[dict], table: str, *, x: str, group: str, title: str) -> int:
    """Write the records, print the table, draw the plot when asked."""
    from core import bench

    bench.write_json(records, args.json)
    print(table)
    if args.plot:
        bench.plot(records, args.plot, x=x, group=group, title=f"{args.task}: {title}")
    return 0


def cmd_bench_fewshot(args, url: str) -> int:
    from core import bench

    options = _options(
        args, "seeds", "rule", "backbone", "pretrain_minutes", "pretrain_steps", "work_dir"
    )
    records = bench.fewshot(ns=ints(args.n), bases=names(args.bases), **options)
    table = bench.fewshot_table(records)
    return _report(args, records, table, x="n", group="base", title="few-example")


def cmd_bench_active(args, url: str) -> int:
    from core import bench

    options = _options(args, "seed_size", "step", "budget", "base", "seed", "seeds", "diversity")
    records = bench.active(strategies=names(args.strategies), **options)
    table = bench.active_table(records)
    return _report(args, records, table, x="labels", group="strategy", title="active")
