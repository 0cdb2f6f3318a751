"""A project's weak sources (core.labeling.weak_sources) and the commands over them: `weak add/list/
remove/eval PROJECT` and `pretrain --project`."""

import pytest
from helpers import CUSTOM_LABELED, CUSTOM_PATTERNS, seed_custom_project
from sqlalchemy import select

from core.cli import main
from core.errors import ImportFormatError, NotFoundError
from core.labeling.projects import get_project, rename_label
from core.labeling.weak_sources import (
    add_patterns,
    evaluate_sources,
    list_patterns,
    project_sources,
    remove_patterns,
    stored_patterns,
)
from core.store.db import session_scope
from core.store.schema import WeakPatterns


@pytest.fixture
def bio(db_url):
    seed_custom_project(db_url, "bio")
    return db_url


@pytest.fixture
def patterns_file(tmp_path):
    path = tmp_path / "terms.jsonl"
    path.write_text(CUSTOM_PATTERNS + "\n")
    return str(path)


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fewlabel: error:") and "\n" not in err and "Traceback" not in err
    return err


# ---------------------------------------------------------------- the service


def test_a_patterns_file_is_stored_replaced_by_name_and_removed(bio):
    with session_scope(bio) as s:
        p = get_project(s, "bio")
        assert add_patterns(s, p, "terms.jsonl", CUSTOM_PATTERNS.encode()) == 3
        assert [x.label for x in stored_patterns(s, p)] == ["Chemical", "Chemical", "Disease"]
        # the same name again replaces it; another name adds a file
        assert add_patterns(s, p, "terms.jsonl", b'{"label": "Disease", "pattern": "mania"}') == 1
        add_patterns(s, p, "more.jsonl", '\ufeff{"label": "Disease", "pattern": "x"}'.encode())
        assert [(f["name"], f["patterns"]) for f in list_patterns(s, p)] == [
            ("terms.jsonl", 1),
            ("more.jsonl", 1),
        ]
        remove_patterns(s, p, "terms.jsonl")
        assert [f["name"] for f in list_patterns(s, p)] == ["more.jsonl"]
        with pytest.raises(NotFoundError):
            remove_patterns(s, p, "terms.jsonl")


def test_a_bad_patterns_file_is_refused_whole(bio):
    with session_scope(bio) as s:
        p = get_project(s, "bio")
        with pytest.raises(ImportFormatError, match=r"^bad.jsonl:2: unknown label 'Drug'"):
            add_patterns(s, p, "bad.jsonl", CUSTOM_PATTERNS.replace("chemical", "Drug"))
        with pytest.raises(ImportFormatError, match="not UTF-8"):
            add_patterns(s, p, "bad.jsonl", b"\xff\xfe{")
        assert list_patterns(s, p) == []


def test_the_sources_of_a_custom_project_and_their_scores(bio):
    with session_scope(bio) as s:
        p = get_project(s, "bio")
        sources, notes = project_sources(s, p)
        assert sources.__name__ == "dictionary"
        assert any(n.startswith("patterns: none added") for n in notes)
        assert "model: no model version yet" in notes
        add_patterns(s, p, "terms.jsonl", CUSTOM_PATTERNS)
        sources, _ = project_sources(s, p)
        assert sources.__name__ == "dictionary + patterns"
        report = evaluate_sources(s, p)
    assert report["labeled"] == len(CUSTOM_LABELED)
    assert set(report["sources"]) == {"dictionary", "patterns", "combined"}
    combined = report["sources"]["combined"]
    assert combined["texts"] == len(CUSTOM_LABELED) and combined["spans"] > 0
    assert 0 < combined["p"] <= 1 and 0 < combined["coverage"] <= 1
    assert report["notes"] == ["model: no model version yet"]


def test_renaming_a_label_carries_over_into_the_stored_patterns(bio):
    with session_scope(bio) as s:
        p = get_project(s, "bio")
        add_patterns(s, p, "terms.jsonl", CUSTOM_PATTERNS)
    with session_scope(bio) as s:  # one transaction, as the Projects page and the CLI do it
        rename_label(s, get_project(s, "bio"), "Chemical", "Compound")
    with session_scope(bio) as s:
        p = get_project(s, "bio")
        # both spellings of the old label ("Chemical", "chemical") follow; the rest stays
        assert [x.label for x in stored_patterns(s, p)] == ["Compound", "Compound", "Disease"]
        lines = s.scalar(select(WeakPatterns.lines))
        assert lines[2] == "# a comment line" and lines[3] == CUSTOM_PATTERNS.splitlines()[3]
        report = evaluate_sources(s, p)  # refused with "unknown label 'Chemical'" before
        sources, _ = project_sources(s, p)
    assert sources.__name__ == "dictionary + patterns"
    assert report["sources"]["patterns"]["spans"] > 0


# ---------------------------------------------------------------- the commands


def test_weak_add_list_eval_remove(bio, patterns_file, capsys):
    assert main(["weak", "add", "bio", "--patterns", patterns_file, "--db", bio]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        "stored 3 patterns from terms.jsonl with project bio: Chemical 2, Disease 1"
    )
    assert main(["--db", bio, "weak", "list", "bio"]) == 0
    head, row = capsys.readouterr().out.splitlines()
    assert head.split() == ["name", "patterns", "added"] and row.split()[:2] == ["terms.jsonl", "3"]

    assert main(["--db", bio, "weak", "eval", "bio"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"project bio: weak sources on its {len(CUSTOM_LABELED)} labeled")
    assert lines[1].split() == ["source", "P", "R", "F1", "coverage", "texts", "spans"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    assert set(rows) == {"dictionary", "patterns", "combined"}
    assert all(len(v[0].split(".")[1]) == 1 for v in rows.values())  # percent, one decimal
    assert rows["combined"][4] == str(len(CUSTOM_LABELED))
    assert lines[5:] == ["note: model: no model version yet"]

    assert main(["--db", bio, "weak", "remove", "bio", "terms.jsonl"]) == 0
    assert capsys.readouterr().out.strip() == "removed terms.jsonl from project bio"
    assert main(["--db", bio, "weak", "list", "bio"]) == 0
    assert "has no patterns files" in capsys.readouterr().out
    assert main(["--db", bio, "weak", "remove", "bio", "terms.jsonl"]) == 2
    assert "no patterns file 'terms.jsonl'" in _err(capsys)


@pytest.mark.parametrize(
    ("line", "where", "reason"),
    [
        ('{"label": "Drug", "pattern": "x"}', 2, "unknown label 'Drug'; use Chemical, Disease"),
        ('{"label": "Disease", "regex": "(fever"}', 2, "invalid regex '(fever'"),
        ('{"label": "Disease", "pattern": "x"', 2, "not a JSON object"),
        ('{"label": "Disease", "pattern": [{"shape": "x"}]}', 2, "unknown token attribute"),
    ],
)
def test_weak_add_refuses_a_bad_file_with_its_line(bio, tmp_path, capsys, line, where, reason):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "Chemical", "pattern": "lithium"}\n' + line + "\n")
    assert main(["--db", bio, "weak", "add", "bio", "--patterns", str(bad)]) == 2
    err = _err(capsys)
    assert f"bad.jsonl:{where}: {reason}" in err
    assert main(["--db", bio, "weak", "list", "bio"]) == 0
    assert "has no patterns files" in capsys.readouterr().out  # nothing stored


def test_weak_eval_modes_and_their_errors(bio, tmp_path, capsys):
    gold = tmp_path / "gold.conll"
    gold.write_text("The\tO\nWHO\tB-SHORT\nmet\tO\n")
    # the file mode is as before: --task scores a task's labeler on a labeled file
    assert main(["weak", "eval", "--task", "acronym", str(gold)]) == 0
    assert "SHORT" in capsys.readouterr().out
    cases = [
        (["weak", "eval", str(gold)], "is a file: give --task"),
        (["weak", "eval", "nope"], "no project 'nope'"),
        (["weak", "eval", "bio", "--labeler", "x"], "--labeler: only with --task"),
        (["weak", "add", "bio", "--patterns", str(tmp_path / "none.jsonl")], "no such file"),
        (["weak", "add", "nope", "--patterns", str(gold)], "no project 'nope'"),
    ]
    for argv, message in cases:
        assert main(["--db", bio, *argv]) == 2, argv
        assert message in _err(capsys), argv


def test_pretrain_modes_are_checked(bio, capsys):
    cases = [
        (["pretrain", "--steps", "2"], "needs --project NAME, or --task, --corpus and --out"),
        (["pretrain", "--task", "acronym", "--out", "x"], "(missing --corpus)"),
        (["pretrain", "--project", "bio", "--task", "acronym"], "--task: only without --project"),
        (["pretrain", "--project", "bio", "--objective", "mlm"], "--objective mlm: only without"),
        (["pretrain", "--project", "nope", "--steps", "1"], "no project 'nope'"),
    ]
    for argv, message in cases:
        assert main(["--db", bio, *argv]) == 2, argv
        assert message in _err(capsys), argv


@pytest.mark.slow
def test_pretrain_project_builds_the_aligned_base_of_a_custom_project(
    bio, patterns_file, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from core.model.backbone import Tagger

    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    assert main(["--db", bio, "weak", "add", "bio", "--patterns", patterns_file]) == 0
    capsys.readouterr()
    argv = ["--db", bio, "pretrain", "--project", "bio", "--steps", "2", "--base", tiny_model_dir]
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    with session_scope(bio) as s:
        base = get_project(s, "bio").base_model
    assert lines[0] == f"checkpoint {base}: from 10 texts; the base of bio's next train"
    assert lines[1].startswith("  weak source dictionary: entries ")
    assert lines[2].startswith("  weak source patterns: patterns 3")
    assert lines[3:] == ["note: model: no model version yet"]
    assert "100.0%" in captured.err  # the progress bar ran to the end
    model = Tagger.load(base)
    assert model.labels == ["Chemical", "Disease"]
    info = model.info["pretraining"]
    assert info["objective"] == "aligned" and info["steps"] == 2
    assert info["corpus"] == ["project bio (10 texts)"]  # no sample corpus for custom labels
    # the next version, finetuned from that base, records what its base was built from
    assert main(["--db", bio, "train", "bio", "--epochs", "1"]) == 0
    from core.store.versions import current_version

    with session_scope(bio) as s:
        version = current_version(s, get_project(s, "bio"))
        assert version.train_args["base"] == base
        assert version.train_args["weak_sources"]["patterns"]["patterns"] == 3
