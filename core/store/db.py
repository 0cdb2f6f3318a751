"""Engine and session factory, SQLite pragmas, and the Alembic entry points.

The schema is created and upgraded only by the migrations in `migrations/`; nothing here
calls `create_all`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import FewlabelError
from core.store import writegate

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def display_url(url: str) -> str:
    """The URL as it may be printed or logged: its password masked (`***`)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # not a URL SQLAlchemy reads; mask anything between "user:" and "@" all the same
        return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", url)


def db_now(session: Session) -> datetime:
    """The time by the database's clock, UTC, naive like every stored time. Leases compare
    heartbeats written by workers on other machines, whose clocks may disagree; PostgreSQL's
    clock is the one they share. A SQLite file lives on one machine: its clock is ours."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.timezone("UTC", func.now())))
    from core.store.schema import utcnow

    return utcnow()


def db_now_sql(session: Session):
    """db_now as a SQL value for an UPDATE (a worker's heartbeat, a claim's start)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.timezone("UTC", func.now())
    from core.store.schema import utcnow

    return utcnow()


# Tables whose planner statistics an import changes (core.io.imports.import_stream).
_QUEUE_TABLES = ("documents", "annotations")


def refresh_statistics(session: Session) -> None:
    """Bring PostgreSQL's planner statistics up to date after a bulk write (an import).

    Right after 20,000 texts land in a fresh project PostgreSQL still believes the documents
    table is empty, so the queue's claim reads and sorts every open row (18 ms at 20,000)
    and anti-joins each against the annotator's saves: one annotator's next+save took 217 ms
    instead of 9 ms, until autovacuum's ANALYZE came round a minute or more later. ANALYZE
    samples a bounded number of rows, runs inside a transaction and blocks no reader or
    writer. SQLite's planner needs no statistics for these queries (its next p95 stays in
    milliseconds without them), and its ANALYZE would scan whole indexes: nothing there.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(_QUEUE_TABLES)}"))


# SQLite folds its write-ahead log back into the database file once the log holds this many
# pages (SQLite's default: 1,000, 4 MB). An import's batches rewrite the same index pages over
# and over; at 1,000 pages every batch's commit copied and synced them again. At 40,000 pages
# (160 MB of log) a million-line import took 52 s instead of 80-82 s (idle 2-core machine,
# docs/benchmarks.md); 10,000 gave 60 s. After a checkpoint the log file is cut back to
# WAL_KEEP_BYTES, so it does not keep its largest size on disk.
WAL_AUTOCHECKPOINT_PAGES = 40_000
WAL_KEEP_BYTES = 64 * 1024 * 1024


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
    cur.close()


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        database = sqlite_path(url)
        if database:
            writegate.install(engine, database)
    return engine


def executemany(session: Session, stmt, rows: list[dict]) -> None:
    """Run a Core INSERT or UPDATE once per row of `rows` (dicts with the same keys) as one
    DBAPI executemany in the session's transaction, each parameter converted by its type's
    bind processor as SQLAlchemy would. For tens of thousands of rows (an import's batches):
    SQLAlchemy's own executemany spent more time building each row's parameters than SQLite
    spent storing the row. Every bind of `stmt` is a key of the rows or has a value of its own."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    names = (
        list(compiled.positiontup)
        if compiled.positional
        else list(dict.fromkeys(compiled.bind_names.values()))
    )
    columns = []  # (name, key in the row or None, processor, the value when not in the row)
    for name in names:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in rows[0]:
            columns.append((name, name, process, None))
        else:
            value = bind.effective_value
            columns.append((name, None, None, process(value) if process else value))
    if compiled.positional:
        params = [
            tuple(
                fixed if key is None else process(row[key]) if process else row[key]
                for _, key, process, fixed in columns
            )
            for row in rows
        ]
    else:
        params = [
            {
                name: fixed if key is None else process(row[key]) if process else row[key]
                for name, key, process, fixed in columns
            }
            for row in rows
        ]
    conn.exec_driver_sql(compiled.string, params)


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema with Alembic; an existing SQLite file is first copied
    beside itself (`snapshot_before_migration`), so a migration that goes wrong loses nothing."""
    from alembic import command

    snapshot_before_migration(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def _revisions(url: str) -> tuple[set[str], set[str]]:
    """(the database's Alembic revisions, the newest ones this code knows). Only reads."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current), set(script.get_heads())


def is_current(url: str) -> bool:
    """True when the database is at the newest migration."""
    current, heads = _revisions(url)
    return current == heads


def ensure_schema(url: str) -> None:
    """Upgrade to head when behind (fresh file included); cheap when already current. For
    commands that write; commands that only read call `require_schema`."""
    if not is_current(url):
        upgrade(url)


class SchemaOutOfDateError(FewlabelError):
    """The database's schema is not the one this code reads; a read-only command says so."""


def require_schema(url: str) -> None:
    """Check, without writing anything, that the database exists and is at the newest
    migration; SchemaOutOfDateError (one line naming `fewlabel init`) when it is not."""
    path = sqlite_path(url)
    if path is not None and not Path(path).is_file():
        raise SchemaOutOfDateError(f"no database at {path}: create it with `fewlabel init`")
    current, heads = _revisions(url)
    if current == heads:
        return
    if not current:
        raise SchemaOutOfDateError(
            f"{display_url(url)} has no fewlabel schema: create it with `fewlabel init`"
        )
    from alembic.script import ScriptDirectory

    known = {r.revision for r in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current - known:
        raise SchemaOutOfDateError(
            f"the database is at revision {', '.join(sorted(current))}, newer than this "
            f"fewlabel knows ({', '.join(sorted(heads))}): upgrade fewlabel"
        )
    raise SchemaOutOfDateError(
        f"the database is at revision {', '.join(sorted(current))}, behind "
        f"{', '.join(sorted(heads))}: run `fewlabel init` to upgrade it (a copy is kept)"
    )


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    database = parsed.database
    if database == ":memory:" or "mode=memory" in database:
        return None
    if database.startswith("file:"):  # a URI filename (`?uri=true`): file:PATH?mode=ro
        database = database[len("file:") :].split("?", 1)[0]
    return database


def _sqlite_source(url: str) -> sqlite3.Connection:
    """A plain sqlite3 connection to a SQLite URL's file that never writes to it."""
    path = sqlite_path(url)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def backup_sqlite(url: str, out: str | os.PathLike) -> Path:
    """Copy a SQLite database to `out` with SQLite's online backup API: one consistent
    snapshot, even while others write (WAL readers do not block them). Written beside `out`
    and renamed into place, so a failed backup leaves no half file."""
    path = sqlite_path(url)
    if path is None:
        raise FewlabelError(
            f"backup copies SQLite files; {display_url(url).split(':', 1)[0]} is backed up "
            "with its own tool (PostgreSQL: pg_dump -Fc DBNAME -f FILE)"
        )
    if not Path(path).is_file():
        raise FewlabelError(f"no database at {path}")
    target = Path(out).expanduser().resolve()
    if target == Path(path).resolve():
        raise FewlabelError(f"{target} is the database itself; back it up to another file")
    if target.is_dir():
        raise FewlabelError(f"{target} is a directory; give a file name")
    if not target.parent.is_dir():
        raise FewlabelError(f"no such directory: {target.parent}")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        src = _sqlite_source(url)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, target)
    except sqlite3.Error as exc:
        raise FewlabelError(f"backup of {path} failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def snapshot_before_migration(url: str) -> Path | None:
    """Before migrating an existing SQLite file, copy it to `<file>.bak-<rev>-<timestamp>`
    (online backup API); None when there is nothing to keep (another database, a new or
    empty file, or a schema already at the newest revision)."""
    path = sqlite_path(url)
    if path is None or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return None
    current, heads = _revisions(url)
    if current == heads or not (current or table_names(url)):
        return None
    rev = "-".join(sorted(current)) or "none"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = Path(f"{path}.bak-{rev}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = Path(f"{path}.bak-{rev}-{stamp}-{n}")
    return backup_sqlite(url, target)


def table_names(url: str) -> list[str]:
    return inspect(get_engine(url)).get_table_names()


# ---------------------------------------------------------------------------- errors, in words

# What a SQLite error's first line means for the file, by the start of that line.
_SQLITE_PROBLEMS = {
    "database or disk is full": "the disk holding {path} is full (or the database reached its "
    "size limit): free some space and run it again",
    "database is locked": "the database {path} stayed locked by another process for 30 s; "
    "run it again",
    "file is not a database": "{path} is not a SQLite database",
    "disk I/O error": "reading or writing {path} failed: disk I/O error",
}


def describe_error(exc: BaseException, url: str) -> str | None:
    """One line naming what a database error means, fit for a user (no SQL, no parameters,
    no password): a server that refuses the connection, a wrong password, a database or
    folder that is not there, a read-only folder, a full disk. None when `exc` is not an
    error from the database or its driver."""
    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, Exception) or not _is_driver_error(orig):
        return None
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    detail = lines[0] if lines else type(orig).__name__
    path = sqlite_path(url)
    if url.startswith("sqlite") and path is not None:
        return _sqlite_problem(detail, path)
    where = display_url(url)
    # psycopg: connection failed: connection to server at "H", port P failed: FATAL:  REASON
    connecting = re.search(r"connection to server .*? failed: (.*)$", detail)
    if connecting or detail.startswith("connection failed"):
        reason = connecting.group(1) if connecting else detail
        reason = re.sub(r"^(FATAL|ERROR):\s*", "", reason)
        if "refused" in reason.lower():
            reason += " (is the server running and listening there?)"
        return f"cannot connect to the database at {where}: {reason}"
    return f"the database at {where} refused the request: {detail}"


def _is_driver_error(exc: Exception) -> bool:
    """An exception a database driver raised (sqlite3's, psycopg's, any DB-API module's)."""
    if isinstance(exc, sqlite3.Error):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"psycopg", "psycopg2", "pg8000", "asyncpg", "pymysql", "MySQLdb"}


def _sqlite_problem(detail: str, path: str) -> str:
    file = Path(path).expanduser()
    folder = file.absolute().parent
    if detail.startswith(("unable to open database file", "attempt to write a readonly")):
        if not folder.is_dir():
            return f"no such directory: {folder} (the folder of the database {path})"
        if not os.access(folder, os.W_OK):
            return (
                f"the folder {folder} is read-only: SQLite cannot open or write the database "
                f"{path} there (it keeps its journal files beside the database)"
            )
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return f"the database {path} is read-only or not readable to this user"
        if detail.startswith("attempt to write"):
            return f"the database {path} is read-only"
        return f"cannot open the database {path}"
    for start, message in _SQLITE_PROBLEMS.items():
        if detail.startswith(start):
            return message.format(path=path)
    return f"the database {path} refused the request: {detail}"
