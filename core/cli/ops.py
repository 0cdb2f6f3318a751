"""Commands for whoever runs the server: backup."""

from __future__ import annotations

import argparse
import sys


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "backup",
        parents=[db],
        help="copy a SQLite database to a file, consistent while annotators keep saving "
        "(PostgreSQL: use pg_dump)",
    )
    p.add_argument("-o", "--output", required=True, help="the backup file (replaced if present)")
    p.set_defaults(handler=cmd_backup)


def cmd_backup(args, url: str) -> int:
    from core.db import backup_sqlite, display_url

    out = backup_sqlite(url, args.output)
    print(f"backed up {display_url(url)} to {out}", file=sys.stderr)
    return 0
