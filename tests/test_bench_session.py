"""`fewlabel bench session`: the cost constants (file, fit, published), and a tiny run."""

from __future__ import annotations

import json

import pytest
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES

from core.bench import costs
from core.bench.session import ranking
from core.cli import main
from core.errors import FewlabelError

GOOD = {
    "text_seconds": 3.0,
    "word_seconds": 0.5,
    "span_seconds": 4.0,
    "keep_saving": 0.14,
    "decision_fraction": 0.2,
}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({k: v for k, v in GOOD.items() if k != "span_seconds"}, "missing constant 'span_seconds'"),
        ({**GOOD, "word_seconds": -1}, "word_seconds must be a non-negative number, not -1"),
        ({**GOOD, "text_seconds": "3"}, "text_seconds must be a number, not '3'"),
        ({**GOOD, "text_seconds": True}, "text_seconds must be a number"),
        ({**GOOD, "keep_saving": 1.5}, "keep_saving is a fraction, at most 1"),
        ({**GOOD, "span_secs": 4}, "unknown constant 'span_secs'"),
        ([1, 2], "not a JSON object of costs"),
        ("{not json", "not a JSON object of costs"),
    ],
)
def test_a_bad_costs_file_is_refused_in_one_line(tmp_path, content, reason):
    path = tmp_path / "costs.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(FewlabelError) as e:
        costs.read_costs(path)
    assert str(e.value).startswith(f"{path}: ") and reason in str(e.value)
    assert "\n" not in str(e.value)


def test_a_missing_costs_file_and_a_good_one(tmp_path):
    with pytest.raises(FewlabelError, match=r"nope\.json: no such file"):
        costs.read_costs(tmp_path / "nope.json")
    (tmp_path / "c.json").write_text(json.dumps(GOOD))
    read = costs.read_costs(tmp_path / "c.json")
    assert read.manual(10, 2) == 3.0 + 5.0 + 8.0
    assert read.decision(10, 2) == pytest.approx(0.2 * 16.0)
    # all spans pre-filled and kept: the saving; one wrong span removed costs a span
    assert read.correct(10, 2, kept=2, removed=1) == pytest.approx(16.0 * 0.86 + 4.0)


def test_the_fit_recovers_constants_from_literal_rows():
    # (texts, words, spans, seconds) made with 3 s a text, 0.5 s a word, 4 s a span
    rows = [(10, 120, 14, 146.0), (20, 200, 30, 280.0), (5, 90, 4, 76.0), (8, 64, 20, 136.0)]
    fit = costs.fit_manual(rows)
    assert fit["text_seconds"] == pytest.approx(3.0, abs=1e-3)
    assert fit["word_seconds"] == pytest.approx(0.5, abs=1e-3)
    assert fit["span_seconds"] == pytest.approx(4.0, abs=1e-3)
    assert fit["rmse"] < 1e-6
    with pytest.raises(FewlabelError, match="at least 3 rows"):
        costs.fit_manual(rows[:2])


def test_the_published_constants_are_the_fit_of_wei_2019_table_4():
    assert len(costs.WEI_2019_TABLE4) == 18  # nine users, random and active learning
    first = costs.wei_rows()[0]  # user 1, random: 920 sentences in 119.97 minutes
    assert first[0] == 920 and first[3] == pytest.approx(119.97 * 60)
    fit = costs.fit_manual(costs.wei_rows())
    # unconstrained least squares gives a negative cost per word; non-negative gives none
    assert fit == pytest.approx(
        {"text_seconds": 3.2168, "word_seconds": 0.0, "span_seconds": 4.4505, "rmse": 1481.2},
        abs=0.1,
    )
    pub = costs.published()
    assert (pub.keep_saving, pub.decision_fraction) == (0.1385, 0.2)
    assert pub.scaled("keep_saving", 2.0).keep_saving == pytest.approx(0.277)


def test_ranking_orders_modes_by_mean_f1():
    recs = [
        {"mode": "manual", "minutes": 30, "f1_micro": 50.0},
        {"mode": "manual", "minutes": 30, "f1_micro": 60.0},
        {"mode": "correct", "minutes": 30, "f1_micro": 58.0},
        {"mode": "correct", "minutes": 60, "f1_micro": 10.0},
    ]
    assert ranking(recs, 30) == ["correct", "manual"]


def _conll(path, sentences):
    """Custom labels: all-caps words are Org, cats and dogs are Animal."""

    def tag(w):
        if w.isupper() and len(w) > 1:
            return "B-Org"
        return "B-Animal" if w in ("cats", "dogs") else "O"

    path.write_text("\n\n".join("\n".join(f"{w}\t{tag(w)}" for w in s.split()) for s in sentences))
    return str(path)


def _argv(tmp_path, tiny_model_dir, modes, *extra):
    sentences = ACRONYM_SENTENCES + POOL_SENTENCES
    train = _conll(tmp_path / "train.conll", sentences[:24])
    test = _conll(tmp_path / "test.conll", sentences[24:])
    argv = ["bench", "session", "--task", "custom", "--train", train, "--test", test]
    argv += ["--epochs", "1", "--minutes", "0.5,1", "--retrain-minutes", "0.5", "--modes", modes]
    return [*argv, "--backbone", tiny_model_dir, *extra]


FIELDS = {"mode", "base", "minutes", "seed", "texts", "decisions", "spans", "f1_micro"}
FIELDS |= {"f1_macro", "simulated_seconds"}


@pytest.mark.slow
def test_a_tiny_session_writes_records_with_monotone_simulated_time(
    tmp_path, tiny_model_dir, capsys
):
    out = tmp_path / "session.json"
    argv = _argv(tmp_path, tiny_model_dir, "manual,correct", "--json", str(out))
    assert main([*argv, "--sensitivity", "--plot", str(tmp_path / "s.png")]) == 0
    result = json.loads(out.read_text())
    records = result["records"]
    assert [(r["mode"], r["minutes"]) for r in records] == [
        (m, b) for m in ("manual", "correct") for b in (0.5, 1.0)
    ]
    assert all(set(r) == FIELDS for r in records)
    for mode in ("manual", "correct"):
        mine = [r for r in records if r["mode"] == mode]
        assert mine[0]["simulated_seconds"] <= mine[1]["simulated_seconds"] <= 60.0
        assert 0 < mine[0]["texts"] <= mine[1]["texts"]
        assert all(r["decisions"] == 0 for r in mine)
    assert result["costs"]["source"].startswith("published")
    assert "every 0.5 simulated minutes" in result["policy"]
    sens = result["sensitivity"]
    assert [(s["constant"], s["factor"]) for s in sens] == [
        ("keep_saving", 2.0),
        ("keep_saving", 0.5),
        ("decision_fraction", 2.0),
        ("decision_fraction", 0.5),
    ]
    assert all(set(s["ranking"]["1"]) == {"manual", "correct"} for s in sens)
    assert "keep_saving x2" in capsys.readouterr().out
    assert (tmp_path / "s.png").stat().st_size > 1000


@pytest.mark.slow
def test_teach_mode_runs_or_says_in_one_line_what_it_needs(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "teach.json"
    code = main(_argv(tmp_path, tiny_model_dir, "teach", "--json", str(out)))
    import inspect

    from core.model.finetune import finetune

    if "partial" not in inspect.signature(finetune).parameters:
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert "needs training from partial answers" in err and "\n" not in err
        return
    assert code == 0
    records = json.loads(out.read_text())["records"]
    assert all(set(r) == FIELDS for r in records)
    assert records[0]["simulated_seconds"] <= records[1]["simulated_seconds"] <= 60.0
    assert records[-1]["decisions"] > 0


def test_the_cli_refuses_a_bad_costs_file_in_one_line(tmp_path, tiny_model_dir, capsys):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({**GOOD, "decision_fraction": -0.2}))
    argv = _argv(tmp_path, tiny_model_dir, "manual", "--costs", str(bad))
    assert main([*argv, "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{bad}: decision_fraction must be a non-negative number" in err and "\n" not in err


def test_costs_from_a_project_fit_its_recorded_seconds(db_url, make_project):
    from core.labeling.annotations import save
    from core.labeling.decisions import record
    from core.labeling.projects import get_project
    from core.store.db import session_scope
    from core.text import tokenize

    texts = [
        "The WHO and NASA agreed .",
        "We trained a CNN on GPU machines today in the lab .",
        "Results on MNIST were good .",
        "An RNN beats an HMM here and the SVM too .",
    ]
    ids = make_project("p", texts)
    who = {"start": 4, "end": 7, "label": "SHORT"}
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for doc, text in zip(ids, texts, strict=True):
            spans = [
                {"start": w.start, "end": w.end, "label": "SHORT"}
                for w in tokenize(text)
                if w.text.isupper() and len(w.text) > 1
            ]
            # 2 s a text, 0.5 s a word, 3 s a span
            save(s, p, doc, "ann", spans, seconds=2 + 0.5 * len(tokenize(text)) + 3 * len(spans))
        record(s, p, ids[0], "ann", **who, answer="accept", origin="model", seconds=1.7)
    fitted = costs.fit_project(db_url, "p")
    assert fitted.text_seconds == pytest.approx(2.0, abs=1e-3)
    assert fitted.word_seconds == pytest.approx(0.5, abs=1e-3)
    assert fitted.span_seconds == pytest.approx(3.0, abs=1e-3)
    # text 0: 6 words, 2 spans, so 2 + 3 + 6 = 11 s by hand; its decision took 1.7 s
    assert fitted.decision_fraction == pytest.approx(1.7 / 11.0, abs=1e-3)
    assert fitted.keep_saving == costs.LINGREN_2014_SAVING
    assert "4 timed saves, 1 timed decisions" in fitted.source
