"""Evaluation: metrics, stratified cross-validation, and the "enough labels yet?" guards.

Training and evaluating need different amounts of labels, and the difference is deliberate:

- **training** (:func:`can_train`) needs at least one label and at least 2 distinct tags; a
  tag with a single example is fine (every classifier of :mod:`labelloop.learn.models` fits
  it, the SVM skipping calibration), so the model can start asking early;
- **cross-validation** (:func:`can_cross_validate`) also needs at least 2 examples of every
  tag, so that each stratified fold can hold one out.

Labels in active learning are usually imbalanced: folds are stratified, and next to accuracy
the macro-averaged F1 and per-tag precision/recall are reported, which a dominant tag cannot
hide behind.

Cross-validation on actively chosen labels is biased (the model picked the hard items).
:func:`audit_estimate` scores a model on a held-out sample drawn uniformly at random and never
trained on (the audit items), with a 95 % interval: an unbiased estimate of how accurate the
model's labels on the unlabelled rest are. The interval is Wilson's score interval *with
continuity correction*: plain Wilson covers the truth only 86-92 % of the time (30-200 items)
when the accuracy is near 1, the usual case for a good model, while the corrected one keeps
at least 95 % at every accuracy (computed exactly over the binomial; see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from labelloop.errors import InvalidInputError, NotEnoughLabelsError

__all__ = [
    "AUDIT_CONFIDENCE", "AUDIT_INTERVAL", "MAX_FOLDS", "audit_estimate", "can_cross_validate", "can_train", "cross_validate",
    "evaluate", "n_folds",
]

MAX_FOLDS = 5
AUDIT_CONFIDENCE = 0.95
AUDIT_INTERVAL = "wilsoncc"  # scipy's name: Wilson score interval with continuity correction


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so that results serialise as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _tag_counts(y: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(np.asarray(y), return_counts=True)


def can_train(y: Any) -> str | None:
    """Why a classifier cannot be trained on labels ``y`` yet, or None if it can."""
    tags, counts = _tag_counts(y)
    if counts.sum() == 0:
        return "not enough labels yet: no item is labelled"
    if len(tags) < 2:
        return (
            f"not enough labels yet: all {int(counts.sum())} labels are {_plain(tags[0])!r}; "
            "need at least 2 different tags"
        )
    return None


def can_cross_validate(y: Any) -> str | None:
    """Why labels ``y`` cannot be cross-validated yet (which needs 2+ labels per tag), or None."""
    reason = can_train(y)
    if reason is not None:
        return reason
    tags, counts = _tag_counts(y)
    rare = [f"{_plain(tag)!r}" for tag, count in zip(tags, counts) if count < 2]
    if rare:
        return (
            f"not enough labels yet: tag{'s' if len(rare) > 1 else ''} {', '.join(rare)} "
            f"{'have' if len(rare) > 1 else 'has'} only 1 label; cross-validation needs at least 2 per tag"
        )
    return None


def n_folds(y: Any) -> int:
    """Folds for stratified CV: ``min(5, smallest tag count)``, at least 2."""
    _, counts = _tag_counts(y)
    return int(max(2, min(MAX_FOLDS, counts.min())))


def evaluate(y_true: Any, y_pred: Any, labels: Sequence[Any]) -> dict[str, Any]:
    """Metrics of predictions ``y_pred`` against ``y_true``.

    Returns ``accuracy``; ``macro_f1``, the mean F1 over the tags of ``labels`` that occur in
    ``y_true`` or ``y_pred`` (a tag nobody used does not count as a 0); ``per_tag`` with
    ``precision``, ``recall``, ``f1`` and ``support`` for each tag of ``labels`` (0 where
    undefined); ``confusion``, rows = true tag and columns = predicted tag, both in ``labels``
    order; and ``labels``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = [_plain(label) for label in labels]
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InvalidInputError(
            f"y_true and y_pred must be 1-d of the same length, got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size == 0:
        raise NotEnoughLabelsError("not enough labels yet: nothing to evaluate")
    known = set(labels)
    present = {_plain(v) for v in np.concatenate([y_true.astype(object), y_pred.astype(object)])}
    unknown = sorted(str(v) for v in present - known)
    if unknown:
        raise InvalidInputError(f"tags not among the labels given: {', '.join(unknown)}")
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    used = np.array([label in present for label in labels], dtype=bool)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(np.mean(f1[used])) if used.any() else 0.0,
        "per_tag": {
            label: {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": labels,
    }


def cross_validate(
    make_classifier: Callable[[], Any],
    X: Any,
    y: Any,
    *,
    labels: Sequence[Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Stratified k-fold cross-validation with ``k = min(5, smallest tag count)`` (at least 2).

    ``make_classifier()`` must return a fresh unfitted classifier; one is fitted per fold on
    rows of ``X`` (any row-indexable matrix, sparse is fine). Returns :func:`evaluate` of the
    out-of-fold predictions (``labels`` defaults to the sorted tags of ``y``) plus ``folds``
    and ``n_labels``. Raises :class:`NotEnoughLabelsError` when :func:`can_cross_validate`
    gives a reason.
    """
    y = np.asarray(y)
    reason = can_cross_validate(y)
    if reason is not None:
        raise NotEnoughLabelsError(reason)
    if X.shape[0] != y.shape[0]:
        raise InvalidInputError(f"X has {X.shape[0]} rows but there are {y.shape[0]} labels")
    labels = list(np.unique(y)) if labels is None else list(labels)
    k = n_folds(y)
    predicted = np.empty(y.shape[0], dtype=object)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, test in folds.split(np.zeros(y.shape[0]), y):
        classifier = make_classifier()
        classifier.fit(X[train], y[train])
        predicted[test] = list(classifier.predict(X[test]))
    result = evaluate(y.astype(object), predicted, labels)
    result["folds"] = k
    result["n_labels"] = int(y.shape[0])
    return result


def audit_estimate(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Accuracy of predictions ``y_pred`` on held-out labels ``y_true``, with its interval.

    Returns ``labelled`` (n), ``correct`` (c), ``accuracy`` (c / n, None when n = 0) and
    ``ci95``: the Wilson score interval with continuity correction ``[lo, hi]`` at
    :data:`AUDIT_CONFIDENCE` (None when n = 0), from
    ``scipy.stats.binomtest(c, n).proportion_ci(method="wilsoncc")``."""
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InvalidInputError(
            f"y_true and y_pred must be 1-d of the same length, got {y_true.shape} and {y_pred.shape}"
        )
    n = int(y_true.size)
    correct = int(np.sum(y_true == y_pred)) if n else 0
    if n == 0:
        return {"labelled": 0, "correct": 0, "accuracy": None, "ci95": None}
    interval = binomtest(correct, n).proportion_ci(confidence_level=AUDIT_CONFIDENCE, method=AUDIT_INTERVAL)
    return {
        "labelled": n,
        "correct": correct,
        "accuracy": correct / n,
        "ci95": [float(interval.low), float(interval.high)],
    }
