"""Query strategies: one shared contract for all of them, then each on its defining cases."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.errors import InvalidInputError
from labelloop.learn.strategies import (
    STRATEGIES,
    STRATEGY_NAMES,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    random,
)

CONFIDENT = [0.98, 0.01, 0.01]
SPREAD = [0.34, 0.33, 0.33]  # nearly uniform over 3 tags: the most uncertain overall
TWO_WAY = [0.6, 0.4, 0.0]
PROBA = np.array([CONFIDENT, SPREAD, TWO_WAY, [1.0, 0.0, 0.0]])
HEAT = [0.5, 0.5, 0.0]  # a dead heat between two tags
RANKED = np.array([CONFIDENT, SPREAD, TWO_WAY, [1.0, 0.0, 0.0], HEAT])
# Most informative first, worked out by hand:
#   entropy  0.112 1.099 0.673 0     0.693  -> 1 4 2 0 3
#   margin  -0.97 -0.01 -0.2  -1     0      -> 4 1 2 0 3
#   1-max p  0.02  0.66  0.4   0     0.5    -> 1 4 2 0 3
EXPECTED_RANKING = {"entropy": [1, 4, 2, 0, 3], "margin": [4, 1, 2, 0, 3], "least_confidence": [1, 4, 2, 0, 3]}


class TestEveryStrategy:
    """The contract every registered strategy must meet."""

    @pytest.fixture(params=STRATEGY_NAMES)
    def name(self, request):
        return request.param

    @pytest.fixture
    def strategy(self, name):
        return get_strategy(name)

    def test_one_finite_score_per_row(self, strategy):
        scores = strategy(PROBA, rng=np.random.default_rng(0))
        assert scores.shape == (4,)
        assert np.all(np.isfinite(scores))

    def test_deterministic_given_rng(self, strategy):
        first = strategy(PROBA, rng=np.random.default_rng(7))
        again = strategy(PROBA, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(first, again)

    def test_single_column_gives_equal_scores(self, strategy):
        scores = strategy(np.ones((5, 1)), rng=np.random.default_rng(0))
        assert scores.shape == (5,)
        assert np.all(np.isfinite(scores))
        if strategy is not random:  # a one-tag model is certain of everything
            assert np.ptp(scores) == 0

    def test_ranks_hand_made_rows(self, name, strategy):
        scores = strategy(RANKED, rng=np.random.default_rng(0))
        if name == "random":  # no preference: the scores ignore the probabilities
            shuffled = strategy(RANKED[::-1], rng=np.random.default_rng(0))
            np.testing.assert_array_equal(scores, shuffled)
        else:
            assert list(np.argsort(-scores, kind="stable")) == EXPECTED_RANKING[name]

    def test_no_rows(self, strategy):
        assert strategy(np.zeros((0, 3)), rng=np.random.default_rng(0)).shape == (0,)

    @pytest.mark.parametrize("bad", [np.array([0.5, 0.5]), np.array([[0.5, np.nan]]), np.zeros((2, 0))])
    def test_rejects_malformed_probabilities(self, strategy, bad):
        with pytest.raises(InvalidInputError):
            strategy(bad, rng=np.random.default_rng(0))



def test_registry_and_lookup():
    assert set(STRATEGY_NAMES) == {"entropy", "margin", "least_confidence", "random"}
    for name, function in STRATEGIES.items():
        assert get_strategy(name) is function
    with pytest.raises(InvalidInputError, match="known: entropy, margin, least_confidence, random"):
        get_strategy("uncertainty")


def test_entropy_values():
    scores = entropy(PROBA)
    # SPREAD: -(0.34 ln 0.34 + 2 * 0.33 ln 0.33) = 0.366795 + 2 * 0.365858 = 1.098512;
    # one-hot row: exactly 0.
    assert scores[1] == pytest.approx(-(0.34 * np.log(0.34) + 2 * 0.33 * np.log(0.33)))
    assert scores[1] == pytest.approx(1.098512, abs=1e-6)
    assert scores[3] == 0.0
    assert np.argmax(scores) == 1
    assert list(np.argsort(-scores)) == [1, 2, 0, 3]


def test_margin_values_and_tie_breaking():
    scores = margin(PROBA)
    np.testing.assert_allclose(scores, [-0.97, -0.01, -0.2, -1.0])
    # A dead heat between two tags is the most informative row for margin.
    assert margin(np.array([[0.5, 0.5, 0.0], [0.34, 0.33, 0.33]])).tolist() == pytest.approx([0.0, -0.01])


def test_least_confidence_values():
    np.testing.assert_allclose(least_confidence(PROBA), [0.02, 0.66, 0.4, 0.0])


def test_margin_and_entropy_disagree_on_their_defining_case():
    # A hesitates between exactly two tags (gap 0, entropy ln 2 = 0.693);
    # B is spread over three (gap 0.1, entropy 0.4*0.916 + 2*0.3*1.204 = 1.089).
    a_b = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert margin(a_b)[0] > margin(a_b)[1]
    assert entropy(a_b)[1] > entropy(a_b)[0]
    # least confidence (0.5 vs 0.6) sides with entropy here
    assert least_confidence(a_b)[1] > least_confidence(a_b)[0]


def test_least_confidence_and_entropy_disagree():
    # C: max 0.5 with the rest spread thin -> lc 0.5,  entropy 0.347 + 4 * 0.260 = 1.386;
    # D: max 0.45 with one close rival   -> lc 0.55, entropy 0.359 + 0.363 + 0.254 = 0.977.
    c_d = np.array([[0.5, 0.125, 0.125, 0.125, 0.125], [0.45, 0.43, 0.12, 0.0, 0.0]])
    assert least_confidence(c_d)[1] > least_confidence(c_d)[0]
    assert entropy(c_d)[0] > entropy(c_d)[1]


def test_random_is_uniform_and_depends_on_the_seed():
    proba = np.tile(CONFIDENT, (20_000, 1))
    scores = random(proba, rng=np.random.default_rng(1))
    assert scores.min() >= 0.0 and scores.max() < 1.0
    assert scores.mean() == pytest.approx(0.5, abs=0.01)
    assert np.histogram(scores, bins=4, range=(0, 1))[0] == pytest.approx([5000] * 4, rel=0.05)
    assert not np.array_equal(scores, random(proba, rng=np.random.default_rng(2)))
    np.testing.assert_array_equal(random(proba, rng=5), random(proba, rng=np.random.default_rng(5)))
