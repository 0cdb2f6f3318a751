"""Decode-time rules: definition spans win over overlapping model spans."""

from core.model.rules import merge, rules_for
from core.text import Span, tokenize

TEXT = "We use support vector machines ( SVM ) and CNN here ."


def test_rule_spans_replace_overlapping_model_spans_and_keep_the_rest():
    model = [
        {"start": 11, "end": 30, "label": "LONG", "confidence": 0.6},  # a boundary error
        {"start": 43, "end": 46, "label": "SHORT", "confidence": 0.9},  # CNN, no rule there
    ]
    rule = [Span(7, 30, "LONG"), Span(33, 36, "SHORT")]
    merged = merge(model, rule)
    assert [(s["start"], s["end"], s["label"]) for s in merged] == [
        (7, 30, "LONG"),
        (33, 36, "SHORT"),
        (43, 46, "SHORT"),
    ]
    assert [s.get("source") for s in merged] == ["rule", "rule", None]


def test_rules_fit_the_acronym_label_space_only():
    assert rules_for(["SHORT", "LONG"]) == "acronym"
    assert rules_for(["CONCEPT"]) is None


def test_predict_follows_the_models_setting_and_can_turn_rules_off(tiny_model_dir):
    from core.model.finetune import TrainArgs, finetune
    from core.model.predict import predict

    words = tokenize(TEXT)
    result = finetune(
        [(TEXT, words, [])], ["SHORT", "LONG"], base=tiny_model_dir, args=TrainArgs(epochs=1)
    )
    assert result.model.info["decode_rules"] == "acronym"
    with_rules = predict(result.model, [(TEXT, words)])[0]
    assert {(s["start"], s["end"], s["label"]) for s in with_rules.spans} >= {
        (7, 30, "LONG"),
        (33, 36, "SHORT"),
    }
    assert with_rules.tags[2:6] == ["B-LONG", "I-LONG", "I-LONG", "O"]
    plain = predict(result.model, [(TEXT, words)], rules=False)[0]
    assert all(s.get("source") != "rule" for s in plain.spans)
