"""learn/steering.py: the likely / unsure / novelty orders and the similar vectors (pure)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from labelloop.learn.steering import (
    fit_projection,
    head_order,
    likely_order,
    nearest_rows,
    novelty_order,
    project_rows,
    single_label_margin,
    unsure_order,
)


def test_head_order_is_ascending_with_ties_by_position_and_nan_last():
    keys = np.array([0.5, 0.1, np.nan, 0.1, 0.3, 0.1])
    assert head_order(keys, 3).tolist() == [1, 3, 5]
    assert head_order(keys, 10).tolist() == [1, 3, 5, 4, 0, 2]
    assert head_order(keys, 0).tolist() == []


def test_likely_is_descending_probability_and_agrees_with_a_full_sort():
    rng = np.random.default_rng(0)
    p = rng.random(10_000).round(3)  # many ties
    got = likely_order(p, 500)
    want = np.lexsort((np.arange(len(p)), -p))[:500]
    assert got.tolist() == want.tolist()
    assert np.all(np.diff(p[got]) <= 0)


def test_single_label_unsure_is_distance_to_the_best_other_tag():
    proba = np.array([[0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]])
    margin = single_label_margin(proba, 0)
    assert np.allclose(margin, [0.1, 0.5, 0.01, 0.7])
    assert unsure_order(margin, 4).tolist() == [2, 0, 1, 3]
    # tag 1: |0.4-0.5|, |0.7-0.2|, |0.33-0.34|, |0.1-0.8|
    assert unsure_order(single_label_margin(proba, 1), 2).tolist() == [2, 0]


def test_novelty_puts_the_least_placed_rows_first():
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert novelty_order(proba, 3).tolist() == [1, 2, 0]


def test_projection_is_exact_when_the_sample_has_at_most_dims_rows():
    rng = np.random.default_rng(1)
    X = sp.random(40, 500, density=0.05, random_state=2, format="csr", dtype=np.float32)
    projection = fit_projection(X, 64, seed=0)
    V = project_rows(X, projection)
    dense = X.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    unit = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    assert np.allclose(V @ V.T, unit @ unit.T, atol=1e-4)
    assert rng is not None


def test_few_features_are_used_as_they_are():
    X = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    assert fit_projection(X, 64) is None
    V = project_rows(X, None)
    assert np.allclose(V, [[0.6, 0.8], [0, 0], [1, 0]])


def test_nearest_rows_are_the_brute_force_cosine_neighbours():
    rng = np.random.default_rng(3)
    V = project_rows(rng.normal(size=(2000, 16)), None)
    V[7] = 0  # an empty row is nobody's neighbour
    got = nearest_rows(V, 5, 20)
    scores = V @ V[5]
    scores[5] = -np.inf
    scores[7] = -np.inf
    want = np.argsort(-scores, kind="stable")[:20]
    assert got.tolist() == want.tolist()
    assert 5 not in got and 7 not in got
    assert nearest_rows(V, 7, 5).tolist() == []
