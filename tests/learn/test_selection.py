"""Selection: serving order from scores (exploration, diversity) and the cold-start order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labelloop.errors import InvalidInputError
from labelloop.learn.selection import cold_start_order, priorities_from_order, queue_order


def assert_permutation(order: np.ndarray, n: int) -> None:
    assert order.shape == (n,)
    assert np.issubdtype(order.dtype, np.integer)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def grouped_features(groups: int, per_group: int, dim: int = 40, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Rows of group g point along basis vector g (plus optional noise): near-duplicates within a group."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((groups * per_group, dim))
    for g in range(groups):
        rows[g * per_group : (g + 1) * per_group, g] = 1.0
    return rows + noise * rng.random(rows.shape)


# --- queue_order: plain ranking -------------------------------------------------------------


def test_pure_score_order_without_exploration_or_diversity():
    scores = np.random.default_rng(0).random(500)
    order = queue_order(scores, exploration=0.0, diversity=False, rng=0)
    assert_permutation(order, 500)
    np.testing.assert_array_equal(order, np.argsort(-scores))


def test_ties_are_broken_at_random_not_by_file_order():
    order = queue_order(np.zeros(200), exploration=0.0, diversity=False, rng=1)
    assert_permutation(order, 200)
    assert not np.array_equal(order, np.arange(200))
    np.testing.assert_array_equal(order, queue_order(np.zeros(200), exploration=0.0, diversity=False, rng=1))


def test_nan_scores_come_last():
    scores = np.array([0.2, np.nan, 0.9, 0.5, np.nan])
    order = queue_order(scores, exploration=0.0, diversity=False, rng=0)
    assert list(order[:3]) == [2, 3, 0]
    assert set(order[3:]) == {1, 4}


def test_edge_sizes_and_bad_arguments():
    assert queue_order(np.array([]), rng=0).shape == (0,)
    np.testing.assert_array_equal(queue_order(np.array([3.0]), features=np.ones((1, 2)), rng=0), [0])
    with pytest.raises(InvalidInputError):
        queue_order(np.ones(3), exploration=1.5, rng=0)
    with pytest.raises(InvalidInputError):
        queue_order(np.ones((3, 2)), rng=0)
    with pytest.raises(InvalidInputError, match="features have 4 rows but there are 3 scores"):
        queue_order(np.ones(3), features=np.ones((4, 2)), rng=0)


# --- queue_order: exploration ---------------------------------------------------------------


def test_exploration_puts_a_random_row_at_every_tenth_position():
    n = 1000
    scores = np.arange(n, dtype=float)  # row i has rank n - 1 - i
    order = queue_order(scores, exploration=0.1, diversity=False, rng=3)
    assert_permutation(order, n)
    explore_positions = np.arange(9, n, 10)
    explored = order[explore_positions]
    exploited = np.delete(order, explore_positions)
    # The other 90% are served strictly by score ...
    assert np.all(np.diff(scores[exploited]) < 0)
    # ... and the random ones are spread over the whole pool, not taken from the top.
    assert len(explored) == 100
    assert 350 < scores[explored].mean() < 650
    # Among the first 100 served, about 10 would not have been served by score alone.
    outsiders = np.setdiff1d(order[:100], np.argsort(-scores)[:100])
    assert 5 <= len(outsiders) <= 10


def test_exploration_is_deterministic_given_rng_and_varies_with_it():
    scores = np.random.default_rng(0).random(300)
    first = queue_order(scores, exploration=0.2, diversity=False, rng=np.random.default_rng(11))
    again = queue_order(scores, exploration=0.2, diversity=False, rng=np.random.default_rng(11))
    other = queue_order(scores, exploration=0.2, diversity=False, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "fraction, first_slots, count",
    # slots (0-based) are floor(j / fraction) - 1 for j = 1, 2, ...
    [(0.25, [3, 7, 11], 25), (0.3, [2, 5, 9], 30), (1 / 3, [2, 5, 8], 33), (1.0, [0, 1, 2], 100)],
)
def test_exploration_fraction_and_slots(fraction, first_slots, count):
    scores = np.arange(100, dtype=float)
    order = queue_order(scores, exploration=fraction, diversity=False, rng=5)
    assert_permutation(order, 100)
    slots = (np.floor(np.arange(1, count + 1) / fraction + 1e-9) - 1).astype(int)
    assert list(slots[:3]) == first_slots
    exploited = np.delete(order, slots)
    assert len(exploited) == 100 - count
    assert np.all(np.diff(scores[exploited]) < 0)  # everything else is served by score
    if fraction == 1.0:  # all random
        assert abs(np.corrcoef(scores[order], np.arange(100))[0, 1]) < 0.3


def test_no_exploration_means_no_random_rows():
    scores = np.arange(100, dtype=float)
    np.testing.assert_array_equal(queue_order(scores, exploration=0.0, diversity=False, rng=5), np.arange(99, -1, -1))


# --- queue_order: diversity -----------------------------------------------------------------


@pytest.mark.parametrize("as_sparse", [False, True])
def test_diversity_spreads_near_duplicates_at_the_top(as_sparse):
    # 5 groups of 20 near-duplicates; group 0 has all the best scores, then group 1, ...
    features = grouped_features(5, 20, noise=0.01)
    scores = np.linspace(1.0, 0.0, 100)
    by_score = queue_order(scores, exploration=0.0, diversity=False, rng=0)
    assert set(by_score[:10] // 20) == {0}  # pure score order: the top 10 are all one group

    matrix = sp.csr_matrix(features) if as_sparse else features
    order = queue_order(scores, features=matrix, exploration=0.0, candidates=100, n_clusters=5, rng=0)
    assert_permutation(order, 100)
    assert set(order[:5] // 20) == {0, 1, 2, 3, 4}
    assert order[0] == 0  # the best row of the best group still comes first
    # each group's rows are served best first
    for g in range(5):
        served = order[order // 20 == g]
        assert np.all(np.diff(served) > 0)


def test_diversity_only_reorders_the_candidates():
    features = grouped_features(4, 50, noise=0.01)
    scores = np.linspace(1.0, 0.0, 200)
    order = queue_order(scores, features=features, exploration=0.0, candidates=40, rng=0)
    assert_permutation(order, 200)
    assert set(order[:40]) == set(range(40))
    np.testing.assert_array_equal(order[40:], np.arange(40, 200))


def test_diversity_needs_features():
    scores = np.random.default_rng(0).random(50)
    np.testing.assert_array_equal(
        queue_order(scores, features=None, exploration=0.0, rng=0),
        queue_order(scores, diversity=False, exploration=0.0, rng=0),
    )


def test_diversity_and_exploration_together_deterministic():
    features = sp.csr_matrix(grouped_features(6, 30, noise=0.05, seed=2))
    scores = np.random.default_rng(4).random(180)
    first = queue_order(scores, features=features, exploration=0.1, candidates=60, rng=9)
    assert_permutation(first, 180)
    np.testing.assert_array_equal(first, queue_order(scores, features=features, exploration=0.1, candidates=60, rng=9))


# --- priorities -----------------------------------------------------------------------------


def test_priorities_sort_back_into_the_order():
    order = np.array([3, 0, 4, 1, 2])
    priorities = priorities_from_order(order)
    np.testing.assert_array_equal(priorities, [4.0, 2.0, 1.0, 5.0, 3.0])
    np.testing.assert_array_equal(np.argsort(-priorities), order)
    assert priorities_from_order(np.array([], dtype=int)).shape == (0,)


@pytest.mark.parametrize("bad", [[0, 0, 1], [0, 1, 3], [-1, 0, 1], [0.0, 1.0, 2.0]])
def test_priorities_reject_non_permutations(bad):
    with pytest.raises(InvalidInputError):
        priorities_from_order(np.array(bad))


# --- cold start -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_sparse", [False, True])
def test_cold_start_covers_every_cluster_first(as_sparse):
    features = grouped_features(6, 30, noise=0.05)  # file order: group by group
    matrix = sp.csr_matrix(features) if as_sparse else features
    order = cold_start_order(matrix, rng=0, n_clusters=6)
    assert_permutation(order, 180)
    assert not np.array_equal(order, np.arange(180))
    assert set(order[:6] // 30) == set(range(6))
    assert set(order[6:12] // 30) == set(range(6))  # round robin goes on


def test_cold_start_takes_typical_items_first():
    # In each group, row 0 sits on the group's direction; row i drifts by 0.05 * i along its own
    # axis, so the group mean drifts by only 0.005 * i per axis and row 0 is nearest to it.
    rows = []
    for g in range(3):
        for i in range(10):
            row = np.zeros(12)
            row[g] = 1.0
            if i:
                row[2 + i] = 0.05 * i
            rows.append(row)
    order = cold_start_order(np.array(rows), rng=1, n_clusters=3)
    assert set(order[:3]) == {0, 10, 20}


def test_cold_start_is_deterministic_given_rng():
    features = grouped_features(4, 25, noise=0.1)
    np.testing.assert_array_equal(cold_start_order(features, rng=3), cold_start_order(features, rng=3))


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_cold_start_with_fewer_rows_than_clusters(n):
    features = sp.random(n, 30, density=0.3, format="csr", random_state=0)
    order = cold_start_order(features, rng=0, n_clusters=50)
    assert_permutation(order, n)


def test_cold_start_samples_large_pools():
    features = sp.csr_matrix(grouped_features(5, 400, noise=0.05))
    order = cold_start_order(features, rng=0, n_clusters=5, sample_size=300)
    assert_permutation(order, 2000)
    assert set(order[:5] // 400) == set(range(5))
