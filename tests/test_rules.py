"""Decode-time rules: definition spans win over overlapping model spans."""

from core.model.rules import RULE_SETS, VOUCHED, apply_rules, merge
from core.tasks import TASKS
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


def test_a_vouched_label_needs_the_rule_or_a_sure_model():
    text = "A hidden Markov model and a neural network tag LSTM outputs ."
    words = tokenize(text)
    assert apply_rules("acronym", text, words, []) == []  # no definition: the rule is silent
    threshold = VOUCHED["acronym"]["LONG"]
    unsure = {"start": 2, "end": 21, "label": "LONG", "confidence": threshold - 0.1}
    sure = {"start": 28, "end": 42, "label": "LONG", "confidence": threshold}
    short = {"start": 47, "end": 51, "label": "SHORT", "confidence": 0.5}
    merged = apply_rules("acronym", text, words, [unsure, sure, short])
    assert merged == [sure, short]  # the unsure long form goes; short forms are not vouched
    assert merge([unsure, sure, short], []) == [unsure, sure, short]  # merge alone keeps all


def test_a_long_form_the_rule_finds_replaces_the_models_whatever_its_confidence():
    words = tokenize(TEXT)
    model = [{"start": 11, "end": 30, "label": "LONG", "confidence": 0.99}]
    merged = apply_rules("acronym", TEXT, words, model)
    assert [(s["start"], s["end"], s["label"], s["source"]) for s in merged] == [
        (7, 30, "LONG", "rule"),
        (33, 36, "SHORT", "rule"),
    ]


def test_rules_are_the_acronym_task_s_only():
    assert {name: task.rules for name, task in TASKS.items()} == {
        "acronym": "acronym",
        "concept": None,
        "custom": None,
    }
    assert set(RULE_SETS) == {"acronym"}


def test_predict_follows_the_models_setting_and_can_turn_rules_off(tiny_model_dir):
    from core.model.finetune import TrainArgs, finetune
    from core.model.predict import predict

    words = tokenize(TEXT)
    result = finetune(
        [(TEXT, words, [])],
        ["SHORT", "LONG"],
        task="acronym",
        base=tiny_model_dir,
        args=TrainArgs(epochs=1),
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
