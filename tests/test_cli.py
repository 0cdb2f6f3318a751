"""The fewlabel command, in process and as a real subprocess."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from core.cli import main


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


def test_project_import_export_flow(db, tmp_path, capsys):
    assert main(["--db", db, "init"]) == 0
    assert (
        main(["--db", db, "project", "create", "ner", "--task", "custom", "--labels", "PER,ORG"])
        == 0
    )
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada works at IBM.", "spans": [[13, 16, "ORG"]]}) + "\n")
    assert main(["--db", db, "import", "ner", str(src), "--annotator", "gold"]) == 0
    assert "imported 1 documents" in capsys.readouterr().out
    out = tmp_path / "out.csv"
    assert main(["--db", db, "export", "ner", "-o", str(out)]) == 0
    row = next(csv.DictReader(out.open()))
    assert json.loads(row["spans"]) == [{"start": 13, "end": 16, "label": "ORG", "text": "IBM"}]
    assert main(["--db", db, "project", "list"]) == 0
    assert "ner" in capsys.readouterr().out


def test_user_errors_exit_non_zero_with_one_line(db, tmp_path, capsys):
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    capsys.readouterr()
    bad = tmp_path / "bad.conll"
    bad.write_text("a\tO\nb\tB-NOPE\n")
    cases = [
        ["import", "p", str(bad)],
        ["import", "p", str(tmp_path / "missing.txt")],
        ["import", "nope", str(bad)],
        ["project", "create", "p", "--task", "acronym"],
        ["project", "create", "c", "--task", "custom"],
    ]
    for args in cases:
        assert main(["--db", db, *args]) != 0
        err = capsys.readouterr().err.strip()
        assert err.startswith("fewlabel: error:") and "\n" not in err, args
        assert "Traceback" not in err


def test_subprocess_error_has_no_traceback(db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('text,spans\nok,[]\nx,"[{"\n')
    cmd = [sys.executable, "-m", "core.cli", "--db", db]
    subprocess.run([*cmd, "project", "create", "p", "--task", "acronym"], check=True)
    res = subprocess.run([*cmd, "import", "p", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0 and "bad.csv:3" in res.stderr
    listing = subprocess.run([*cmd, "project", "list"], capture_output=True, text=True)
    assert listing.stdout.splitlines()[1].split()[4] == "0"  # no documents were written


def test_db_goes_before_or_after_the_command_and_tables_keep_their_columns(db, tmp_path, capsys):
    src = tmp_path / "t.txt"
    src.write_text("The WHO met NASA.\nA plain sentence.\n")
    assert main(["project", "create", "p", "--task", "acronym", "--db", db]) == 0
    assert main(["--db", db, "import", "p", str(src)]) == 0
    capsys.readouterr()
    assert main(["project", "list", "--db", db]) == 0
    head, row = capsys.readouterr().out.splitlines()
    assert head.split() == ["id", "name", "task", "labels", "docs", "done", "skip"]
    assert row.split() == ["1", "p", "acronym", "SHORT,LONG", "2", "0", "0"]
    assert main(["queue", "p", "--db", db]) == 0
    head, *rows = capsys.readouterr().out.splitlines()
    assert head.split() == ["id", "score", "text"] and len(rows) == 2
    assert {" ".join(r.split()[1:]) for r in rows} == {"- The WHO met NASA.", "- A plain sentence."}


def test_queue_strategies_come_from_the_registry(db, capsys):
    from core.active.strategies import STRATEGIES
    from core.cli import build_parser
    from core.config import get_settings
    from core.labeling.projects import get_project
    from core.store.db import session_scope

    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    capsys.readouterr()
    assert main(["--db", db, "queue", "p", "--strategy", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fewlabel: error: unknown strategy 'nope'") and "\n" not in err
    assert main(["--db", db, "queue", "p", "--strategy", "entropy"]) == 2
    assert "run `fewlabel train` first" in capsys.readouterr().err
    # random needs no model: it is saved and the queue shown
    assert main(["--db", db, "queue", "p", "--strategy", "random", "--save"]) == 0
    with session_scope(get_settings(db).db_url) as s:
        assert get_project(s, "p").strategy == "random"
    queue = build_parser()._subparsers._group_actions[0].choices["queue"]
    help_text = " ".join(queue.format_help().split())
    assert all(f"{s.name}: {s.help}" in help_text for s in STRATEGIES.values())


def test_read_only_commands_never_write_and_say_when_the_schema_is_behind(db, tmp_path, capsys):
    """project list, export, queue and jobs on a database behind the newest migration: one
    line naming `fewlabel init`, the file untouched; init upgrades, after a snapshot."""
    import sqlite3

    from core.store.db import upgrade

    def content() -> list[str]:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return list(con.iterdump())
        finally:
            con.close()

    url = f"sqlite:///{db}"
    upgrade(url, "0004")
    before = content()
    out = tmp_path / "out.csv"
    for args in (
        ["project", "list"],
        ["export", "p", "-o", str(out)],
        ["queue", "p"],
        ["jobs", "p"],
    ):
        assert main(["--db", db, *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "behind" in err and "fewlabel init" in err, err
    assert content() == before
    assert not out.exists()
    # opened read-only (as a file the user cannot write would be): still one line, no write
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert main(["--db", ro, "project", "list"]) == 2
    assert "fewlabel init" in capsys.readouterr().err
    assert main(["--db", str(tmp_path / "missing.db"), "project", "list"]) == 2
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
    assert main(["--db", db, "init"]) == 0
    assert len(list(tmp_path.glob("cli.db.bak-0004-*"))) == 1
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    assert main(["--db", ro, "project", "list"]) == 0  # current and read-only: it lists
    assert " p " in capsys.readouterr().out


def test_backup_command_and_postgresql_pointer(db, tmp_path, capsys):
    import sqlite3

    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    copy = tmp_path / "copy.db"
    assert main(["--db", db, "backup", "-o", str(copy)]) == 0
    con = sqlite3.connect(copy)
    assert con.execute("SELECT name FROM projects").fetchall() == [("p",)]
    con.close()
    capsys.readouterr()
    assert main(["--db", "postgresql://u:pw@localhost/x", "backup", "-o", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pg_dump" in err and "\n" not in err and "pw" not in err


def test_init_and_serve_mask_the_password_and_serve_hides_error_details(monkeypatch, capsys):
    """The URL printed by init and serve hides its password; annotators get Streamlit's
    generic error (client.showErrorDetails none), the traceback stays in the server log."""
    import core.cli.child as child
    import core.store.db

    url = "postgresql://ann:s3cret@db.local/fl"
    monkeypatch.setattr(core.store.db, "upgrade", lambda u, revision="head": None)
    assert main(["--db", url, "init"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "ann:***@db.local" in out
    seen = {}
    monkeypatch.setattr(child, "run_child", lambda cmd, env: seen.update(cmd=cmd) or 0)
    monkeypatch.setattr("core.demo.ensure_demo", lambda u: None)
    assert main(["--db", url, "serve", "--no-demo"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "ann:***@db.local" in out
    cmd = seen["cmd"]
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"


PRIORITY_PROBE = """
import os, sys
from core.cli import main
before = os.getpriority(os.PRIO_PROCESS, 0)
db, src, setting = sys.argv[1], sys.argv[2], sys.argv[3]
if setting == "above":  # a niceness above the one this process started with, so it shows
    os.environ["FEWLABEL_BACKGROUND_NICE"] = str(min(before + 3, 19))
elif setting != "default":
    os.environ["FEWLABEL_BACKGROUND_NICE"] = setting
assert main(["--db", db, "project", "create", "p", "--task", "acronym"]) == 0
after_create = os.getpriority(os.PRIO_PROCESS, 0)
assert main(["--db", db, "import", "p", src]) == 0
print(before, after_create, os.getpriority(os.PRIO_PROCESS, 0))
"""


@pytest.mark.parametrize("setting", ["default", "above", "0"])
def test_an_import_yields_the_cpu_to_annotators(tmp_path, setting):
    """`fewlabel import` lowers its own CPU priority to FEWLABEL_BACKGROUND_NICE (default
    BACKGROUND_NICE), never raises it; 0 keeps it as started. Other commands leave it alone."""
    from core.defaults import BACKGROUND_NICE

    src = tmp_path / "texts.txt"
    src.write_text("The NLP group met.\nA second text.\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "FEWLABEL_BACKGROUND_NICE"}
    probe = [PRIORITY_PROBE, f"sqlite:///{tmp_path / 'p.db'}", str(src), setting]
    out = subprocess.run(
        [sys.executable, "-c", *probe], capture_output=True, text=True, env=env, check=True
    )
    before, after_create, after_import = map(int, out.stdout.split()[-3:])
    assert after_create == before
    expected = {
        "default": max(before, BACKGROUND_NICE),
        "above": min(before + 3, 19),
        "0": before,
    }[setting]
    assert after_import == expected


def test_bulk_priority_nices_only_the_thread_and_gives_it_back(monkeypatch):
    """The app imports an upload inside bulk_priority: that thread runs at the background
    niceness (Linux: a niceness is per thread), the others keep theirs, and it is restored
    afterwards where the system lets a thread raise its priority again (root, as in CI)."""
    import threading

    from core.config import bulk_priority

    seen = {}

    def work():
        seen["before"] = os.getpriority(os.PRIO_PROCESS, 0)
        with bulk_priority():
            seen["inside"] = os.getpriority(os.PRIO_PROCESS, 0)
            seen["main thread"] = os.getpriority(os.PRIO_PROCESS, main_tid)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, 0)

    main_tid = threading.get_native_id()
    main_before = os.getpriority(os.PRIO_PROCESS, main_tid)
    wanted = min(main_before + 3, 19)  # above where the thread starts, so the change shows
    monkeypatch.setenv("FEWLABEL_BACKGROUND_NICE", str(wanted))
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["before"] == main_before  # a new thread starts at its creator's niceness
    assert seen["inside"] == wanted
    assert seen["main thread"] == main_before
    if os.geteuid() == 0:
        assert seen["after"] == seen["before"]


def _serving(port: int) -> bool:
    """Whether something answers Streamlit's health check on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc)."""
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.fixture
def served(tmp_path):
    """`fewlabel serve` as a real process on a free loopback port, once it answers HTTP:
    (the process, its port, its Streamlit child's pid). Its session is killed at the end."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = str(tmp_path / "serve.db")
    assert main(["--db", db, "init"]) == 0
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "--db", db, "serve", "--no-demo", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, so the cleanup finds whatever is left
    )
    try:
        deadline = time.monotonic() + 60
        while not _serving(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start:\n{(tmp_path / 'serve.log').read_text()}")
            time.sleep(0.2)
        (streamlit,) = _children(proc.pid)
        yield proc, port, streamlit
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        log.close()


def test_serve_stops_streamlit_when_it_is_terminated(served):
    """`kill -TERM` of `fewlabel serve` (the parent only, as a service manager or a user
    sends it) stops its Streamlit child: the port stops answering and no process is left."""
    proc, port, streamlit = served
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0  # Streamlit stopped cleanly; serve exits with its code
    deadline = time.monotonic() + 5
    while (_alive(streamlit) or _serving(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(streamlit)
    assert not _serving(port)
    with pytest.raises(ProcessLookupError):  # nothing of the session is left
        os.killpg(proc.pid, 0)


def test_serve_exits_with_its_streamlit_childs_code(served):
    """When Streamlit dies on its own, `fewlabel serve` exits too, with its status."""
    proc, port, streamlit = served
    os.kill(streamlit, signal.SIGKILL)
    assert proc.wait(timeout=10) == 128 + signal.SIGKILL
    assert not _serving(port)
