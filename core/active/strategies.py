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

from core import defaults
from core.errors import EmptyPoolError, UnknownStrategyError
from core.text import tokenize

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Strategy:
    """A registered query strategy: its name, a one-line help for the CLI and the Train page,
    and its word-scoring function.

    `fn` is None for `random`, which orders documents by chance and needs no model;
    `needs_samples` ones take MC-dropout samples (`core.defaults.BALD_SAMPLES` passes).
    `aggregate` (a key of AGGREGATES) turns its word scores into the document's score.
    """

    name: str
    help: str
    fn: Callable[..., np.ndarray] | None
    needs_samples: bool = False
    aggregate: str = "max"

    @property
    def needs_model(self) -> bool:
        return self.fn is not None


# `random` is the baseline every strategy must beat: one draw per document (a draw per word
# would, under max or sum, favour long documents).
STRATEGIES: dict[str, Strategy] = {
    "random": Strategy("random", "import order, shuffled: no model needed", None),
}
DEFAULT_STRATEGY = defaults.STRATEGY


def register(
    name: str, *, help: str = "", needs_samples: bool = False, aggregate: str = "max"
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator adding a word-scoring function to STRATEGIES under `name`.

    The function takes a (words, tags) array, or (samples, words, tags) when `needs_samples`,
    and returns a (words,) array of scores, higher = more uncertain; `aggregate` makes them
    one score per document (see score_documents). `help` defaults to the first line of its
    docstring.
    """

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        text = help or (fn.__doc__ or name).strip().splitlines()[0]
        STRATEGIES[name] = Strategy(name, text, fn, needs_samples, aggregate)
        return fn

    return deco


def get_strategy(name: str) -> Strategy:
    """The registered strategy `name`; an unknown name raises the one error that lists them."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None


def project_strategy(project) -> Strategy:
    """The strategy that orders a project's queue. A project without one (NULL: a row not yet
    flushed, or written around the ORM) has the schema's default, defaults.STRATEGY."""
    return get_strategy(project.strategy or DEFAULT_STRATEGY)


def scorer_of(strategy: Strategy) -> Strategy:
    """The strategy a model scores texts with under `strategy`: itself, or least confidence
    for one that needs no model (random keeps its order but the UI still shows uncertainty)."""
    return strategy if strategy.needs_model else get_strategy("least_confidence")


def _word_scores(
    fn: Callable[[np.ndarray], np.ndarray],
) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a scorer of a non-empty (words, tags) array with at least two tags: shape checked,
    no words -> no scores, one tag -> nothing to doubt."""

    def wrapped(probs: np.ndarray) -> np.ndarray:
        arr = np.asarray(probs, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"expected a (words, tags) array, got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] < 2:
            return np.zeros(arr.shape[0])
        return fn(arr)

    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


@register("least_confidence", help="the words the model is least sure of")
@_word_scores
def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - the top tag's probability (small-text's LeastConfidence, per word)."""
    return 1.0 - probs.max(axis=1)


@register(
    "expected_errors",
    help="the most words the model is likely to get wrong (favours long, busy texts)",
    aggregate="sum",
)
@_word_scores
def expected_errors(probs: np.ndarray) -> np.ndarray:
    """1 - the top tag's probability per word, summed over the document: the number of words
    the model is expected to tag wrongly, i.e. the corrections one label brings. Where the
    budget is counted in texts this beats `least_confidence` (its max finds the single
    doubtful word), at the cost of longer texts (docs/benchmarks.md, BC5CDR)."""
    return 1.0 - probs.max(axis=1)


@register("margin", help="the smallest gap between the two likeliest tags")
@_word_scores
def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (top probability - runner-up): 1 when two tags tie, 0 when one tag is certain."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


@register("entropy", help="the most spread-out tag distribution")
@_word_scores
def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of the tag distribution divided by log(n_tags), so 0..1 for any label set."""
    h = -(probs * np.log(np.clip(probs, _EPS, 1.0))).sum(axis=1)
    return h / np.log(probs.shape[1])


@register(
    "bald",
    help=f"disagreement between dropout samples ({defaults.BALD_SAMPLES} extra passes per text)",
    needs_samples=True,
)
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


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "max": lambda s: float(s.max()),
    "mean": lambda s: float(s.mean()),
    "sum": lambda s: float(s.sum()),
}


def score_documents(
    word_probs_list: Sequence[np.ndarray],
    *,
    strategy: str = DEFAULT_STRATEGY,
    aggregate: str | None = None,
    samples_list: Sequence[np.ndarray] | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """One uncertainty score per document, higher = label it sooner.

    `aggregate` None takes the strategy's own. Most strategies aggregate by `max`: a
    span-tagging document is worth labeling when *some* word is uncertain, and most words are
    confidently O, so `mean` dilutes the one doubtful acronym among thirty easy words, while
    `sum` leans to length (long texts cost more to label; `expected_errors` takes that cost
    on purpose). `max` keeps a mild length bias, the least of the three. A document without words
    scores 0. `random` draws one number per document (not per word, which under max or sum
    would favour long documents); `seed` makes it repeatable. BALD reads `samples_list`
    (`DocPrediction.mc_probs`, from predict with mc_dropout > 0).
    """
    if len(word_probs_list) == 0:
        raise EmptyPoolError("there are no documents to score")
    spec = get_strategy(strategy)
    aggregate = aggregate or spec.aggregate
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    n = len(word_probs_list)
    if spec.fn is None:
        return np.random.default_rng(seed).random(n)
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
