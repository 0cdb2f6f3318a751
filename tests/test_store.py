"""The schema comes from Alembic: upgrade, downgrade and the SQLite pragmas on a real file."""

from sqlalchemy import text

from core.db import downgrade, get_engine, is_current, table_names, upgrade


def test_migrations_upgrade_and_downgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
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


def test_migrations_match_the_orm_models(db_url):
    """A model change without a migration fails here (autogenerate finds no difference)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.schema import Base

    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
