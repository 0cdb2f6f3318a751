"""Commands for whoever runs the server: backup, worker."""

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

    p = sub.add_parser(
        "worker",
        parents=[db],
        help="run queued jobs from the database on this machine (e.g. a GPU box), as long as "
        "it runs; the app's machine may then set FEWLABEL_LOCAL_WORKER=0",
    )
    p.add_argument(
        "--kinds", default="train,score,pretrain", help="which jobs to take, comma-separated"
    )
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at the queue")
    p.set_defaults(handler=cmd_worker)


def cmd_backup(args, url: str) -> int:
    from core.store.db import backup_sqlite, display_url

    out = backup_sqlite(url, args.output)
    print(f"backed up {display_url(url)} to {out}", file=sys.stderr)
    return 0


def cmd_worker(args, url: str) -> int:
    import logging
    import socket

    from core.cli.common import names
    from core.config import background_priority, get_settings
    from core.errors import FewlabelError
    from core.jobs.worker import lost_by_this_process, work
    from core.store.db import display_url, ensure_schema

    kinds = tuple(names(args.kinds))
    unknown = set(kinds) - {"train", "score", "pretrain"}
    if unknown or not kinds:
        raise FewlabelError(f"--kinds takes train, score and pretrain, not {', '.join(unknown)}")
    ensure_schema(url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    background_priority()
    print(
        f"worker on {socket.gethostname()}: {', '.join(kinds)} jobs from {display_url(url)}, "
        f"models in {get_settings().models_dir}",
        file=sys.stderr,
        flush=True,
    )

    def report(job) -> None:
        if lost_by_this_process(job):  # reaped after a stall: the row is another run's now
            print(f"job {job.id} ({job.kind}): lost by this worker (taken for dead)", flush=True)
            return
        print(f"job {job.id} ({job.kind}): {job.status} {job.error or ''}".rstrip(), flush=True)

    n = work(url, kinds, once=args.once, poll=args.poll, on_job=report)
    print(f"{n} jobs run", file=sys.stderr)
    return 0
