"""Commands over the database: init, project, import, export, jobs, serve."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli.common import READ_FORMATS, WRITE_FORMATS, table
from core.defaults import MAX_TEXT_CHARS
from core.io import formats
from core.tasks import TASKS


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", parents=[db], help="create or upgrade the database schema")
    p.add_argument("--demo", action="store_true", help="also load the demo project if empty")
    p.set_defaults(handler=cmd_init)
    _add_project(sub, db)
    p = sub.add_parser(
        "agreement", parents=[db], help="span F1 between annotators, per pair, label and window"
    )
    p.add_argument("project")
    p.add_argument("--by", default="texts", choices=["texts", "week"], help="windows over time")
    p.add_argument("--window", type=int, default=50, metavar="N", help="texts per window")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(handler=cmd_agreement)
    _add_import(sub, db)
    p = sub.add_parser("export", parents=[db], help="export a project's labels")
    p.add_argument("project")
    p.add_argument("-o", "--output", required=True, help="output file ('-' for stdout)")
    p.add_argument("--format", default="csv", choices=WRITE_FORMATS)
    p.add_argument("--annotator", help="only this annotator's own labels (final versions left out)")
    p.add_argument("--all", action="store_true", help="include documents not labeled yet")
    p.set_defaults(handler=cmd_export)
    p = sub.add_parser("serve", parents=[db], help="run the annotation UI")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 serves a whole network)"
    )
    p.add_argument("--no-demo", action="store_true", help="do not create the demo project")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve beyond 127.0.0.1 without an admin account (anyone who reaches it can act)",
    )
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("jobs", parents=[db], help="list a project's background jobs, or cancel one")
    p.add_argument("project")
    p.add_argument("--cancel", type=int, metavar="JOB_ID")
    p.set_defaults(handler=cmd_jobs)


def _add_project(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """project create, project list, project overlap."""
    proj = sub.add_parser("project", parents=[db], help="create and list projects")
    actions = proj.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    p = actions.add_parser("create", parents=[db], help="create a project")
    p.add_argument("name")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--labels", help="comma-separated labels (custom task)")
    p.set_defaults(handler=cmd_project_create)
    p = actions.add_parser("list", parents=[db], help="list projects with progress")
    p.set_defaults(handler=cmd_project_list)
    p = actions.add_parser(
        "overlap", parents=[db], help="how many annotators label each text (agreement)"
    )
    p.add_argument("name")
    p.add_argument(
        "--annotators",
        type=int,
        default=None,
        help="distinct annotators per shared text (1: one annotator per text, no overlap)",
    )
    p.add_argument(
        "--share",
        type=float,
        default=None,
        help="share of texts, 0 to 1 (default: as set, or every text); alone: 2 annotators",
    )
    p.set_defaults(handler=cmd_project_overlap)


def _add_import(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import", parents=[db], help="import a file of texts (and labels) into a project"
    )
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--format", default="auto", choices=READ_FORMATS)
    p.add_argument("--annotator", default="import", help="name for imported labels")
    p.add_argument(
        "--no-labels",
        action="store_true",
        help="import only the texts of a labeled file (its labels are not read); they are "
        "open in the queue",
    )
    p.add_argument("--text-column", help="CSV column holding the text (default: text)")
    p.add_argument("--txt-mode", default="auto", choices=["auto", "lines", "paragraphs"])
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip records with invalid spans (listed by line) instead of aborting",
    )
    p.add_argument(
        "--max-chars",
        type=_count,
        default=MAX_TEXT_CHARS,
        metavar="N",
        help=f"refuse a file holding a text longer than N characters (default {MAX_TEXT_CHARS:,}"
        "; 0: no limit)",
    )
    p.set_defaults(handler=cmd_import)


def _count(value: str) -> int:
    """A whole number, zero or more (an argparse type)."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, not {value!r}")
    return int(value)


def cmd_init(args, url: str) -> int:
    from core.demo import ensure_demo
    from core.store.db import display_url, upgrade

    # an existing SQLite file is copied first (core.store.db.snapshot_before_migration)
    upgrade(url)
    print(f"database ready: {display_url(url)}")
    if args.demo:
        msg = ensure_demo(url)
        if msg:
            print(msg)
    return 0


def cmd_project_create(args, url: str) -> int:
    from core.labeling.projects import create_project
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        labels = args.labels.split(",") if args.labels else None
        p = create_project(session, args.name, args.task, labels)
        print(f"created project {p.name!r} (id {p.id}, task {p.task}, labels {','.join(p.labels)})")
    return 0


def cmd_project_list(args, url: str) -> int:
    from core.labeling.projects import list_projects
    from core.store.db import require_schema, session_scope

    require_schema(url)  # a listing never writes, not even a schema upgrade
    with session_scope(url) as session:
        rows = list_projects(session)
    if not rows:
        print("no projects yet; create one with `fewlabel project create NAME --task acronym`")
        return 0
    columns = {"id": "id", "name": "name", "task": "task", "labels": "labels"}
    columns |= {"docs": "total", "done": "done", "skip": "skipped"}
    print(
        table(
            [
                {
                    head: ",".join(r.labels) if attr == "labels" else getattr(r, attr)
                    for head, attr in columns.items()
                }
                for r in rows
            ],
            left=["name", "task", "labels"],
        )
    )
    return 0


def cmd_project_overlap(args, url: str) -> int:
    from core.labeling.overlap import overlap_of, set_overlap, shared_texts
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, require_schema, session_scope

    changing = args.annotators is not None or args.share is not None
    ensure_schema(url) if changing else require_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.name)
        overlap = overlap_of(project)
        if changing:
            # --share alone shares texts between two; --annotators alone, every text
            annotators = args.annotators
            if annotators is None:
                annotators = max(overlap.annotators, 2) if args.share else overlap.annotators
            share = args.share if args.share is not None else overlap.share or 1.0
            overlap = set_overlap(session, project, annotators, share)
        shared, total = shared_texts(session, project)
    print(f"{project.name}: {overlap.describe()} ({shared} of {total} texts shared)")
    return 0


def _percent(f1: float | None) -> str:
    return "-" if f1 is None else f"{100 * f1:.1f}"


def cmd_agreement(args, url: str) -> int:
    import json

    from core.labeling.agreement import project_agreement
    from core.labeling.projects import get_project
    from core.store.db import require_schema, session_scope

    require_schema(url)  # a report never writes
    with session_scope(url) as session:
        report = project_agreement(
            session, get_project(session, args.project), by=args.by, size=args.window
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    found = report.agreement
    print(f"{report.project}: {report.overlap.describe()}")
    if not found.pairs:
        print(
            "no text is labeled by two annotators yet; share some with "
            f"`fewlabel project overlap {report.project} --annotators 2 --share 0.2`"
        )
        return 0
    print(
        f"{found.texts} texts labeled by two annotators or more; span F1 (mean over pairs) "
        f"{_percent(found.micro)}; annotators differ on {report.disagreeing}, "
        f"{report.resolved} of them settled by a final version\n"
    )
    pair_rows = [
        {
            "a": p.a,
            "b": p.b,
            "texts": p.texts,
            "differ": p.differ,
            "spans a": p.micro.a,
            "spans b": p.micro.b,
            "matched": p.micro.matched,
            "F1": _percent(p.micro.f1),
        }
        for p in found.pairs
    ]
    print(table(pair_rows, left=["a", "b"]) + "\n")
    label_rows = [
        {"label": label, "spans": found.label_spans.get(label, 0), "F1": _percent(f1)}
        for label, f1 in found.labels.items()
    ]
    print(table(label_rows, left=["label"]) + "\n")
    window_rows = [
        {"window": w.name, "texts": w.texts, "F1": _percent(w.micro)} for w in report.over_time
    ]
    print(table(window_rows, left=["window"]))
    return 0


def cmd_import(args, url: str) -> int:
    from core.config import background_priority
    from core.io.imports import import_file
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, session_scope

    background_priority()  # the annotators' saves first: an import yields the CPU
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
            max_chars=args.max_chars or None,
            labels=not args.no_labels,
        )
    for item in report.skipped_invalid[:20]:
        print(f"skipped {args.file} {item}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_export(args, url: str) -> int:
    from core.io.corpus import export
    from core.labeling.projects import get_project
    from core.store.db import require_schema, session_scope

    require_schema(url)  # an export never writes to the database
    with session_scope(url) as session:
        project = get_project(session, args.project)
        kwargs = dict(annotator=args.annotator, include_unlabeled=args.all)
        if args.output == "-":
            export(session, project, sys.stdout, args.format, **kwargs)
            return 0
        out = Path(args.output)
        # Written beside the target, then renamed: a failed export never leaves half a file.
        # A symlink is written through (the link stays); a device or FIFO is refused.
        with formats.write_atomically(out) as fh:
            n = export(session, project, fh, args.format, **kwargs)
    print(f"exported {n} documents to {out} ({args.format})", file=sys.stderr)
    return 0


def cmd_jobs(args, url: str) -> int:
    from core.jobs.queue import recent_jobs, request_cancel
    from core.labeling.projects import get_project
    from core.store.db import ensure_schema, require_schema, session_scope

    ensure_schema(url) if args.cancel else require_schema(url)
    with session_scope(url) as session:
        project = get_project(session, args.project)
        if args.cancel:
            job = request_cancel(session, args.cancel)
            print(f"job {job.id}: {job.message}")
            return 0
        rows = [
            {
                "id": job.id,
                "kind": job.kind,
                "status": job.status,
                "progress": f"{job.progress:.1%}",
                "created": f"{job.created_at:%Y-%m-%d %H:%M}",
                "message": job.message,
            }
            for job in recent_jobs(session, project, limit=20)
        ]
    if rows:
        print(table(rows, left=["kind", "status", "message"]))
    return 0


def cmd_serve(args, url: str) -> int:
    from core.cli import child
    from core.cli.users import check_serving
    from core.config import PROJECT_ROOT
    from core.demo import ensure_demo
    from core.store.db import display_url

    check_serving(url, args.host, no_auth=args.no_auth)  # accounts before a team network
    msg = ensure_demo(url) if not args.no_demo else None
    if msg:
        print(msg)
    env = {**os.environ, "FEWLABEL_DB": url}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app" / "main.py")]
    cmd += ["--server.address", args.host, "--server.port", str(args.port)]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += ["--global.developmentMode", "false", "--client.toolbarMode", "minimal"]
    # annotators see a generic error; the traceback goes to this server's log (stderr)
    cmd += ["--client.showErrorDetails", "none"]
    print(
        f"fewlabel: serving on http://{args.host}:{args.port} (database {display_url(url)})",
        flush=True,
    )
    # `kill` of this process (SIGTERM, SIGINT, SIGHUP) stops Streamlit too, and this process
    # exits with Streamlit's code when it ends on its own
    return child.run_child(cmd, env)
