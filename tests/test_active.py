"""Query strategies on literal probability arrays."""

import numpy as np
import pytest

from core.active import strategies as active
from core.active.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    bald,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    register,
    score_documents,
    select,
)
from core.errors import EmptyPoolError, UnknownStrategyError

CONFIDENT = [0.9, 0.05, 0.05]
UNSURE = [0.4, 0.35, 0.25]


def test_least_confidence():
    assert least_confidence(np.array([CONFIDENT, UNSURE])) == pytest.approx([0.1, 0.6])


def test_margin():
    assert margin(np.array([CONFIDENT, UNSURE])) == pytest.approx([0.15, 0.95])


def test_entropy_is_normalised():
    scores = entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], UNSURE]))
    assert scores[0] == pytest.approx(0.0, abs=1e-9)
    assert scores[1] == pytest.approx(1.0)
    assert 0.9 < scores[2] < 1.0


def test_bald_separates_disagreement_from_shared_doubt():
    agree = [[0.95, 0.05], [0.95, 0.05]]
    disagree = [[1.0, 0.0], [0.0, 1.0]]
    both_unsure = [[0.5, 0.5], [0.5, 0.5]]
    samples = np.array([[agree[s], disagree[s], both_unsure[s]] for s in range(2)])
    scores = bald(samples)  # (samples=2, words=3, tags=2)
    assert scores[0] == pytest.approx(0.0, abs=1e-9)
    assert scores[1] == pytest.approx(np.log(2))
    assert scores[2] == pytest.approx(0.0, abs=1e-9)


def test_aggregates():
    doc = np.array([CONFIDENT, UNSURE])  # least confidence 0.1 and 0.6
    short = np.array([UNSURE])
    for agg, expected in {"max": [0.6, 0.6], "mean": [0.35, 0.6], "sum": [0.7, 0.6]}.items():
        got = score_documents([doc, short], strategy="least_confidence", aggregate=agg)
        assert got == pytest.approx(expected), agg


def test_expected_errors_counts_every_doubtful_word():
    one_doubt = np.array([CONFIDENT] * 4 + [UNSURE])  # least confidence 0.1 x 4 and 0.6
    three_doubts = np.array([CONFIDENT] * 2 + [[0.5, 0.3, 0.2]] * 3)  # 0.1 x 2 and 0.5 x 3
    docs = [one_doubt, three_doubts]
    assert get_strategy("expected_errors").aggregate == "sum"
    assert score_documents(docs, strategy="expected_errors") == pytest.approx([1.0, 1.7])
    # its own aggregate: least confidence (max) prefers the single doubt, it the three
    assert select(score_documents(docs, strategy="least_confidence"), 1) == [0]
    assert select(score_documents(docs, strategy="expected_errors"), 1) == [1]


def test_default_prefers_the_uncertain_document():
    sure = np.array([CONFIDENT] * 5)
    one_doubt = np.array([CONFIDENT] * 4 + [UNSURE])
    assert list(select(score_documents([sure, one_doubt]), 1)) == [1]


def test_empty_document_scores_zero_and_empty_pool_raises():
    got = score_documents([np.zeros((0, 3)), np.array([UNSURE])], strategy="entropy")
    assert got[0] == 0.0 and got[1] > 0
    with pytest.raises(EmptyPoolError):
        score_documents([])
    with pytest.raises(EmptyPoolError):
        select([], 3)


def test_random_is_per_document_and_seeded():
    docs = [np.array([CONFIDENT] * k) for k in (1, 50, 3)]
    a = score_documents(docs, strategy="random", seed=7)
    b = score_documents(docs, strategy="random", seed=7)
    assert a.shape == (3,) and np.array_equal(a, b)


def test_bald_needs_samples():
    doc = np.array([UNSURE])
    with pytest.raises(ValueError):
        score_documents([doc], strategy="bald")
    samples = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    got = score_documents([doc], strategy="bald", samples_list=[samples])
    assert got[0] == pytest.approx(np.log(2))


def test_registry_plugs_in_a_strategy():
    assert {"least_confidence", "margin", "entropy", "bald", "random"} <= set(STRATEGIES)

    @register("first_tag")
    def first_tag(probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs)[:, 0]

    try:
        doc = np.array([CONFIDENT, UNSURE])
        got = score_documents([doc], strategy="first_tag", aggregate="sum")
        assert got == pytest.approx([1.3])
    finally:
        del STRATEGIES["first_tag"]
    with pytest.raises(UnknownStrategyError, match="choose one of random, least_confidence"):
        score_documents([np.array([UNSURE])], strategy="no_such_strategy")


def test_every_strategy_explains_itself_and_random_needs_no_model():
    assert all(s.help for s in STRATEGIES.values())
    assert get_strategy(DEFAULT_STRATEGY).needs_model
    assert not get_strategy("random").needs_model and get_strategy("bald").needs_samples
    with pytest.raises(UnknownStrategyError):
        get_strategy("no_such_strategy")


def test_select_order_ties_and_nan():
    assert select([0.2, 0.9, 0.9, float("nan"), 0.5], 4) == [1, 2, 4, 0]
    assert select([0.1, 0.2], 5) == [1, 0]
    assert select([0.1], 0) == []


def test_select_diversity_skips_near_duplicates():
    texts = [
        "BERT is a language model by Google",
        "BERT is a language model by Google .",  # same word set as 0
        "We use CRF for sequence tagging",
        "GPT is a decoder",
    ]
    scores = [0.9, 0.8, 0.7, 0.1]
    assert select(scores, 3) == [0, 1, 2]
    assert select(scores, 3, texts=texts, diversity=True) == [0, 2, 3]
    # When the pool runs out of distinct texts, the duplicates fill the batch.
    assert select(scores, 4, texts=texts, diversity=True) == [0, 2, 3, 1]
    with pytest.raises(ValueError):
        select(scores, 2, diversity=True)


def test_jaccard():
    assert active.jaccard(frozenset("ab"), frozenset("bc")) == pytest.approx(1 / 3)
    assert active.jaccard(frozenset(), frozenset()) == 1.0


def test_a_project_without_a_strategy_has_the_schemas_default():
    """One reading of a project's strategy everywhere (issue 26): NULL is the column's default."""
    from core import defaults
    from core.active.strategies import project_strategy, scorer_of
    from core.store.schema import Project

    assert project_strategy(Project(strategy=None)).name == defaults.STRATEGY
    assert project_strategy(Project(strategy="random")).name == "random"
    assert scorer_of(project_strategy(Project(strategy="random"))).name == "least_confidence"
    assert scorer_of(project_strategy(Project(strategy="entropy"))).name == "entropy"
