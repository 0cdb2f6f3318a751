"""Rules the model uses: evidence features at its input, high-precision spans at decoding.

Evidence: a model whose label space has a weak labeler here (`evidence_for`) sees, for every
word, the BIO tag that labeler gives it, as a learned input embedding (core.model.backbone).
The rule's opinion is then one more input the model weighs, trained on gold labels, rather
than a pattern it must rediscover from a few hundred sentences. For concepts it also brings
what a window of 128 sub-tokens cannot show the model: how often a phrase recurs in its
document and how rare it is in the corpus (TF-IDF).

Decode-time rules: high-precision rule spans merged into a model's predictions.

A learned tagger trained on a few hundred sentences misplaces long-form boundaries about ten
times more often than a Schwartz-Hearst style definition rule, whose spans are ~95% precise
(core.weak.acronyms). Where the rule finds a definition, its spans win over overlapping
model spans; everywhere else the model's spans stay, except for the labels a rule set
*vouches* for (`VOUCHED`): a model span of such a label that no rule span of that label
overlaps is kept only when the model is sure of it (confidence >= the threshold). For
acronyms that label is LONG: the rule's long forms are precise (~92% on SDU@AAAI-22, text it
was not written on), the model's long forms outside any rule definition mostly are not.
The threshold 0.95 was picked on held-out training texts of both acronym benchmarks
(two seeds each; SciAD picked 0.95 and 1.0, SDU@AAAI-22 0.98 and 1.0; docs/benchmarks.md). A model
carries the name of its rule set in `info["decode_rules"]`, so predictions from the CLI,
the queue and the UI agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from core.text import Span, Word, spans_to_bio

RuleSet = Callable[[str, Sequence[Word]], list[Span]]


def _acronym_definitions(text: str, words: Sequence[Word]) -> list[Span]:
    from core.weak.acronyms import find_definitions

    return [span for pair in find_definitions(text, list(words)) for span in pair]


RULE_SETS: dict[str, RuleSet] = {"acronym": _acronym_definitions}
# Which rule set fits a label space.
RULES_FOR_LABELS: dict[tuple[str, ...], str] = {("SHORT", "LONG"): "acronym"}


# Per rule set, {label: confidence a model span of that label needs where the rule has no
# span of that label overlapping it}.
VOUCHED: dict[str, dict[str, float]] = {"acronym": {"LONG": 0.95}}


def rules_for(labels: Sequence[str]) -> str | None:
    return RULES_FOR_LABELS.get(tuple(labels))


# Label spaces whose weak labeler serves as evidence, and its name. The acronym rules need
# nothing but the text; the concept evidence (TF-IDF keyphrases, core.weak.concepts) needs
# IDFs fitted on a corpus, its `state`, which travels with the model (Tagger.evidence_state).
EVIDENCE_FOR_LABELS: dict[tuple[str, ...], str] = {
    ("SHORT", "LONG"): "acronym",
    ("CONCEPT",): "concept",
}


# Evidence given by default. Concept evidence is there to ask for (evidence=True): on Inspec
# it gained 0.6-1.2 F1 at 200 abstracts on every base but cost the pretrained bases 1.3-1.6 at
# 50, and on SemEval-2017 (one seed) it moved F1 by -1.2 to +0.8 (docs/benchmarks.md).
EVIDENCE_BY_DEFAULT = frozenset({"acronym"})


def evidence_for(labels: Sequence[str]) -> str | None:
    """The evidence labeler that fits a label space, if any."""
    return EVIDENCE_FOR_LABELS.get(tuple(labels))


def evidence_choice(labels: Sequence[str], wanted: bool | None = None) -> str | None:
    """The evidence a model of this label space takes: `wanted` True = its evidence labeler,
    False = none, None = the default (EVIDENCE_BY_DEFAULT)."""
    name = evidence_for(labels)
    if wanted is None:
        return name if name in EVIDENCE_BY_DEFAULT else None
    return name if wanted else None


# Evidence that learns corpus statistics (fit_evidence).
FITTED_EVIDENCE = frozenset({"concept"})


def evidence_needs_corpus(labels: Sequence[str], wanted: bool | None = None) -> bool:
    """Whether the evidence a model of this label space takes (see evidence_choice) learns
    from a corpus: worth reading one for."""
    return evidence_choice(labels, wanted) in FITTED_EVIDENCE


def fit_evidence(name: str, texts: Sequence[tuple[str, Sequence[Word]]]) -> dict | None:
    """The corpus statistics evidence `name` needs, learned from (text, words) pairs, as JSON
    data; None for evidence that needs none."""
    if name not in FITTED_EVIDENCE:
        return None
    from core.weak.concepts import KeyphraseExtractor

    return KeyphraseExtractor().fit(texts).state()


def evidence_labeler(name: str, state: dict | None = None) -> RuleSet:
    """The labeler behind evidence `name`, fitted as `state` says (see fit_evidence)."""
    if name == "concept":
        from core.weak.concepts import KeyphraseExtractor

        return KeyphraseExtractor.from_state(state) if state else KeyphraseExtractor()
    from core.weak import weak_labeler

    return weak_labeler(name)


def evidence_tags(
    name: str,
    tags: Sequence[str],
    docs: Sequence[tuple[str, Sequence[Word]]],
    state: dict | None = None,
) -> list[list[int]]:
    """Per document, the index in `tags` of the evidence labeler's BIO tag for every word."""
    labeler = evidence_labeler(name, state)
    index = {t: i for i, t in enumerate(tags)}
    return [
        [index.get(t, 0) for t in spans_to_bio(list(words), labeler(text, words))]
        for text, words in docs
    ]


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
