"""The tasks a project can have, each one object: its labels, weak labeler, evidence, decoding
rules and help text.

A project stores its task's name (acronym, concept or custom); everything that depends on
the task asks it here: the label set and its validation, the built-in weak labeler of
pretraining, the weak sources and `weak eval`, the evidence a model takes as input
(core.weak.evidence), the rules merged in at decoding (core.model.rules), how a labeled
file's labels map onto the task's, and what the UI says about it. Never the label tuple: a
custom project whose labels happen to be SHORT,LONG is still custom, with no acronym rule.

To add a task, add a `Task` to TASKS; its labeler is a factory of core.weak, its decoding
rules a name in core.model.rules.RULE_SETS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.errors import FewlabelError, ValidationError
from core.weak import (
    ACRONYM_LABELERS,
    CONCEPT_LABELERS,
    Labeler,
    acronym_labeler,
    concept_labeler,
)
from core.weak.acronyms import LONG, SHORT
from core.weak.concepts import CONCEPT
from core.weak.evidence import Evidence

_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,39}$")


@dataclass(frozen=True)
class Task:
    """One task: what a project of it labels and everything that follows from that."""

    name: str
    help: str  # one line for the UI's task choice
    labels: tuple[str, ...] | None = None  # None: the project's own (custom)
    labeler: Callable[..., Labeler] | None = None  # the built-in weak labeler's factory
    labelers: Mapping[str, Callable[..., Labeler]] = field(default_factory=dict)  # by name
    evidence: Evidence | None = None  # what a model may take as input
    evidence_by_default: bool = False  # whether it takes it unless told
    evidence_text: tuple[str, str] | None = None  # the Train page's checkbox: label, help
    rules: str | None = None  # decode-time rule set (core.model.rules.RULE_SETS)
    aliases: Mapping[str, str] = field(default_factory=dict)  # gold spellings (lower case)
    other_labels: str | None = None  # the label any other gold label stands for
    # whether a marked-up text's link anchors are labels of it (core.weak.plain_corpus): an
    # anchor's text names a concept, the paper's free concept labels
    link_anchors: bool = False

    def label_set(self, labels: Sequence[str] | None = None) -> list[str]:
        """The labels of a project of this task: fixed ones, or `labels` validated (custom)."""
        if self.labels is not None:
            if labels and list(labels) != list(self.labels):
                raise ValidationError(
                    f"task {self.name!r} has fixed labels {', '.join(self.labels)}"
                )
            return list(self.labels)
        cleaned = [lbl.strip() for lbl in (labels or []) if lbl.strip()]
        if not cleaned:
            raise ValidationError("a custom task needs labels, e.g. --labels PERSON,ORG")
        for lbl in cleaned:
            if not _LABEL_RE.match(lbl) or lbl.upper() == "O":
                raise ValidationError(
                    f"bad label {lbl!r}: use letters, digits, '_', '-', '.', starting with a letter"
                )
        if len(set(cleaned)) != len(cleaned):
            raise ValidationError("labels must be unique")
        return cleaned

    def weak_labeler(self, **options) -> Labeler:
        """The built-in weak labeler, for aligned pretraining and the weak sources. `corpus`
        (texts) may be given to any: labelers that need no corpus statistics ignore it."""
        if self.labeler is None:
            raise FewlabelError(
                f"no weak labeler for task {self.name!r}; choose {' or '.join(with_labeler())}"
            )
        return self.labeler(**options)

    def evidence_for(self, wanted: bool | None = None) -> Evidence | None:
        """The evidence a model of this task takes: `wanted` True = the task's, False =
        none, None = the task's default (evidence_by_default)."""
        if wanted is None:
            wanted = self.evidence_by_default
        return self.evidence if wanted else None

    def gold_label(self, label: str, labels: Sequence[str] | None = None) -> str | None:
        """The label of this task that a labeled file's `label` stands for, or None.

        Case does not matter (SciAD's "short" is SHORT); known spellings map (`aliases`); a
        custom task maps onto `labels`, or keeps the file's own labels when none are given."""
        own = self.labels or labels
        if not own:
            return label
        low = label.lower()
        for lbl in own:
            if lbl.lower() == low:
                return lbl
        return self.aliases.get(low, self.other_labels)


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "acronym",
            f"short forms and their long forms: {SHORT}, {LONG}",
            labels=(SHORT, LONG),
            labeler=acronym_labeler,
            labelers=ACRONYM_LABELERS,
            evidence=Evidence("acronym"),
            evidence_by_default=True,
            evidence_text=(
                "Show the model the acronym rule's tags",
                "Every word's tag from the built-in acronym rule is an input the model learns "
                "to trust or overrule from your labels; by far the largest gain with few "
                "labels. Turn it off if the rule misleads on your texts.",
            ),
            rules="acronym",
            # spellings of the acronym labels in public data sets
            aliases={"sf": SHORT, "acronym": SHORT, "lf": LONG, "expansion": LONG},
        ),
        Task(
            "concept",
            f"concepts of interest: {CONCEPT}",
            labels=(CONCEPT,),
            labeler=concept_labeler,
            labelers=CONCEPT_LABELERS,
            # Off by default: on Inspec it gained 0.6-1.2 F1 at 200 abstracts on every base
            # but cost the pretrained bases 1.3-1.6 at 50, and on SemEval-2017 (one seed) it
            # moved F1 by -1.2 to +0.8 (docs/benchmarks.md).
            evidence=Evidence("concept"),
            evidence_text=(
                "Show the model the keyphrase statistics' tags",
                "Every word's tag from a TF-IDF keyphrase extractor fitted on all of this "
                "project's texts is an input the model learns to trust or overrule from your "
                "labels: it tells the model which phrases recur in a text and are rare in the "
                "project. Off by default: on keyphrase benchmarks it gained about a point at "
                "200 labeled texts and lost one or two at 50 when the base was pretrained.",
            ),
            # keyphrases, SemEval's Process/Task/Material: all concepts of interest
            other_labels=CONCEPT,
            link_anchors=True,
        ),
        Task("custom", "your own labels"),
    )
}


def get_task(name: str) -> Task:
    """The task of that name; a ValidationError naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValidationError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None


def with_labeler() -> list[str]:
    """The tasks with a built-in weak labeler (and fixed labels): what pretraining from a
    corpus, `weak eval` and the benchmarks' built-in tasks know."""
    return [name for name, task in TASKS.items() if task.labeler is not None]


def labels_for(task: str, labels: Sequence[str] | None = None) -> list[str]:
    """The label set of a project of `task` (custom: `labels`, validated)."""
    return get_task(task).label_set(labels)
