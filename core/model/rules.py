"""Decode-time rules: high-precision rule spans merged into a model's predictions.

A learned tagger trained on a few hundred sentences misplaces long-form boundaries about ten
times more often than a Schwartz-Hearst style definition rule, whose spans are ~95% precise
(core.weak.acronyms). Where the rule finds a definition, its spans win over overlapping
model spans; everywhere else the model's spans stay, except for the labels a rule set
*vouches* for (`VOUCHED`): a model span of such a label that no rule span of that label
overlaps is kept only when the model is sure of it (confidence >= the threshold). For
acronyms that label is LONG: the rule's long forms are precise (~92% on SDU@AAAI-22, text it
was not written on), the model's long forms outside any rule definition mostly are not.
The threshold 0.95 was picked on held-out training texts of both acronym benchmarks
(two seeds each; SciAD picked 0.95 and 1.0, SDU@AAAI-22 0.98 and 1.0; docs/benchmarks.md).

Which rule set a model gets is its task's (core.tasks: `Task.rules`), never its labels'. A
model carries the name of its rule set in `info["decode_rules"]`, so predictions from the
CLI, the queue and the UI agree. The rules a model takes at its input are its evidence
(core.weak.evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from core.text import Span, Word
from core.weak.acronyms import find_definitions

RuleSet = Callable[[str, Sequence[Word]], list[Span]]


def _acronym_definitions(text: str, words: Sequence[Word]) -> list[Span]:
    return [span for pair in find_definitions(text, list(words)) for span in pair]


RULE_SETS: dict[str, RuleSet] = {"acronym": _acronym_definitions}

# Per rule set, {label: confidence a model span of that label needs where the rule has no
# span of that label overlapping it}.
VOUCHED: dict[str, dict[str, float]] = {"acronym": {"LONG": 0.95}}


def _overlaps(sp: dict, rule: Span) -> bool:
    return sp["start"] < rule.end and rule.start < sp["end"]


def merge(
    model_spans: Sequence[dict],
    rule_spans: Sequence[Span],
    vouched: Mapping[str, float] | None = None,
) -> list[dict]:
    """Rule spans plus the model spans that overlap none of them, sorted by start.

    `vouched` {label: threshold}: a model span of such a label needs a rule span of the same
    label overlapping it (which then replaces it) or a confidence >= the threshold.
    """
    vouched = vouched or {}
    out = [
        {"start": s.start, "end": s.end, "label": s.label, "confidence": 1.0, "source": "rule"}
        for s in rule_spans
    ]
    for sp in model_spans:
        if any(_overlaps(sp, r) for r in rule_spans):
            continue
        if sp["label"] in vouched and sp["confidence"] < vouched[sp["label"]]:
            continue
        out.append(sp)
    return sorted(out, key=lambda s: (s["start"], s["end"]))


def apply_rules(name: str, text: str, words: Sequence[Word], model_spans: Sequence[dict]):
    """A model's spans for one document with rule set `name` applied at decoding."""
    return merge(model_spans, RULE_SETS[name](text, words), VOUCHED.get(name))
