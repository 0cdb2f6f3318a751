"""A project's weak sources, in its own label space, and the one rule that combines them.

Aligned pretraining (Pierse & Lu, 2020) needs free labels of the task's own form. A project
with its own labels has no hand-written rule, but it has three sources that cost nothing
more than the labels it already has:

- `Dictionary`: every span string the annotators labeled is an entry for its label, matched
  over all of the project's texts, longest match first. Case is handled deliberately: a word
  with a capital after its first letter ("PD", "mRNA", "HbA1c") keeps its case, any other
  word is folded, so "Aspirin" at the start of a sentence matches "aspirin". Each entry's
  precision is estimated on the labeled texts themselves (how often its matches there are
  labeled with its label); entries whose matches are mostly unlabeled are dropped.
- `Patterns`: the user's terms and patterns (core.weak.patterns), each weighted by its
  precision on the labeled texts where it matches there.
- `ModelSpans`: the current model's confident spans (self-training), above a threshold
  chosen on labeled texts held out from that model's training (`choose_threshold`).

`assemble` lists the sources N labeled texts give, in one order, for a project
(core.labeling.weak_sources), the few-example benchmark (core.bench.loop) and the evaluation of the
sources alike; each passes what differs (which model spans, which texts weigh them).

Every source proposes spans with a weight, its estimated precision. `combine` is the
documented rule: proposals of the same span and label from different sources add up as
independent evidence (noisy-or: 1 - prod(1 - w)); then the heaviest proposals are kept
greedily, longer first on ties, without overlaps, down to `min_weight` (0.5: a kept span is
more likely right than wrong by every estimate we have).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.text import Span, Word
from core.weak.patterns import Pattern, match

Doc = tuple[str, Sequence[Word]]
Labeled = tuple[str, Sequence[Word], Sequence[Span]]
Scored = list[tuple[Span, float]]  # a model's spans with their confidences

MIN_WEIGHT = 0.5
UNSEEN_PATTERN_WEIGHT = 0.75  # a pattern that never matches a labeled text: trusted, not sure


@dataclass(frozen=True, order=True)
class Proposal:
    weight: float
    span: Span


def scored_spans(spans: Iterable[dict]) -> Scored:
    """A model's predicted span dicts ({start, end, label, confidence}) as (Span, confidence)."""
    return [
        (Span(s["start"], s["end"], s["label"]), float(s.get("confidence", 1.0))) for s in spans
    ]


def smoothed_precision(correct: int, matches: int) -> float:
    """(correct + 1) / (matches + 2): one match that is right is not yet certainty."""
    return (correct + 1) / (matches + 2)


def _fold(word: str) -> str:
    return word if any(c.isupper() for c in word[1:]) else word.lower()


class Dictionary:
    """Longest-match tagger of the project's own labeled strings (see the module doc)."""

    name = "dictionary"

    def __init__(self, entries: Mapping[tuple[str, ...], tuple[str, float]]) -> None:
        self.entries = dict(entries)  # folded words -> (label, weight)
        self._longest: dict[str, int] = {}
        for key in self.entries:
            self._longest[key[0]] = max(self._longest.get(key[0], 0), len(key))

    def __len__(self) -> int:
        return len(self.entries)

    def _matches(self, words: Sequence[Word], entries: Mapping) -> list[tuple[int, int, tuple]]:
        keys = [_fold(w.text) for w in words]
        out, i, n = [], 0, len(words)
        while i < n:
            for size in range(min(self._longest.get(keys[i], 0), n - i), 0, -1):
                key = tuple(keys[i : i + size])
                if key in entries:
                    out.append((i, i + size, key))
                    i += size
                    break
            else:
                i += 1
        return out

    def propose(self, docs: Sequence[Doc]) -> list[list[Proposal]]:
        out = []
        for _, words in docs:
            found = []
            for a, b, key in self._matches(words, self.entries):
                label, weight = self.entries[key]
                found.append(Proposal(weight, Span(words[a].start, words[b - 1].end, label)))
            out.append(found)
        return out

    @classmethod
    def build(cls, labeled: Sequence[Labeled], *, min_precision: float = MIN_WEIGHT) -> Dictionary:
        """Entries from the labeled spans, kept where their estimated precision reaches
        `min_precision` on the labeled texts (smoothed_precision of their matches there)."""
        votes: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for _, words, spans in labeled:
            for sp in spans:
                inside = [w.text for w in words if w.start >= sp.start and w.end <= sp.end]
                if inside:
                    votes[tuple(_fold(t) for t in inside)][sp.label] += 1
        every = cls({k: (c.most_common(1)[0][0], 1.0) for k, c in votes.items()})
        seen: Counter = Counter()
        right: Counter = Counter()
        for _, words, spans in labeled:
            gold = set(spans)
            for a, b, key in every._matches(words, every.entries):
                seen[key] += 1
                label = every.entries[key][0]
                right[key] += Span(words[a].start, words[b - 1].end, label) in gold
        kept = {}
        for key, (label, _) in every.entries.items():
            weight = smoothed_precision(right[key], seen[key])
            if weight >= min_precision:
                kept[key] = (label, weight)
        return cls(kept)

    def describe(self) -> dict:
        per_label = Counter(label for label, _ in self.entries.values())
        return {"entries": len(self), "per_label": dict(sorted(per_label.items()))}


class Patterns:
    """The user's patterns (core.weak.patterns), weighted by precision on labeled texts."""

    name = "patterns"

    def __init__(self, patterns: Sequence[Pattern], weights: Mapping[int, float] | None = None):
        self.patterns = list(patterns)
        self.weights = dict(weights or {})  # by position in `patterns`

    def __len__(self) -> int:
        return len(self.patterns)

    def weight(self, k: int) -> float:
        return self.weights.get(k, UNSEEN_PATTERN_WEIGHT)

    def fit(self, labeled: Sequence[Labeled]) -> Patterns:
        """Estimate each pattern's precision where it matches the labeled texts."""
        weights = {}
        for k, p in enumerate(self.patterns):
            hits = right = 0
            for text, words, spans in labeled:
                found = match(p, text, words)
                hits += len(found)
                right += len(set(found) & set(spans))
            if hits:
                weights[k] = smoothed_precision(right, hits)
        return Patterns(self.patterns, weights)

    def propose(self, docs: Sequence[Doc]) -> list[list[Proposal]]:
        return [
            [
                Proposal(self.weight(k), sp)
                for k, p in enumerate(self.patterns)
                for sp in match(p, text, words)
            ]
            for text, words in docs
        ]

    def describe(self) -> dict:
        return {"patterns": len(self), "weighted": len(self.weights)}


class LabelerSource:
    """A built-in labeler (core.weak: the acronym rule, keyphrases) as one source, weighted by
    its precision on the labeled texts, but never below MIN_WEIGHT: aligned pretraining was
    measured with these rules' every span (keyphrases are right about a third of the time
    and still help), so alone a rule's spans all pass; its precision only ranks it against
    the other sources where they disagree."""

    def __init__(self, labeler: Callable, name: str, weight: float = UNSEEN_PATTERN_WEIGHT):
        self.labeler, self.name, self.weight = labeler, name, weight

    def fit(self, labeled: Sequence[Labeled]) -> LabelerSource:
        hits = right = 0
        for text, words, spans in labeled:
            found = set(self.labeler(text, words))
            hits += len(found)
            right += len(found & set(spans))
        weight = smoothed_precision(right, hits) if hits else self.weight
        return LabelerSource(self.labeler, self.name, max(weight, MIN_WEIGHT))

    def propose(self, docs: Sequence[Doc]) -> list[list[Proposal]]:
        return [[Proposal(self.weight, sp) for sp in self.labeler(t, w)] for t, w in docs]

    def describe(self) -> dict:
        return {"weight": round(self.weight, 3)}


@dataclass
class ModelSpans:
    """A model's spans at or above `threshold`, each weighted by the held-out `precision`.

    `predict` maps documents to their scored spans (core.model.predict does this for a
    saved model version).
    """

    predict: Callable[[Sequence[Doc]], list[Scored]]
    threshold: float
    precision: float
    name: str = field(default="model")

    def propose(self, docs: Sequence[Doc]) -> list[list[Proposal]]:
        return [
            [Proposal(self.precision, sp) for sp, conf in scored if conf >= self.threshold]
            for scored in self.predict(docs)
        ]

    def describe(self) -> dict:
        return {"threshold": round(self.threshold, 3), "precision": round(self.precision, 3)}


def assemble(
    labeled: Sequence[Labeled],
    *,
    builtin: LabelerSource | None = None,
    patterns: Sequence[Pattern] = (),
    model: ModelSpans | None = None,
) -> list:
    """The weak sources that `labeled` texts give, in the one order every caller uses: the
    task's `builtin` labeler (core.labeling.weak_sources.builtin_source) and the user's `patterns`,
    each weighted by its precision on them; their dictionary (none without labeled texts);
    and a `model`'s confident spans, its threshold chosen by the caller on texts it did not
    train on."""
    sources: list = [builtin.fit(labeled)] if builtin is not None else []
    if labeled:
        sources.append(Dictionary.build(labeled))
    if patterns:
        sources.append(Patterns(patterns).fit(labeled))
    if model is not None:
        sources.append(model)
    return sources


def choose_threshold(
    scored: Sequence[Scored], gold: Sequence[Iterable[Span]], *, beta: float = 0.5
) -> tuple[float, float]:
    """(threshold, precision) maximising F-beta of the spans at or above the threshold.

    beta = 0.5 weighs precision twice as much as recall: weak labels for pretraining cost
    more when wrong than when missing. Held-out texts only: on its own training texts a model
    is confidently right.
    """
    gold_sets = [set(g) for g in gold]
    n_gold = sum(len(g) for g in gold_sets)
    flat = sorted(
        ((conf, sp in g) for doc, g in zip(scored, gold_sets, strict=True) for sp, conf in doc),
        reverse=True,
    )
    best = (-1.0, 1.0, 0.0)  # (f, threshold, precision)
    tp = 0
    b2 = beta * beta
    for k, (conf, ok) in enumerate(flat, 1):
        tp += ok
        if k < len(flat) and flat[k][0] == conf:
            continue  # a threshold keeps every span of the same confidence
        p, r = tp / k, tp / n_gold if n_gold else 0.0
        f = (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0
        if f > best[0]:
            best = (f, conf, p)
    return best[1], best[2]


def combine(
    per_source: Sequence[Sequence[Proposal]], *, min_weight: float = MIN_WEIGHT
) -> list[Span]:
    """One document's spans from every source's proposals (the rule in the module doc)."""
    total: dict[Span, float] = {}
    for proposals in per_source:
        mine: dict[Span, float] = {}
        for p in proposals:  # within a source the best weight counts, once
            mine[p.span] = max(mine.get(p.span, 0.0), p.weight)
        for sp, w in mine.items():
            total[sp] = 1 - (1 - total.get(sp, 0.0)) * (1 - w)
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0].start - kv[0].end, kv[0]))
    kept: list[Span] = []
    for sp, w in ranked:
        if w < min_weight:
            break
        if all(sp.end <= k.start or sp.start >= k.end for k in kept):
            kept.append(sp)
    return sorted(kept)


class WeakSources:
    """A project's sources together: label documents, or serve as a per-text labeler.

    `prepare(docs)` labels many documents in one batch (a model source predicts in batches)
    and keeps the result, so the labeler calls that aligned pretraining makes per text are
    lookups.
    """

    def __init__(self, sources: Sequence, *, min_weight: float = MIN_WEIGHT) -> None:
        self.sources = [s for s in sources if s is not None]
        self.min_weight = min_weight
        self._cache: dict[str, list[Span]] = {}
        self.__name__ = " + ".join(s.name for s in self.sources) or "no weak sources"
        self.labeled = 0  # documents labeled so far, and how many each source proposed in
        self.hits: Counter = Counter()

    def label(self, docs: Sequence[Doc]) -> list[list[Span]]:
        proposed = [s.propose(docs) for s in self.sources]
        self.labeled += len(docs)
        for source, props in zip(self.sources, proposed, strict=True):
            self.hits[source.name] += sum(1 for p in props if p)
        return [
            combine([p[i] for p in proposed], min_weight=self.min_weight) for i in range(len(docs))
        ]

    def prepare(self, docs: Sequence[Doc], batch: int = 256) -> None:
        for i in range(0, len(docs), batch):
            chunk = docs[i : i + batch]
            for (text, _), spans in zip(chunk, self.label(chunk), strict=True):
                self._cache[text] = spans

    def __call__(self, text: str, words: Sequence[Word]) -> list[Span]:
        got = self._cache.get(text)
        return list(got) if got is not None else self.label([(text, words)])[0]

    def prepared(self, docs: Sequence[Doc]) -> tuple[WeakSources, list[str]]:
        """These sources with `docs` labeled, less those that matched none of them (named
        second: a source that matches nothing is reported, not silently used)."""
        self.prepare(docs)
        silent = self.silent()
        if not silent:
            return self, []
        kept = self.without(silent)
        kept.prepare(docs)
        return kept, silent

    def silent(self) -> list[str]:
        """Sources that proposed nothing in any document labeled so far."""
        return [s.name for s in self.sources if self.labeled and not self.hits[s.name]]

    def without(self, names: Iterable[str]) -> WeakSources:
        """The same sources less those named (e.g. the silent ones), cache emptied."""
        drop = set(names)
        kept = [s for s in self.sources if s.name not in drop]
        return WeakSources(kept, min_weight=self.min_weight)

    def describe(self) -> dict:
        return {
            s.name: {**s.describe(), "texts_with_spans": self.hits[s.name]} for s in self.sources
        }


def coverage(labels: Sequence[Sequence[Span]]) -> float:
    """The share of documents given at least one span."""
    return sum(1 for x in labels if x) / len(labels) if labels else math.nan


def cross_fitted(
    labeled: Sequence[Labeled],
    build: Callable[[Sequence[Labeled]], Sequence],
    *,
    folds: int = 5,
    min_weight: float = MIN_WEIGHT,
) -> dict[str, list[list[Span]]]:
    """Each source's spans (and the combination's) on every labeled text, from sources built
    without that text: `build(other texts)` gives the sources for each of `folds` folds.

    Scoring a dictionary on the texts it was read from would report its own labels back.
    """
    n = len(labeled)
    out: dict[str, list[list[Span]]] = defaultdict(lambda: [[] for _ in range(n)])
    folds = max(2, min(folds, n))
    for f in range(folds):
        held = [i for i in range(n) if i % folds == f]
        rest = [labeled[i] for i in range(n) if i % folds != f]
        docs = [(labeled[i][0], labeled[i][1]) for i in held]
        sources = [s for s in build(rest) if s is not None]
        proposed = {s.name: s.propose(docs) for s in sources}
        for name, props in proposed.items():
            for i, p in zip(held, props, strict=True):
                out[name][i] = combine([p], min_weight=min_weight)
        for k, i in enumerate(held):
            out["combined"][i] = combine([p[k] for p in proposed.values()], min_weight=min_weight)
    return dict(out)
