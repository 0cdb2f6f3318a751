"""The `fewlabel` command: everything the UI does, from a shell.

Each subcommand's parser sits next to its handler (store: the database and files; model:
training, scoring, pretraining; weak: weak sources; bench: measuring). Errors a user can cause
exit non-zero with one line on stderr, never a traceback; a database's errors are put in words by
core.store.db.describe_error (never SQLAlchemy's lines with a statement and its parameters).
"""

from __future__ import annotations

import argparse
import os
import sys

from core.cli import bench, model, ops, store, users, weak
from core.cli.common import db_parent
from core.config import get_settings
from core.errors import FewlabelError


def build_parser() -> argparse.ArgumentParser:
    db = db_parent()
    parser = argparse.ArgumentParser(
        prog="fewlabel",
        description="Active-learning span labeling with Few Example Learning.",
        parents=[db],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (store, model, weak, bench, users, ops):
        module.add_commands(sub, db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = get_settings(getattr(args, "db", None)).db_url
    try:
        return args.handler(args, url)
    except FewlabelError as exc:
        print(f"fewlabel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fewlabel: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises no tracebacks
        if os.environ.get("FEWLABEL_DEBUG"):
            raise
        from core.store.db import describe_error

        # a database's error in words (a refused port, a read-only folder, a full disk), not
        # SQLAlchemy's lines with the statement and its parameters; anything else on one line
        message = describe_error(exc, url)
        if message is None:
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            message = f"{type(exc).__name__}: {first}".rstrip(": ")
        print(f"fewlabel: error: {message}", file=sys.stderr)
        return 1
