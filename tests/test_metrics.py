"""Span P/R/F1 against numbers worked out by hand, and the cross-validation built on it."""

import json

import pytest

from core.metrics import fold_count, headline, mean_sd, percent, span_prf, summarize_folds
from core.text import Span

LABELS = ["SHORT", "LONG"]


def test_hand_computed_example():
    gold = [
        [Span(0, 3, "SHORT"), Span(5, 20, "LONG")],
        [Span(0, 2, "SHORT"), Span(10, 12, "SHORT")],
    ]
    pred = [
        [Span(0, 3, "SHORT"), Span(5, 18, "LONG")],  # LONG boundary off by two: no credit
        [Span(0, 2, "SHORT"), Span(4, 6, "SHORT"), Span(10, 12, "LONG")],  # wrong label
    ]
    m = span_prf(gold, pred, LABELS)
    short, long_ = m["per_label"]["SHORT"], m["per_label"]["LONG"]
    # SHORT: 3 gold, 3 predicted, 2 exact matches.
    assert short["p"] == pytest.approx(2 / 3)
    assert short["r"] == pytest.approx(2 / 3)
    assert short["f1"] == pytest.approx(2 / 3)
    assert short["support"] == 3
    # LONG: 1 gold, 2 predicted, none match.
    assert (long_["p"], long_["r"], long_["f1"], long_["support"]) == (0.0, 0.0, 0.0, 1)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0.0) / 2)
    # Micro: 2 true positives, 5 predicted, 4 gold.
    assert m["p_micro"] == pytest.approx(0.4)
    assert m["r_micro"] == pytest.approx(0.5)
    assert m["f1_micro"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    json.dumps(m)  # plain types only


def test_perfect_and_empty():
    gold = [[Span(0, 3, "SHORT"), Span(4, 9, "LONG")], []]
    m = span_prf(gold, gold, LABELS)
    assert m["f1_macro"] == 1.0 and m["f1_micro"] == 1.0
    empty = span_prf([[]], [[]], LABELS)
    assert empty["f1_macro"] == 0.0 and empty["f1_micro"] == 0.0


def test_dicts_duplicates_and_unknown_labels():
    gold = [[{"start": 0, "end": 3, "label": "SHORT"}]]
    pred = [
        [
            {"start": 0, "end": 3, "label": "SHORT"},
            {"start": 0, "end": 3, "label": "SHORT"},  # a duplicate counts once
            {"start": 5, "end": 8, "label": "OTHER"},  # not an evaluated label: ignored
        ]
    ]
    m = span_prf(gold, pred, ["SHORT"])
    assert m["per_label"]["SHORT"]["f1"] == 1.0
    assert m["per_label"]["SHORT"]["predicted"] == 1


def test_absent_label_counts_as_zero_in_macro():
    gold = [[Span(0, 3, "SHORT")]]
    m = span_prf(gold, gold, LABELS)
    assert m["per_label"]["LONG"]["f1"] == 0.0
    assert m["f1_macro"] == pytest.approx(0.5)
    assert m["f1_micro"] == 1.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        span_prf([[]], [[], []], LABELS)


# Cross-validation: the arithmetic, the wording, and the folds trained on the tiny model.


def test_fold_count_keeps_two_texts_a_fold():
    assert [fold_count(n) for n in (0, 3, 4, 6, 9, 10, 500)] == [0, 0, 2, 3, 4, 5, 5]


def test_mean_sd_is_the_sample_spread():
    assert mean_sd([0.5, 0.7]) == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.02**0.5)}
    assert mean_sd([0.4]) == {"mean": 0.4, "sd": 0.0}
    assert mean_sd([]) == {"mean": None, "sd": None}


def test_summarize_folds_skips_folds_without_a_label():
    gold_a = [[Span(0, 3, "SHORT"), Span(4, 9, "LONG")]]
    gold_b = [[Span(0, 3, "SHORT")]]
    folds = [
        span_prf(gold_a, [[Span(0, 3, "SHORT")]], LABELS),  # LONG missed: LONG F1 0
        span_prf(gold_b, gold_b, LABELS),  # no LONG anywhere: LONG not averaged here
    ]
    pooled = span_prf(gold_a + gold_b, [[Span(0, 3, "SHORT")], gold_b[0]], LABELS)
    cv = summarize_folds(folds, pooled, LABELS)
    assert (cv["folds"], cv["texts"], cv["spans"]) == (2, 2, 3)
    assert cv["f1_micro"]["mean"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert cv["per_label"]["LONG"] == {"mean": 0.0, "sd": 0.0, "folds": 1, "support": 1}
    assert cv["per_label"]["SHORT"]["mean"] == 1.0
    assert [f["texts"] for f in cv["per_fold"]] == [1, 1]


def test_headline_prefers_cross_validation_and_says_why_when_nothing_was_measured():
    dev = span_prf([[Span(0, 3, "SHORT")]] * 10, [[Span(0, 3, "SHORT")]] * 10, LABELS)
    cv = summarize_folds([dev, dev], dev, LABELS)
    h = headline({"dev": dev, "cv": cv}, 100)
    assert h["by"] == "2-fold cross-validation" and (h["texts"], h["spans"]) == (20, 20)
    assert h["per_label"]["LONG"] == (None, None)  # in no fold's gold nor predictions
    h = headline({"dev": dev, "cv": None}, 600)
    assert (h["by"], h["f1"], h["texts"], h["spans"]) == ("dev slice", 1.0, 10, 10)
    assert h["per_label"]["LONG"] == (None, None)
    assert headline({"dev": None, "cv": None}, 3)["note"] == "not measured: fewer than 4 labels"
    # a version from before cross-validation: the dev slice's own threshold
    assert headline({"dev": None}, 12, 40)["note"] == "not measured: fewer than 40 labels"
    assert percent(0.71349, 0.0421) == "71.3 ± 4.2" and percent(1.0) == "100.0"


def test_cross_validation_holds_each_text_out_once(tiny_model_dir):
    """k folds on the tiny random model: every text scored once by a model that never saw it."""
    from helpers import ACRONYM_SENTENCES

    from core.model.crossval import cross_validate, wants_cross_validation
    from core.model.finetune import TrainArgs
    from core.text import words_of

    examples = []
    for text in ACRONYM_SENTENCES:
        words = words_of(text, None)
        acronyms = [w for w in words if w.text.isupper() and len(w.text) > 1]
        spans = [Span(w.start, w.end, "SHORT") for w in acronyms]
        examples.append((text, words, spans))
    args = TrainArgs(epochs=2, num_threads=1)
    assert wants_cross_validation(6, args) and not wants_cross_validation(3, args)
    assert wants_cross_validation(494, args) and not wants_cross_validation(495, args)
    messages = []
    cv = cross_validate(
        examples, LABELS, base=tiny_model_dir, args=args, progress=lambda f, m: messages.append(m)
    )
    n_spans = sum(len(s) for _, _, s in examples)
    assert (cv["folds"], cv["texts"], cv["spans"]) == (3, 6, n_spans)
    assert [f["texts"] for f in cv["per_fold"]] == [2, 2, 2]
    assert sum(f["spans"] for f in cv["per_fold"]) == n_spans
    assert 0.0 <= cv["f1_micro"]["mean"] <= 1.0 and cv["f1_micro"]["sd"] >= 0.0
    assert cv["per_label"]["SHORT"]["support"] == n_spans
    assert any(m.startswith("cross-validation fold 3/3") for m in messages)
    assert cross_validate(examples[:3], LABELS, base=tiny_model_dir, args=args) is None
