"""The fewlabel command's errors a user can cause (issue 23): one line on stderr naming the
problem, no traceback, no SQL, nothing lost."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


def one_line(err: str) -> str:
    """stderr of a failed command: one line, `fewlabel: error: ...`, nothing of SQLAlchemy's."""
    err = err.strip()
    assert err.startswith("fewlabel: error:") and "\n" not in err, err
    for noise in ("Traceback", "sqlalche.me", "Background on this error", "SELECT", "INSERT"):
        assert noise not in err, err
    return err


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions hold: nothing for a normal user; for
    root, setpriv without the capabilities that override them (CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder is writable to root")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


# ---------------------------------------------------------------------------- database errors


def test_a_refused_port_is_one_line_naming_the_server(capsys):
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://u:secretpw@127.0.0.1:{_free_port()}/db"
    for args in (
        ["project", "list"],
        ["init"],
        ["project", "create", "p", "--task", "acronym"],
        ["weak", "list", "p"],
    ):
        assert main(["--db", url, *args]) == 1, args
        err = one_line(capsys.readouterr().err)
        assert "cannot connect to the database at postgresql+psycopg://u:***@127.0.0.1:" in err
        assert "refused" in err.lower() and "secretpw" not in err


def test_a_missing_postgresql_database_is_named(postgres, capsys):
    url = postgres.url("no_such_database")
    assert main(["--db", url, "project", "list"]) == 1
    err = one_line(capsys.readouterr().err)
    assert 'database "no_such_database" does not exist' in err, err


def test_a_missing_sqlite_directory_is_named_and_not_created(tmp_path, capsys):
    db = tmp_path / "no" / "such" / "x.db"
    for args in (["init"], ["project", "create", "p", "--task", "acronym"]):
        assert main(["--db", str(db), *args]) == 1, args
        err = one_line(capsys.readouterr().err)
        assert f"no such directory: {tmp_path / 'no' / 'such'}" in err, err
    assert not (tmp_path / "no").exists()


def test_a_read_only_folder_is_named_by_a_real_process(tmp_path):
    """Real permissions, a real process (root without its override capability)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    existing = folder / "old.db"
    cmd = [sys.executable, "-m", "core.cli", "--db", str(existing)]
    subprocess.run([*cmd, "project", "create", "p", "--task", "acronym"], check=True)
    before = existing.read_bytes()
    folder.chmod(0o555)
    try:
        prefix = _without_root_powers()
        for db, args in (
            (folder / "new.db", ["init"]),
            (folder / "new.db", ["project", "create", "q", "--task", "acronym"]),
            (existing, ["project", "create", "q", "--task", "acronym"]),
        ):
            res = subprocess.run(
                [*prefix, sys.executable, "-m", "core.cli", "--db", str(db), *args],
                capture_output=True,
                text=True,
            )
            assert res.returncode == 1, (args, res.stderr)
            err = one_line(res.stderr)
            assert f"the folder {folder} is read-only" in err, err
        assert not (folder / "new.db").exists()
        assert existing.read_bytes() == before
    finally:
        folder.chmod(0o755)


def test_a_full_disk_is_named(tmp_path):
    """SQLite's own "database or disk is full" (a page limit reached, as a full disk reads)."""
    from sqlalchemy import create_engine, text

    from core.db import describe_error

    url = f"sqlite:///{tmp_path / 'full.db'}"
    engine = create_engine(url)
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        conn.execute(text("PRAGMA max_page_count=3"))
        conn.execute(text("CREATE TABLE t (x BLOB)"))
        conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    engine.dispose()
    message = describe_error(caught.value, url)
    assert message.startswith(f"the disk holding {tmp_path / 'full.db'} is full"), message
    assert describe_error(ValueError("not a database's"), url) is None

