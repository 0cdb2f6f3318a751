"""The task registry: one object per task, asked by everything that depends on the task."""

import pytest

from core.errors import ValidationError
from core.tasks import TASKS, get_task, labels_for, with_labeler
from core.weak.evidence import Evidence


def test_label_schemes():
    assert labels_for("acronym") == ["SHORT", "LONG"]
    assert labels_for("concept") == ["CONCEPT"]
    assert labels_for("custom", ["PER", " ORG "]) == ["PER", "ORG"]
    for bad in ([], ["A", "A"], ["O"], ["<b>"]):
        with pytest.raises(ValidationError):
            labels_for("custom", bad)
    with pytest.raises(ValidationError, match="unknown task"):
        labels_for("ner")
    with pytest.raises(ValidationError, match="fixed labels"):
        labels_for("acronym", ["SHORT"])


def test_every_task_says_what_follows_from_it():
    assert list(TASKS) == ["acronym", "concept", "custom"]
    assert with_labeler() == ["acronym", "concept"]
    acronym, concept, custom = TASKS.values()
    assert (acronym.rules, concept.rules, custom.rules) == ("acronym", None, None)
    assert acronym.evidence_for() == Evidence("acronym") and concept.evidence_for() is None
    assert concept.evidence_for(True) == Evidence("concept")
    assert custom.evidence is None and custom.evidence_text is None and custom.labels is None
    assert all(task.help for task in TASKS.values())
    assert acronym.evidence_text and concept.evidence_text
    assert concept.link_anchors and not acronym.link_anchors


def test_a_custom_task_is_custom_whatever_its_labels():
    """Nothing is keyed by the label tuple: SHORT,LONG make no acronym task of a custom one."""
    custom = get_task("custom")
    assert custom.label_set(["SHORT", "LONG"]) == ["SHORT", "LONG"]
    assert custom.evidence_for(True) is None and custom.rules is None
    assert custom.gold_label("short", ["SHORT", "LONG"]) == "SHORT"
    assert custom.gold_label("sf", ["SHORT", "LONG"]) is None  # no acronym spellings
    assert custom.gold_label("Chemical") == "Chemical"  # no labels given: the file's own


def test_gold_labels_map_onto_the_task():
    acronym, concept = get_task("acronym"), get_task("concept")
    assert [acronym.gold_label(x) for x in ("short", "LF", "expansion", "B-x")] == [
        "SHORT",
        "LONG",
        "LONG",
        None,
    ]
    assert concept.gold_label("KEY") == concept.gold_label("Material") == "CONCEPT"
