"""The fewlabel command, in process and as a real subprocess."""

import csv
import json
import subprocess
import sys

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
    from core.active import STRATEGIES
    from core.cli import build_parser
    from core.config import get_settings
    from core.db import session_scope
    from core.projects import get_project

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
