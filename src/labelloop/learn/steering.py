"""Steering lists and item vectors (issue 13), pure: arrays in, arrays out.

The ``likely`` and ``unsure`` queues serve, per tag, the head of an order of the pool computed
from a round's predicted probabilities; the ``similar`` queue serves an item's nearest
neighbours by cosine in a reduced feature space.

- :func:`likely_order`: rows by descending probability of the tag (ties by row).
- :func:`unsure_order`: rows by distance to the tag's decision boundary, nearest first (ties by
  row). Single-label: the boundary is where the tag's probability equals the best other tag's,
  so the distance is ``|p_tag - max_other p|`` (:func:`single_label_margin`). Multi-label: each
  tag has its own threshold chosen by cross-validation, the distance is ``|p_tag - threshold|``.
- :func:`novelty_order`: a single-label tag the model has no class for (nobody labelled it yet)
  has no probability; its ``likely`` order is then the rows the model can place least well
  (lowest top probability first): where an unseen tag is most likely to hide.
- :func:`fit_projection` / :func:`project_rows`: unit-length vectors of ``dims`` dimensions
  (a truncated SVD of the features, fitted on a sample; exact when the features have at most
  ``dims`` columns or the sample at most ``dims`` rows: inner products are then preserved).
- :func:`nearest_rows`: the rows of a unit-length matrix nearest a query row by cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "DIMS",
    "fit_projection",
    "head_order",
    "likely_order",
    "nearest_rows",
    "novelty_order",
    "project_rows",
    "single_label_margin",
    "unsure_order",
]

DIMS = 64  # dimensions of the ``similar`` vectors


def head_order(keys: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` smallest ``keys`` in ascending order, ties by position (NaN last)."""
    keys = np.asarray(keys, dtype=np.float64)
    n = len(keys)
    limit = max(0, min(int(limit), n))
    if limit == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.where(np.isnan(keys), np.inf, keys)
    if limit < n:
        cut = np.partition(keys, limit - 1)[limit - 1]
        candidates = np.flatnonzero(keys <= cut)  # ascending positions
    else:
        candidates = np.arange(n)
    order = candidates[np.argsort(keys[candidates], kind="stable")]
    return order[:limit].astype(np.int64)


def likely_order(p_tag: np.ndarray, limit: int) -> np.ndarray:
    """Rows by descending probability of the tag (the first ``limit``)."""
    return head_order(-np.asarray(p_tag, dtype=np.float64), limit)


def single_label_margin(proba: np.ndarray, column: int) -> np.ndarray:
    """``|p[:, column] - max of the other columns|`` per row: the distance to the boundary where
    the tag stops (or starts) being the predicted one. With one column: ``|p - 0.5|``."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] < 2:
        return np.abs(proba[:, column] - 0.5)
    others = np.delete(proba, column, axis=1).max(axis=1)
    return np.abs(proba[:, column] - others)


def unsure_order(distance: np.ndarray, limit: int) -> np.ndarray:
    """Rows by distance to the decision boundary, nearest first (the first ``limit``).
    ``distance``: :func:`single_label_margin`, or ``|p_tag - threshold|`` for a label set."""
    return head_order(np.asarray(distance, dtype=np.float64), limit)


def novelty_order(proba: np.ndarray, limit: int) -> np.ndarray:
    """Rows by ascending top probability: the items the model places least well."""
    proba = np.asarray(proba, dtype=np.float64)
    top = proba.max(axis=1) if proba.shape[1] else np.zeros(proba.shape[0])
    return head_order(top, limit)


def fit_projection(sample: Any, dims: int = DIMS, *, seed: int = 0) -> np.ndarray | None:
    """The (n_features, k) projection onto the top ``k <= dims`` right singular vectors of
    ``sample`` (rows of the feature matrix), or None when the features have at most ``dims``
    columns (they are then used as they are)."""
    n_rows, n_features = sample.shape
    if n_features <= dims:
        return None
    k = min(dims, n_rows)
    if k == 0:
        return np.zeros((n_features, 0), dtype=np.float32)
    if k >= min(n_rows, n_features) - 1 or not sp.issparse(sample):
        dense = sample.toarray() if sp.issparse(sample) else np.asarray(sample)
        _, _, vt = np.linalg.svd(np.asarray(dense, dtype=np.float64), full_matrices=False)
        return np.ascontiguousarray(vt[:k].T, dtype=np.float32)
    from sklearn.utils.extmath import randomized_svd

    _, _, vt = randomized_svd(sample.astype(np.float32), n_components=k, n_iter=4, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32)


def project_rows(block: Any, projection: np.ndarray | None) -> np.ndarray:
    """Unit-length (float32) reduced vectors of a block of feature rows (all-zero rows stay 0)."""
    if projection is None:
        dense = block.toarray() if sp.issparse(block) else np.asarray(block)
        vectors = np.asarray(dense, dtype=np.float32)
    else:
        vectors = np.asarray(block @ projection, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def nearest_rows(matrix: np.ndarray, row: int, limit: int) -> np.ndarray:
    """The rows of ``matrix`` (unit-length rows) with the highest cosine to row ``row``, best
    first (ties by row), ``row`` itself and all-zero rows left out."""
    scores = matrix @ matrix[row].astype(matrix.dtype, copy=False)
    scores = np.asarray(scores, dtype=np.float64)
    scores[row] = -np.inf
    if not np.any(matrix[row]):
        return np.zeros(0, dtype=np.int64)
    order = head_order(-scores, limit)
    keep = np.isfinite(scores[order])
    norms_zero = ~np.any(matrix[order], axis=1)
    return order[keep & ~norms_zero]
