"""Query strategies: per-word uncertainty from tag probabilities, aggregated per document.

Pure numpy functions over arrays, in the cleanlab/small-text style: a strategy gets a
(words, tags) probability array and returns one score per word, higher = more worth labeling.
`score_documents` turns word scores into document scores; `select` picks the next batch.
No model object is needed: `core.model.predict` produces the arrays (`word_probs`, and
`mc_probs` for BALD) and tests use literal ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import EmptyPoolError
from core.text import tokenize

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Strategy:
    """A registered word-scoring function; `needs_samples` ones take MC-dropout samples."""

    name: str
    fn: Callable[..., np.ndarray]
    needs_samples: bool = False


STRATEGIES: dict[str, Strategy] = {}


def register(
    name: str, *, needs_samples: bool = False
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator adding a word-scoring function to STRATEGIES under `name`.

    The function takes a (words, tags) array, or (samples, words, tags) when `needs_samples`,
    and returns a (words,) array of scores, higher = more uncertain.
    """

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        STRATEGIES[name] = Strategy(name, fn, needs_samples)
        return fn

    return deco


def _probs2d(probs: np.ndarray) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a (words, tags) array, got shape {arr.shape}")
    return arr


@register("least_confidence")
def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - the top tag's probability (small-text's LeastConfidence, per word)."""
    arr = _probs2d(probs)
    if arr.shape[0] == 0:
        return np.zeros(0)
    return 1.0 - arr.max(axis=1)


@register("margin")
def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (top probability - runner-up): 1 when two tags tie, 0 when one tag is certain."""
    arr = _probs2d(probs)
    if arr.shape[0] == 0:
        return np.zeros(0)
    if arr.shape[1] < 2:
        return np.zeros(arr.shape[0])
    top2 = np.sort(arr, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


@register("entropy")
def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of the tag distribution divided by log(n_tags), so 0..1 for any label set."""
    arr = _probs2d(probs)
    if arr.shape[0] == 0:
        return np.zeros(0)
    if arr.shape[1] < 2:
        return np.zeros(arr.shape[0])
    h = -(arr * np.log(np.clip(arr, _EPS, 1.0))).sum(axis=1)
    return h / np.log(arr.shape[1])


@register("bald", needs_samples=True)
def bald(samples: np.ndarray) -> np.ndarray:
    """Mutual information between tag and weights: H(mean of samples) - mean of H(sample).

    `samples` is (n_samples, words, tags) from MC dropout. High where the samples disagree
    (epistemic uncertainty), low where each sample is confident or all are equally unsure.
    Natural-log units, not normalised.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"BALD expects (samples, words, tags), got shape {arr.shape}")
    if arr.shape[1] == 0:
        return np.zeros(0)
    mean = arr.mean(axis=0)
    h_mean = -(mean * np.log(np.clip(mean, _EPS, 1.0))).sum(axis=1)
    h_each = -(arr * np.log(np.clip(arr, _EPS, 1.0))).sum(axis=2).mean(axis=0)
    return np.maximum(h_mean - h_each, 0.0)


@register("random")
def random(probs: np.ndarray, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Uniform noise per word: the baseline every strategy must beat."""
    arr = _probs2d(probs)
    return (rng or np.random.default_rng()).random(arr.shape[0])


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "max": lambda s: float(s.max()),
    "mean": lambda s: float(s.mean()),
    "sum": lambda s: float(s.sum()),
}

DEFAULT_STRATEGY = "least_confidence"
DEFAULT_AGGREGATE = "max"


def score_documents(
    word_probs_list: Sequence[np.ndarray],
    *,
    strategy: str = DEFAULT_STRATEGY,
    aggregate: str = DEFAULT_AGGREGATE,
    samples_list: Sequence[np.ndarray] | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """One uncertainty score per document, higher = label it sooner.

    Default aggregate is `max`: a span-tagging document is worth labeling when *some* word is
    uncertain, and most words are confidently O, so `mean` dilutes the one doubtful acronym
    among thirty easy words, while `sum` mostly ranks by length (long texts cost more to
    label). `max` keeps a mild length bias, the least of the three. A document without words
    scores 0. `random` draws one number per document (not per word, which under max or sum
    would favour long documents); `seed` makes it repeatable. BALD reads `samples_list`
    (`DocPrediction.mc_probs`, from predict with mc_dropout > 0).
    """
    if len(word_probs_list) == 0:
        raise EmptyPoolError("there are no documents to score")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    n = len(word_probs_list)
    if strategy == "random":
        return np.random.default_rng(seed).random(n)
    spec = STRATEGIES[strategy]
    inputs: Sequence[np.ndarray] = word_probs_list
    if spec.needs_samples:
        if samples_list is None or len(samples_list) != n:
            raise ValueError(f"strategy {strategy!r} needs MC-dropout samples for every document")
        inputs = samples_list
    agg = AGGREGATES[aggregate]
    scores = np.zeros(n, dtype=np.float64)
    for i, x in enumerate(inputs):
        word_scores = spec.fn(x)
        scores[i] = agg(word_scores) if word_scores.size else 0.0
    return scores


def _word_set(text: str) -> frozenset[str]:
    return frozenset(w.text.lower() for w in tokenize(text) if w.text.isalnum())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|; two empty sets count as identical."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def select(
    scores: Sequence[float] | np.ndarray,
    n: int,
    *,
    texts: Sequence[str] | None = None,
    diversity: bool = False,
    max_overlap: float = 0.8,
) -> list[int]:
    """Indices of the `n` highest scores, best first; ties go to the lower index.

    With `diversity`, a candidate whose word set overlaps an already-picked text by a Jaccard
    similarity above `max_overlap` is passed over (near-duplicates would spend two labels on
    one lesson); passed-over ones fill the batch only when the pool runs out of others.
    NaN scores rank last.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        raise EmptyPoolError("there is nothing left to select from")
    if n <= 0:
        return []
    keyed = np.where(np.isnan(arr), -np.inf, arr)
    order = [int(i) for i in np.argsort(-keyed, kind="stable")]
    if not diversity:
        return order[:n]
    if texts is None or len(texts) != arr.size:
        raise ValueError("diversity needs one text per score")
    picked: list[int] = []
    picked_sets: list[frozenset[str]] = []
    deferred: list[int] = []
    for i in order:
        if len(picked) == n:
            break
        words = _word_set(texts[i])
        if any(jaccard(words, s) > max_overlap for s in picked_sets):
            deferred.append(i)
            continue
        picked.append(i)
        picked_sets.append(words)
    picked.extend(deferred[: n - len(picked)])
    return picked
