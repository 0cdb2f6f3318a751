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

    from core.store.db import describe_error

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


# ---------------------------------------------------------------------------- import

CONLL = "The\tO\nWHO\tB-SHORT\nmet\tO\n\nA\tO\nplain\tO\nNASA\tB-SHORT\nday\tO\n"


def _states(url: str, project: str = "p") -> dict[str, int]:
    """The project's documents by state, and its annotations, read from the database."""
    from sqlalchemy import func, select

    from core.labeling.projects import get_project
    from core.store.db import session_scope
    from core.store.schema import Annotation, Document

    with session_scope(url) as s:
        pid = get_project(s, project).id
        rows = s.execute(
            select(Document.state, func.count())
            .where(Document.project_id == pid)
            .group_by(Document.state)
        ).all()
        anns = s.scalar(
            select(func.count())
            .select_from(Annotation)
            .join(Document)
            .where(Document.project_id == pid)
        )
    return {**dict(rows), "annotations": anns}


def test_no_labels_imports_a_labeled_files_texts_open(db, tmp_path, capsys):
    url = f"sqlite:///{db}"
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    src = tmp_path / "gold.conll"
    src.write_text(CONLL.replace("B-SHORT\nday", "B-NOPE\nday"))  # a label it does not have
    assert main(["--db", db, "import", "p", str(src)]) == 2  # labels read: refused
    capsys.readouterr()
    assert main(["--db", db, "import", "p", str(src), "--no-labels"]) == 0
    assert "imported 2 documents" in capsys.readouterr().out
    assert _states(url) == {"open": 2, "annotations": 0}
    assert main(["--db", db, "queue", "p"]) == 0  # in the queue, tokens kept
    assert "The WHO met" in capsys.readouterr().out
    # the keyword of import_stream: the same file with its labels, into another project
    from core.io.imports import import_file
    from core.labeling.projects import create_project
    from core.store.db import session_scope

    src.write_text(CONLL)
    with session_scope(url) as s:
        q = create_project(s, "q", "acronym")
        assert import_file(s, q, src, labels=False).annotations == 0
        assert import_file(s, create_project(s, "r", "acronym"), src).annotations == 2
    assert _states(url, "q") == {"open": 2, "annotations": 0}
    assert _states(url, "r") == {"done": 2, "annotations": 2}


def test_projects_page_imports_a_labeled_files_texts_only(db_url, monkeypatch):
    """The upload's "Texts only" box: import_bytes(labels=False), the texts open."""
    from streamlit.testing.v1 import AppTest

    from core.labeling.projects import create_project
    from core.store.db import session_scope

    with session_scope(db_url) as s:
        create_project(s, "p", "acronym")
    monkeypatch.setenv("FEWLABEL_DB", db_url)
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=20)
    at.query_params["annotator"] = "alice"
    at.run()
    at.switch_page("views/projects.py").run()
    assert not at.exception, at.exception
    at.file_uploader(key="import_file").set_value(("gold.conll", CONLL.encode(), "text/plain"))
    at.checkbox(key="import_texts_only").check()
    at.button(key="import_submit").click().run()
    assert not at.exception, at.exception
    assert "Imported 2 documents" in at.success[0].value
    assert _states(db_url) == {"open": 2, "annotations": 0}


def _blocked_on_its_insert(url: str, proc: subprocess.Popen) -> None:
    """Wait until the import in `proc` waits to insert its documents: on SQLite it holds the
    write gate (core.store.writegate: taken before its first write); on PostgreSQL its INSERT waits
    on a lock (the unique text hashes of an uncommitted transaction)."""
    import fcntl
    import time

    from core.store.db import sqlite_path

    path = sqlite_path(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path is not None:
            fd = os.open(str(Path(path).resolve()) + ".writegate", os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                return
            finally:
                os.close(fd)
        else:
            import psycopg

            from core.store.db import get_engine

            params = get_engine(url).url
            with psycopg.connect(
                host=params.host, port=params.port, user=params.username,
                dbname=params.database, autocommit=True,
            ) as conn:  # fmt: skip
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO documents%'"
                ).fetchone()[0]
            if waiting:
                return
        time.sleep(0.05)
    pytest.fail("the second import never reached its insert")


@pytest.mark.both_backends
def test_two_imports_of_one_file_at_once_the_loser_says_so_in_one_line(db_url, tmp_path):
    """Two real imports of one file: this process's holds its rows uncommitted while a
    `fewlabel import` process reads the file (none of its texts in the project yet) and
    waits to insert them; then this one commits. The loser prints one line, keeps nothing."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from core.io.imports import import_file
    from core.labeling.projects import create_project, get_project
    from core.store.db import session_scope

    with session_scope(db_url) as s:
        create_project(s, "p", "acronym")
    texts = [f"Text {i} about the WHO and NASA, with a few words more." for i in range(10)]
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n")
    engine = create_engine(db_url)  # no write gate: the other process's gate shows its wait
    try:
        with Session(engine) as winner:
            report = import_file(winner, get_project(winner, "p"), src)  # not committed yet
            proc = subprocess.Popen(
                [sys.executable, "-m", "core.cli", "--db", db_url, "import", "p", str(src)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                _blocked_on_its_insert(db_url, proc)
            finally:
                winner.commit()
            out, err = proc.communicate(timeout=120)
    finally:
        engine.dispose()
    assert report.imported == 10
    assert proc.returncode == 2, (out, err)
    err = one_line(err)
    assert err == (
        "fewlabel: error: another import into project p added some of these texts at the "
        f"same time; nothing of {src} was imported; run it again to add the rest"
    )
    assert "Text 1 about" not in err
    assert _states(db_url) == {"open": 10, "annotations": 0}


def test_a_staged_import_that_loses_keeps_nothing_and_says_so(db_url, tmp_path):
    """An import of several batches (staged) meets a `fewlabel import` process that adds the
    rest of the file first: it stops with the one line, and its staged rows are gone."""
    import io

    from core.errors import ConflictError
    from core.io.imports import import_stream
    from core.labeling.projects import create_project
    from core.store.db import session_scope

    texts = [f"Line {i} of a file imported twice at once." for i in range(10)]
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n")
    other: list[subprocess.CompletedProcess] = []

    class Stream(io.StringIO):
        """The file, read by this import; after its 7th line the other import runs."""

        lines = 0

        def __next__(self):
            line = super().__next__()
            self.lines += 1
            if self.lines == 7:  # two batches of 3 staged and committed by now
                cmd = [sys.executable, "-m", "core.cli", "--db", db_url, "import", "p", str(src)]
                other.append(subprocess.run(cmd, capture_output=True, text=True, timeout=120))
            return line

    with session_scope(db_url) as s:
        project = create_project(s, "p", "acronym")
        with pytest.raises(ConflictError) as caught:
            import_stream(
                s, project, Stream(src.read_text()), str(src), fmt="txt", txt_mode="lines",
                batch_size=3,
            )  # fmt: skip
    assert str(caught.value) == (
        "another import into project p added some of these texts at the same time; "
        f"nothing of {src} was imported; run it again to add the rest"
    )
    (done,) = other
    assert done.returncode == 0, done.stderr
    # it imported what this one had not staged; this one's staged rows are deleted again
    assert "imported 4 documents" in done.stdout
    assert _states(db_url) == {"open": 4, "annotations": 0}


def test_importing_a_folder_says_it_is_a_folder(db, tmp_path, capsys):
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    capsys.readouterr()
    assert main(["--db", db, "import", "p", str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"fewlabel: error: {tmp_path} is a folder; give a file"
    )
    assert main(["--db", db, "import", "p", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: no such file" in one_line(capsys.readouterr().err)


def test_a_conll_label_error_cites_the_labels_own_line(db, tmp_path, capsys):
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    src = tmp_path / "bad.conll"
    # the second document starts on line 5; its unknown label is on line 7
    src.write_text(CONLL.replace("NASA\tB-SHORT", "NASA\tB-NOPE"))
    capsys.readouterr()
    assert main(["--db", db, "import", "p", str(src)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"fewlabel: error: {src}:7: unknown label 'NOPE'"), err
    assert main(["--db", db, "import", "p", str(src), "--skip-invalid"]) == 0
    assert f"skipped {src} line 7: unknown label 'NOPE'" in capsys.readouterr().err
    # an I- continuing a span: still the line of the span's first token
    src.write_text("A\tO\nUS\tB-NOPE\nArmy\tI-NOPE\n")
    assert main(["--db", db, "import", "p", str(src)]) == 2
    assert f"{src}:2: unknown label" in one_line(capsys.readouterr().err)


def test_an_empty_file_is_refused_but_a_file_of_nothing_new_is_not(db, tmp_path, capsys):
    url = f"sqlite:///{db}"
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    for name, data in (
        ("empty.txt", ""),
        ("blank.txt", "\n  \n\n"),
        ("header.csv", "text\n"),
        ("empty.jsonl", ""),
    ):
        path = tmp_path / name
        path.write_text(data)
        capsys.readouterr()
        assert main(["--db", db, "import", "p", str(path)]) == 2, name
        assert one_line(capsys.readouterr().err) == f"fewlabel: error: {path}: no texts in it"
    texts = tmp_path / "t.txt"
    texts.write_text("One text.\nTwo texts.\n")
    assert main(["--db", db, "import", "p", str(texts)]) == 0
    # records that are all already there, or all empty: an import of nothing, exit 0
    assert main(["--db", db, "import", "p", str(texts)]) == 0
    assert "imported 0 documents" in capsys.readouterr().out
    empties = tmp_path / "e.jsonl"
    empties.write_text('{"text": ""}\n{"text": "  "}\n')
    assert main(["--db", db, "import", "p", str(empties)]) == 0
    assert "2 empty texts skipped" in capsys.readouterr().out
    assert _states(url) == {"open": 2, "annotations": 0}


# ---------------------------------------------------------------------------- other commands


def test_export_predict_and_backup_refuse_a_missing_directory(db, tmp_path, capsys):
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    src = tmp_path / "t.txt"
    src.write_text("The WHO met NASA.\n")
    main(["--db", db, "import", "p", str(src)])
    missing = tmp_path / "no" / "such" / "dir"
    capsys.readouterr()
    model = tmp_path / "model"
    model.mkdir()  # a folder, not a model: the output's folder is checked before it loads
    for args in (
        ["export", "p", "-o", str(missing / "x.csv")],
        ["export", "p", "-o", str(missing / "x.conll"), "--format", "conll", "--all"],
        ["backup", "-o", str(missing / "x.db")],
        ["predict", "--model", str(model), "--input", str(src), "--output",
         str(missing / "x.jsonl")],
    ):  # fmt: skip
        assert main(["--db", db, *args]) == 2, args
        assert one_line(capsys.readouterr().err) == f"fewlabel: error: no such directory: {missing}"
    assert not (tmp_path / "no").exists()
    out = tmp_path / "x.csv"
    assert main(["--db", db, "export", "p", "-o", str(out), "--all"]) == 0 and out.is_file()


def test_queue_refuses_a_count_that_is_not_positive(db, capsys):
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    capsys.readouterr()
    for n in ("-5", "0", "x"):
        with pytest.raises(SystemExit) as caught:
            main(["--db", db, "queue", "p", "--n", n])
        assert caught.value.code == 2
        out, err = capsys.readouterr()
        assert out == ""
        (line,) = [x for x in err.splitlines() if "error" in x]
        assert line.endswith(f"argument --n: expected a whole number over 0, not '{n}'")
    assert main(["--db", db, "queue", "p", "--n", "3"]) == 0


def test_weak_list_refuses_an_old_database_like_every_listing(db, capsys):
    """`weak list` only reads: on a database behind the newest migration it says so in one
    line and leaves the file as it was (it used to migrate it)."""
    import sqlite3

    from core.store.db import upgrade

    def content() -> list[str]:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return list(con.iterdump())
        finally:
            con.close()

    upgrade(f"sqlite:///{db}", "0004")
    before = content()
    for args in (["weak", "list", "p"], ["project", "list"]):
        assert main(["--db", db, *args]) == 2, args
        err = one_line(capsys.readouterr().err)
        assert "behind" in err and "fewlabel init" in err, err
    assert content() == before
    assert main(["--db", str(Path(db).with_name("missing.db")), "weak", "list", "p"]) == 2
    assert "no database at" in one_line(capsys.readouterr().err)
    assert not Path(db).with_name("missing.db").exists()


# ---------------------------------------------------------------------------- the repository


def test_the_write_gate_file_is_ignored_by_git(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["fewlabel.db.writegate", "data/other.db.writegate"]
    res = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert res.stdout.split() == paths, res.stderr


def test_the_license_is_an_spdx_string():
    """setuptools deprecates `project.license` as a TOML table (warned on every install)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
