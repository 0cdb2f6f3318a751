"""The schema comes from Alembic: upgrade, downgrade and the SQLite pragmas on a real file."""

import pytest
from sqlalchemy import text

from core.store.db import downgrade, get_engine, is_current, table_names, upgrade


@pytest.mark.both_backends
def test_migrations_upgrade_and_downgrade(blank_db_url):
    url = blank_db_url
    upgrade(url)
    assert {"projects", "documents", "annotations", "alembic_version"} <= set(table_names(url))
    assert is_current(url)
    downgrade(url, "base")
    assert set(table_names(url)) == {"alembic_version"}
    assert not is_current(url)
    upgrade(url)
    assert is_current(url)


def test_sqlite_runs_with_wal_and_foreign_keys(db_url):
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.both_backends
def test_migrations_match_the_orm_models(db_url):
    """A model change without a migration fails here (autogenerate finds no difference)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.schema import Base

    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def _rows(path, sql):
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_display_url_masks_the_password():
    from core.store.db import display_url

    assert display_url("postgresql+psycopg://ann:s3cret@db.local:5432/fl") == (
        "postgresql+psycopg://ann:***@db.local:5432/fl"
    )
    assert display_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert "s3cret" not in display_url("weird://ann:s3cret@host/x y")


def test_a_migration_of_an_existing_file_is_preceded_by_a_snapshot(tmp_path):
    """upgrade() copies the file with SQLite's backup API before migrating it; a fresh file
    and a file already at the newest revision get no copy."""
    db = tmp_path / "m.db"
    url = f"sqlite:///{db}"
    upgrade(url, "0004")
    assert list(tmp_path.glob("m.db.bak-*")) == []  # nothing to keep in a new file
    with get_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (name, task, labels, label_spelling, strategy, "
                "created_at) VALUES ('p', 'acronym', '[]', '{}', 'random', "
                "'2026-01-01')"
            )
        )
    upgrade(url)
    (snap,) = tmp_path.glob("m.db.bak-*")
    assert snap.name.startswith("m.db.bak-0004-")
    assert _rows(snap, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert _rows(snap, "SELECT name FROM projects") == [("p",)]
    upgrade(url)  # already current: no second copy
    assert len(list(tmp_path.glob("m.db.bak-*"))) == 1


def test_backup_while_another_connection_writes_holds_every_committed_row(tmp_path):
    import sqlite3
    import threading

    from core.store.db import backup_sqlite

    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    writer = sqlite3.connect(db, check_same_thread=False, timeout=30)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE ticks (id INTEGER PRIMARY KEY, payload TEXT)")
    writer.commit()
    committed = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            writer.execute("INSERT INTO ticks (id, payload) VALUES (?, ?)", (i, "x" * 500))
            writer.commit()
            committed.append(i)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(committed) < 200:
            pass
        before = len(committed)
        out = backup_sqlite(url, tmp_path / "copy.db")
    finally:
        stop.set()
        thread.join()
        writer.close()
    ids = [i for (i,) in _rows(out, "SELECT id FROM ticks ORDER BY id")]
    # one consistent snapshot: every row committed before the backup, none half-written
    assert len(ids) >= before and ids == list(range(1, len(ids) + 1))
    assert _rows(out, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(out, "SELECT count(*) FROM alembic_version") == [(1,)]
