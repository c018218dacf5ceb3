"""Query strategies: informativeness *measures* from class probabilities.

As in modAL, measuring and selecting are split: each strategy here is a pure function from a
class-probability matrix ``proba`` of shape (n, k) to scores of shape (n,), where a **higher
score means more informative** (ask first). Turning scores into a serving order (diversity,
exploration) is :mod:`labelloop.learn.selection`'s job.

Every strategy has the same signature ``strategy(proba, *, rng=None) -> np.ndarray``; only
``random`` uses ``rng`` (a ``numpy.random.Generator`` or a seed). A single column (k == 1,
the model knows one tag) is accepted: the model is then certain of everything, so entropy,
least-confidence and margin give every row the same score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from labelloop.errors import InvalidInputError

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "Strategy",
    "entropy",
    "get_strategy",
    "least_confidence",
    "margin",
    "random",
]

Strategy = Callable[..., np.ndarray]


def _check_proba(proba: Any) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise InvalidInputError(f"class probabilities must be a 2-d array (n, k), got shape {proba.shape}")
    if proba.shape[1] == 0 and proba.shape[0] > 0:
        raise InvalidInputError("class probabilities need at least one column")
    if not np.all(np.isfinite(proba)):
        raise InvalidInputError("class probabilities contain NaN or infinite values")
    return proba


def entropy(proba: Any, *, rng: Any = None) -> np.ndarray:
    """Shannon entropy ``-sum p log p`` of each row (0 log 0 = 0): spread over all classes."""
    proba = _check_proba(proba)
    p = np.clip(proba, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def margin(proba: Any, *, rng: Any = None) -> np.ndarray:
    """``-(p1 - p2)``, minus the gap between the two most probable classes.

    The smallest gap comes first ("breaking ties"): the model hesitates between two tags.
    With a single column, ``p2`` is 0.
    """
    proba = _check_proba(proba)
    n, k = proba.shape
    if k == 1:
        return -proba[:, 0].copy()
    if n == 0:
        return np.zeros(0)
    top2 = np.partition(proba, k - 2, axis=1)[:, k - 2 :]
    return -(top2[:, 1] - top2[:, 0])


def least_confidence(proba: Any, *, rng: Any = None) -> np.ndarray:
    """``1 - max p``: how unsure the model is of its best guess."""
    proba = _check_proba(proba)
    if proba.shape[0] == 0:
        return np.zeros(0)
    return 1.0 - proba.max(axis=1)


def random(proba: Any, *, rng: Any = None) -> np.ndarray:
    """Uniform random scores in [0, 1): passive learning, the baseline to beat.

    Deterministic given ``rng`` (a ``numpy.random.Generator`` or an int seed).
    """
    proba = _check_proba(proba)
    return np.random.default_rng(rng).random(proba.shape[0])


STRATEGIES: dict[str, Strategy] = {
    "entropy": entropy,
    "margin": margin,
    "least_confidence": least_confidence,
    "random": random,
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; :class:`InvalidInputError` listing the known ones if unknown."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown query strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}") from None
