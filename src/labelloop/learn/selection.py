"""Selection: turning informativeness scores into a serving order.

:func:`queue_order` ranks rows by score, then (1) *diversifies* the head of the queue so that
its top is not a run of near-duplicates and (2) mixes in a fraction of uniformly random rows
(*exploration*), so a biased model still sees the rest of the pool. :func:`cold_start_order`
is the order before any model exists: representative items from many k-means clusters, in
round robin. Everything is vectorised (sorts, partitions, no Python loop over rows) so that it
takes seconds for n = 1,000,000; clustering only ever runs on a bounded number of rows.

Row ``i`` of ``features`` always describes the item of ``scores[i]``. Results are permutations
of ``range(n)``, best first; :func:`priorities_from_order` turns one into "higher = sooner"
priorities for a store to sort on. All randomness comes from ``rng`` (a
``numpy.random.Generator`` or an int seed), so results are reproducible.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import normalize

from labelloop.errors import InvalidInputError

__all__ = ["cold_start_order", "priorities_from_order", "queue_order"]

_MAX_DENSE_DIM = 256  # dense features wider than this (and all sparse ones) are reduced by SVD
_SVD_DIM = 32
_MAX_CANDIDATES = 5000  # diversity works on an m x m similarity matrix
_CHUNK = 100_000


def queue_order(
    scores: Any,
    *,
    features: Any = None,
    exploration: float = 0.1,
    diversity: bool = True,
    candidates: int = 1000,
    n_clusters: int | None = None,
    rng: Any = None,
) -> np.ndarray:
    """Return a permutation of row indices, the row to serve first first.

    - Rows are ranked by ``scores`` (higher first; NaN last; ties broken at random, never by
      file order).
    - ``diversity`` (needs ``features``): the top ``candidates`` rows (e.g. 10x a batch,
      capped at 5000) are clustered by cosine k-means into ``n_clusters`` groups (default
      ``candidates // 10``, between 2 and 100) and served round robin, the best-scored row of
      each group first, so near-duplicates are spread out; the rest follows by score.
    - ``exploration``: that fraction of positions (evenly spaced: with 0.1, positions 10, 20,
      30, ... counting from 1) holds uniformly random rows instead, in random order.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise InvalidInputError(f"scores must be a 1-d array, got shape {scores.shape}")
    if not 0.0 <= exploration <= 1.0:
        raise InvalidInputError(f"exploration must be between 0 and 1, not {exploration}")
    n = scores.shape[0]
    rng = np.random.default_rng(rng)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    keys = np.where(np.isnan(scores), -np.inf, scores)
    shuffled = rng.permutation(n)  # a stable sort of shuffled rows breaks ties at random
    order = shuffled[np.argsort(-keys[shuffled], kind="stable")].astype(np.intp)

    if diversity and features is not None:
        features = _as_rows(features)
        if features.shape[0] != n:
            raise InvalidInputError(f"features have {features.shape[0]} rows but there are {n} scores")
        m = min(int(candidates), _MAX_CANDIDATES, n)
        k = n_clusters if n_clusters is not None else int(np.clip(m // 10, 2, 100))
        k = min(k, m)
        if k >= 2:
            head = order[:m]
            labels = _kmeans_labels(_gram_embedding(features[head]), k, rng)
            # head is in score order, so rank-in-group then position = round robin, best first.
            order[:m] = head[np.lexsort((np.arange(m), _rank_within_groups(labels, np.arange(m))))]

    positions = _exploration_positions(n, exploration)
    if positions.size:
        picked = rng.choice(n, size=positions.size, replace=False)
        keep = np.ones(n, dtype=bool)
        keep[picked] = False
        slots = np.ones(n, dtype=bool)
        slots[positions] = False
        final = np.empty(n, dtype=np.intp)
        final[positions] = picked
        final[slots] = order[keep[order]]
        order = final
    return order


def priorities_from_order(order: Any) -> np.ndarray:
    """Priority of each row (float64, indexed by row): ``n`` for the first served, 1 for the last.

    ``priorities[row]`` sorts the rows back into ``order`` with a descending sort.
    """
    order = np.asarray(order)
    n = order.shape[0]
    if order.ndim != 1 or (n and (not np.issubdtype(order.dtype, np.integer) or order.min() < 0 or order.max() >= n)):
        raise InvalidInputError("order must be a permutation of range(n)")
    if n and np.bincount(order, minlength=n).max() != 1:
        raise InvalidInputError("order must be a permutation of range(n) (it repeats a row)")
    priorities = np.empty(n, dtype=np.float64)
    priorities[order] = np.arange(n, 0, -1, dtype=np.float64)
    return priorities


def cold_start_order(
    features: Any, *, rng: Any = None, n_clusters: int = 50, sample_size: int = 20_000
) -> np.ndarray:
    """A diverse first order, before any model: never file order.

    MiniBatchKMeans (on cosine-normalised, SVD-reduced features) is fitted on a random sample
    of at most ``sample_size`` rows, then every row is assigned to its nearest centroid in
    chunks. The order is round robin over clusters (largest cluster first within each round),
    taking in each cluster the items nearest its centroid first, i.e. the most typical ones.
    With fewer rows than ``n_clusters``, there are as many clusters as rows.
    """
    features = _as_rows(features)
    n = features.shape[0]
    rng = np.random.default_rng(rng)
    if n <= 1:
        return np.arange(n, dtype=np.intp)
    sample = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
    k = int(min(max(n_clusters, 1), sample.size))
    reduce = _reduce_fit(features[sample], rng)
    sample_z = reduce(features[sample])
    model = MiniBatchKMeans(n_clusters=k, n_init=1, batch_size=2048, random_state=_seed(rng))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(sample_z)
    labels = np.empty(n, dtype=np.intp)
    distances = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        z = reduce(features[start : start + _CHUNK])
        chunk_labels = model.predict(z)
        labels[start : start + _CHUNK] = chunk_labels
        distances[start : start + _CHUNK] = np.linalg.norm(z - model.cluster_centers_[chunk_labels], axis=1)

    tie = rng.random(n)
    within = np.lexsort((tie, distances, labels))  # grouped by cluster, nearest first
    rank = _rank_within_groups(labels, within)
    sizes = np.bincount(labels, minlength=k)
    cluster_rank = np.empty(k, dtype=np.intp)
    cluster_rank[np.lexsort((rng.random(k), -sizes))] = np.arange(k)
    return np.lexsort((tie, cluster_rank[labels], rank)).astype(np.intp)


def _as_rows(features: Any) -> Any:
    """Features as something row-indexable: CSR if sparse, else a 2-d ndarray."""
    if sp.issparse(features):
        return features.tocsr()
    features = np.asarray(features)
    if features.ndim != 2:
        raise InvalidInputError(f"features must be a 2-d matrix, got shape {features.shape}")
    return features


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _reduce_fit(X: Any, rng: np.random.Generator) -> Any:
    """Fit a reducer on ``X``; return a function mapping rows to dense, L2-normalised vectors.

    Sparse or wide features go through TruncatedSVD (at most 32 dimensions, 3 power
    iterations), so that k-means centroids stay small even with 200,000 tf-idf columns.
    """
    rows, dim = X.shape
    n_components = min(_SVD_DIM, dim - 1, rows - 1)
    if (sp.issparse(X) or dim > _MAX_DENSE_DIM) and n_components >= 2:
        svd = TruncatedSVD(n_components=n_components, n_iter=3, random_state=_seed(rng)).fit(X)
        return lambda Y: normalize(np.asarray(svd.transform(Y), dtype=np.float64))
    return lambda Y: normalize(np.asarray(Y.toarray() if sp.issparse(Y) else Y, dtype=np.float64))


def _gram_embedding(X: Any, dim: int = _SVD_DIM) -> np.ndarray:
    """Rows of a small matrix (m <= a few thousand) as L2-normalised vectors of <= ``dim`` numbers.

    The top eigenvectors of the m x m cosine-similarity matrix give the same geometry as an SVD
    of the rows, at a cost that does not depend on the number of columns. Identical rows get
    identical vectors.
    """
    rows = normalize(X.astype(np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64))
    gram = rows @ rows.T
    gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
    m = gram.shape[0]
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[max(0, m - dim), m - 1], driver="evr")
    return normalize(vectors * np.sqrt(np.clip(values, 0.0, None)))


def _kmeans_labels(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster labels of the rows of ``z`` with plain KMeans (only used on a few hundred rows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=k, n_init=1, random_state=_seed(rng)).fit_predict(z)


def _rank_within_groups(labels: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each row, its rank among rows of the same label when rows are taken in ``order``.

    ``order`` must be a permutation of the rows; the grouping is a stable sort on labels.
    """
    labels = np.asarray(labels)
    by_group = order[np.argsort(labels[order], kind="stable")]
    sorted_labels = labels[by_group]
    m = labels.shape[0]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, m]))
    rank = np.empty(m, dtype=np.intp)
    rank[by_group] = np.arange(m) - group_start
    return rank


def _exploration_positions(n: int, fraction: float) -> np.ndarray:
    """Evenly spaced 0-based positions for random rows: ``floor(j / fraction) - 1``, j = 1, 2, ..."""
    if fraction <= 0 or n == 0:
        return np.zeros(0, dtype=np.intp)
    count = int(np.floor(n * fraction + 1e-9))
    positions = (np.floor(np.arange(1, count + 1) / fraction + 1e-9) - 1).astype(np.intp)
    return np.unique(positions[(positions >= 0) & (positions < n)])
