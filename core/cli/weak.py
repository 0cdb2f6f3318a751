"""The `weak` commands: a project's patterns files (add, list, remove), and how good each weak
source is (eval: a project's sources on its labeled texts, or a task's labeler on a file)."""

from __future__ import annotations

import argparse

from core.cli.common import WEAK_TASKS
from core.errors import FewlabelError


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "weak", help="weak sources: a project's patterns files, and how good each source is"
    )
    actions = p.add_subparsers(dest="weak_command", required=True, metavar="ACTION")
    _add_patterns_commands(actions, db)
    _add_eval_command(actions, db)


def _add_patterns_commands(actions: argparse._SubParsersAction, db: argparse.ArgumentParser):
    """weak add, weak list, weak remove: the patterns files stored with a project."""
    p = actions.add_parser(
        "add", parents=[db], help="store a patterns file (Prodigy-style JSONL) with a project"
    )
    p.add_argument("project")
    p.add_argument(
        "--patterns",
        required=True,
        metavar="FILE",
        help='one {"label", "pattern"} or {"label", "regex"} object a line (core/weak/patterns.py);'
        " a file of the same name replaces the stored one",
    )
    p.set_defaults(handler=cmd_weak_add)
    p = actions.add_parser("list", parents=[db], help="a project's stored patterns files")
    p.add_argument("project")
    p.set_defaults(handler=cmd_weak_list)
    p = actions.add_parser("remove", parents=[db], help="remove a stored patterns file")
    p.add_argument("project")
    p.add_argument("name", help="the file's name, as `weak list` shows it")
    p.set_defaults(handler=cmd_weak_remove)


def _add_eval_command(actions: argparse._SubParsersAction, db: argparse.ArgumentParser):
    """weak eval: a project's sources, or with --task a task's labeler on a labeled file."""
    p = actions.add_parser(
        "eval",
        parents=[db],
        help="each weak source's precision, recall and coverage on a project's labeled texts; "
        "with --task, a task's weak labeler against a labeled file",
    )
    p.add_argument(
        "target",
        metavar="PROJECT|FILE",
        help="a project, or with --task a labeled SciAD JSON, CoNLL or JSONL file",
    )
    p.add_argument("--task", choices=WEAK_TASKS, help="score this task's labeler on FILE")
    p.add_argument(
        "--labeler", default=None, help="one labeler by name (default: the task's combination)"
    )
    p.add_argument("--fit", help="a file of texts to fit the keyphrase statistics on (concept)")
    p.add_argument("--format", default="auto")
    p.set_defaults(handler=cmd_weak_eval)


def cmd_weak_add(args, url: str) -> int:
    from collections import Counter

    from core.io.corpus import existing_file
    from core.labeling.projects import get_project
    from core.labeling.weak_sources import add_patterns
    from core.store.db import ensure_schema, session_scope
    from core.weak.patterns import parse_patterns

    path = existing_file(args.patterns)
    data = path.read_bytes()
    ensure_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        n = add_patterns(session, project, path.name, data)  # refuses a bad file whole
        labels, name = list(project.labels), project.name
    lines = data.decode("utf-8-sig").splitlines()
    counts = Counter(p.label for p in parse_patterns(lines, path.name, labels))
    per_label = ", ".join(f"{label} {counts[label]}" for label in labels)
    print(f"stored {n} patterns from {path.name} with project {name}: {per_label}")
    return 0


def cmd_weak_list(args, url: str) -> int:
    from core.cli.common import table
    from core.labeling.projects import get_project
    from core.labeling.weak_sources import list_patterns
    from core.store.db import require_schema, session_scope

    require_schema(url)  # a listing never writes, not even a schema upgrade
    with session_scope(url) as session:
        project = get_project(session, args.project)
        rows, name = list_patterns(session, project), project.name
    if not rows:
        print(f"project {name} has no patterns files; add one with `fewlabel weak add`")
        return 0
    shown = [{**r, "added": f"{r['added']:%Y-%m-%d %H:%M}"} for r in rows]
    print(table(shown, left=["name"]))
    return 0


def cmd_weak_remove(args, url: str) -> int:
    from core.labeling.projects import get_project
    from core.labeling.weak_sources import remove_patterns
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        remove_patterns(session, project, args.name)
        print(f"removed {args.name} from project {project.name}")
    return 0


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"  # NaN: nothing to divide by


def _weak_eval_project(args, url: str) -> int:
    """`weak eval PROJECT`: every weak source of a project, scored on its labeled texts."""
    from pathlib import Path

    from core.cli.common import table
    from core.errors import NotFoundError
    from core.jobs.training import project_records
    from core.labeling.projects import get_project
    from core.labeling.weak_sources import evaluate_sources
    from core.store.db import ensure_schema, session_scope

    file_options = [f"--{o}" for o in ("labeler", "fit") if getattr(args, o)]
    file_options += ["--format"] if args.format != "auto" else []
    if file_options:
        raise FewlabelError(f"{', '.join(file_options)}: only with --task and a labeled file")
    ensure_schema(url)
    with session_scope(url) as session:
        try:
            project = get_project(session, args.target)
        except NotFoundError:
            if Path(args.target).is_file():
                raise FewlabelError(
                    f"{args.target} is a file: give --task to score a task's labeler on it"
                ) from None
            raise
        texts = [text for text, _ in project_records(session, project)]
        report = evaluate_sources(session, project, texts=texts)
        name = project.name
    print(
        f"project {name}: weak sources on its {report['labeled']} labeled texts "
        "(dictionary and patterns built without the text they are scored on)"
    )
    rows = [
        {
            "source": source,
            "P": _percent(m["p"]),
            "R": _percent(m["r"]),
            "F1": _percent(m["f1"]),
            "coverage": _percent(m["coverage"]),
            "texts": m["texts"],
            "spans": m["spans"],
        }
        for source, m in report["sources"].items()
    ]
    if rows:
        print(table(rows, left=["source"]))
    for note in report["notes"]:
        print(f"note: {note}")
    return 0


def cmd_weak_eval(args, url: str) -> int:
    if args.task is None:
        return _weak_eval_project(args, url)
    from core.bench.weak_eval import evaluate_labeler, format_report
    from core.io.corpus import read_texts
    from core.tasks import get_task

    options = {}
    if args.fit:
        options["corpus"] = [r.text for r in read_texts(args.fit)]
    if args.labeler:
        factories = get_task(args.task).labelers
        if args.labeler not in factories:
            raise FewlabelError(
                f"no {args.task} labeler {args.labeler!r}; choose one of {', '.join(factories)}"
            )
        labeler = factories[args.labeler](**options)
    else:
        labeler = get_task(args.task).weak_labeler(**options)
    result = evaluate_labeler(args.task, args.target, args.format, labeler)
    print(format_report(result))
    return 0
