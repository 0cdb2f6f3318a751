"""Span P/R/F1 against numbers worked out by hand."""

import json

import pytest

from core.metrics import span_prf
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
