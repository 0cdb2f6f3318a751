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
    return parser


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
                f"created project {p.name!r} (id {p.id}, task {p.task}, labels {','.join(p.labels)})"
            )
            return 0
        rows = list_projects(session)
        if not rows:
            print("no projects yet; create one with `fewlabel project create NAME --task acronym`")
            return 0
        print(
            f"{'id':>4}  {'name':<24} {'task':<8} {'labels':<20} {'docs':>7} {'done':>6} {'skip':>5}"
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
