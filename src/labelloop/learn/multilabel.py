"""Multi-label learning: several tags per item, each tag a yes/no question.

Labels are an indicator matrix ``Y`` of shape (n, k): ``Y[i, j]`` is 1 when item ``i`` has tag
``j`` (an all-zero row is "none of these applies", a real answer). Everything here is pure
numpy / scikit-learn, like the rest of :mod:`labelloop.learn`.

- :class:`OneVsRest` fits one binary classifier per tag on the cached features. A tag whose
  labels are all "no" (or all "yes") gets a constant probability instead of a classifier, so a
  new or rare tag never stops a round. :func:`tag_classifier` turns a model's (single-label)
  classifier into the per-tag one: a LogisticRegression gets an intercept (liblinear).
- :func:`choose_thresholds` picks each tag's decision threshold to maximise that tag's F1 on
  out-of-fold probabilities (0.5 while the tag has fewer than :data:`MIN_POSITIVES` positives).
- :func:`cross_validate_sets` gives out-of-fold probabilities, the thresholds chosen on all of
  them (for the model), and metrics where every fold is judged with thresholds chosen on the
  *other* folds only, so the reported figures do not flatter the thresholds.
- :func:`evaluate_sets`: per-tag precision/recall/F1, micro- and macro-F1, subset (exact-match)
  accuracy and Hamming loss; :func:`audit_sets` adds 95 % intervals on held-out audit items.
- :func:`set_uncertainty`: how informative each item is, from the distance of each tag's
  probability to that tag's threshold, aggregated over the tags (``max`` or ``mean``).
- :func:`set_stability`: Cohen's kappa between two models' predicted sets (every item-tag
  decision), the multi-label stability check of the stopping advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support
from sklearn.model_selection import KFold

from labelloop.errors import InvalidInputError, NotEnoughLabelsError

__all__ = [
    "MIN_POSITIVES",
    "SET_STRATEGIES",
    "OneVsRest",
    "audit_sets",
    "can_cross_validate_sets",
    "can_train_sets",
    "choose_thresholds",
    "cross_validate_sets",
    "evaluate_sets",
    "indicator",
    "set_stability",
    "set_intervals",
    "set_uncertainty",
    "tag_classifier",
]

MIN_POSITIVES = 2  # positives (and negatives) a tag needs before its threshold is tuned
MAX_FOLDS = 5
BOOTSTRAP = 1000  # resamples for the intervals of F1 and Hamming loss
SET_STRATEGIES = ("max", "mean", "random")


def indicator(sets: Sequence[Sequence[Any]], tags: Sequence[Any]) -> np.ndarray:
    """The (n, k) 0/1 matrix of ``sets`` (each an iterable of tags) over ``tags``; an unknown
    tag is an :class:`InvalidInputError`."""
    index = {tag: j for j, tag in enumerate(tags)}
    Y = np.zeros((len(sets), len(tags)), dtype=np.int8)
    for i, chosen in enumerate(sets):
        for tag in chosen:
            if tag not in index:
                raise InvalidInputError(f"tag {tag!r} is not among the tags given: {', '.join(map(str, tags))}")
            Y[i, index[tag]] = 1
    return Y


def _check_Y(Y: Any) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise InvalidInputError(f"multi-label targets must be a 2-d 0/1 array (n, k), got shape {Y.shape}")
    if Y.size and not np.isin(Y, (0, 1)).all():
        raise InvalidInputError("multi-label targets must be 0 or 1")
    return Y.astype(np.int8, copy=False)


class OneVsRest(ClassifierMixin, BaseEstimator):
    """One binary classifier per tag (``estimator`` is cloned for each), with per-tag thresholds.

    After :meth:`fit`: ``estimators_`` holds a fitted classifier or, for a tag whose labels
    are all the same, a float (the smoothed share of "yes", used as its probability);
    ``thresholds_`` starts at 0.5 per tag and is set by the caller (see
    :func:`choose_thresholds`). :meth:`predict` gives the 0/1 matrix of tags above threshold."""

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit(self, X: Any, Y: Any) -> OneVsRest:
        Y = _check_Y(Y)
        if X.shape[0] != Y.shape[0]:
            raise InvalidInputError(f"X has {X.shape[0]} rows but there are {Y.shape[0]} label sets")
        if Y.shape[0] == 0:
            raise NotEnoughLabelsError("not enough labels yet: no item is labelled")
        n = Y.shape[0]
        self.estimators_: list[Any] = []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            positives = int(y.sum())
            if positives in (0, n):
                self.estimators_.append((positives + 0.5) / (n + 1.0))
            else:
                self.estimators_.append(clone(self.estimator).fit(X, y))
        self.n_tags_ = Y.shape[1]
        self.thresholds_ = np.full(self.n_tags_, 0.5)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, k): the probability of each tag, each from its own classifier."""
        n = X.shape[0]
        columns = [
            np.full(n, est) if isinstance(est, float) else est.predict_proba(X)[:, 1]
            for est in self.estimators_
        ]
        return np.column_stack(columns) if columns else np.zeros((n, 0))

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int8)


def tag_classifier(estimator: Any) -> Any:
    """The binary classifier each tag gets, from a model's classifier: a LogisticRegression
    without intercept (the single-label models have none, see :mod:`labelloop.learn.models`)
    gets one, fitted by liblinear; any other classifier is used as it is.

    Why: each tag is a yes/no question whose "yes" is usually rare (a Debtag is on 2-32 % of
    packages), so the prior the intercept carries is worth having, unlike with single-label
    topics. On debian_tags (70/30 split, thresholds chosen by CV, the same random labels for
    both), test micro-F1 with / without intercept: 0.571 / 0.492 at 1,000 labels (macro-F1
    0.504 / 0.345), 0.683 / 0.666 on the whole pool of 5,550; about equal at 200 labels
    (0.158 / 0.159; 0.192 / 0.206 on another draw). liblinear fits these small binary problems
    7x faster than lbfgs with the same result (0.570 at 1,000)."""
    if isinstance(estimator, LogisticRegression) and not estimator.fit_intercept:
        return clone(estimator).set_params(fit_intercept=True, solver="liblinear")
    return estimator


def can_train_sets(Y: Any) -> str | None:
    """Why a multi-label model cannot be trained on ``Y`` yet, or None if it can: it needs a
    labelled item and at least one tag with both a "yes" and a "no"."""
    Y = _check_Y(Y)
    n = Y.shape[0]
    if n == 0:
        return "not enough labels yet: no item is labelled"
    positives = Y.sum(axis=0)
    if not ((positives > 0) & (positives < n)).any():
        return (f"not enough labels yet: every tag has the same answer on all {n} labelled items; "
                "need a tag that some items have and others do not")
    return None


def can_cross_validate_sets(Y: Any) -> str | None:
    """Why ``Y`` cannot be cross-validated yet (it needs 2 items per fold), or None."""
    reason = can_train_sets(Y)
    if reason is not None:
        return reason
    if _check_Y(Y).shape[0] < 2 * 2:
        return "not enough labels yet: cross-validation needs at least 4 labelled items"
    return None


def choose_thresholds(Y: Any, P: Any, *, min_positives: int = MIN_POSITIVES) -> np.ndarray:
    """Per tag, the threshold on probabilities ``P`` that maximises F1 against ``Y`` (ties: the
    highest such threshold, which predicts fewer tags). A tag with fewer than ``min_positives``
    positives or negatives keeps 0.5. Thresholds sit halfway between neighbouring probabilities,
    so a probability equal to a training one is decided the same way."""
    Y = _check_Y(Y)
    P = np.asarray(P, dtype=np.float64)
    thresholds = np.full(Y.shape[1], 0.5)
    for j in range(Y.shape[1]):
        y, p = Y[:, j], P[:, j]
        positives = int(y.sum())
        if positives < min_positives or y.size - positives < min_positives:
            continue
        order = np.argsort(-p, kind="stable")
        p_sorted, y_sorted = p[order], y[order]
        true_pos = np.cumsum(y_sorted)
        predicted = np.arange(1, y.size + 1)
        f1 = 2 * true_pos / (predicted + positives)
        # only cut between different probabilities
        cut = np.r_[p_sorted[1:] < p_sorted[:-1], True]
        f1 = np.where(cut, f1, -1.0)
        best = int(np.flatnonzero(f1 == f1.max())[0])
        below = p_sorted[best + 1] if best + 1 < y.size else 0.0
        thresholds[j] = float((p_sorted[best] + below) / 2) if best + 1 < y.size else float(p_sorted[best] / 2)
    return thresholds


def evaluate_sets(Y_true: Any, Y_pred: Any, tags: Sequence[Any]) -> dict[str, Any]:
    """Metrics of predicted sets against true ones (both (n, k) 0/1 over ``tags``).

    ``micro_f1`` pools every item-tag decision; ``macro_f1`` is the mean F1 over the tags that
    occur in the truth or the predictions (an unused tag does not count as a 0);
    ``subset_accuracy`` is the share of items whose whole set is right; ``hamming_loss`` the
    share of wrong item-tag decisions; ``per_tag`` has precision, recall, F1 and support."""
    Y_true, Y_pred = _check_Y(Y_true), _check_Y(Y_pred)
    if Y_true.shape != Y_pred.shape or Y_true.shape[1] != len(tags):
        raise InvalidInputError(f"true and predicted sets must both be (n, {len(tags)}), "
                                f"got {Y_true.shape} and {Y_pred.shape}")
    n = Y_true.shape[0]
    if n == 0:
        raise NotEnoughLabelsError("not enough labels yet: nothing to evaluate")
    precision, recall, f1, support = precision_recall_fscore_support(Y_true, Y_pred, average=None, zero_division=0)
    used = (Y_true.sum(axis=0) + Y_pred.sum(axis=0)) > 0
    return {
        "micro_f1": _micro_f1(Y_true, Y_pred),
        "macro_f1": float(np.mean(f1[used])) if used.any() else 0.0,
        "subset_accuracy": float(np.mean((Y_true == Y_pred).all(axis=1))),
        "hamming_loss": float(np.mean(Y_true != Y_pred)),
        "per_tag": {
            tag: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for tag, p, r, f, s in zip(tags, precision, recall, f1, support)
        },
        "labels": list(tags),
        "n": int(n),
    }


def _micro_f1(Y_true: np.ndarray, Y_pred: np.ndarray) -> float:
    true_pos = float(np.sum((Y_true == 1) & (Y_pred == 1)))
    denominator = float(Y_true.sum() + Y_pred.sum())
    return 2 * true_pos / denominator if denominator else 1.0


def _folds(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(MAX_FOLDS, n // 2))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


def cross_validate_sets(make_model: Any, X: Any, Y: Any, *, tags: Sequence[Any], seed: int = 0) -> dict[str, Any]:
    """K-fold CV (k = min(5, n // 2)) of a multi-label model from ``make_model()`` (an unfitted
    :class:`OneVsRest`). Returns :func:`evaluate_sets` of the out-of-fold predictions, where the
    items of each fold are decided with thresholds chosen on the other folds' out-of-fold
    probabilities; plus ``folds``, ``n_labels`` and ``thresholds`` (chosen on all out-of-fold
    probabilities: the thresholds the round's model uses) and ``ci95``, the 95 % intervals of
    the four set metrics over the out-of-fold predictions (:func:`set_intervals`)."""
    Y = _check_Y(Y)
    reason = can_cross_validate_sets(Y)
    if reason is not None:
        raise NotEnoughLabelsError(reason)
    folds = _folds(Y.shape[0], seed)
    P = np.zeros(Y.shape, dtype=np.float64)
    for train, test in folds:
        if can_train_sets(Y[train]) is not None:  # a fold where no tag varies: the prior of each tag
            P[test] = (Y[train].sum(axis=0) + 0.5) / (len(train) + 1.0)
            continue
        P[test] = make_model().fit(X[train], Y[train]).predict_proba(X[test])
    predicted = np.zeros_like(Y)
    for _, test in folds:
        rest = np.setdiff1d(np.arange(Y.shape[0]), test)
        predicted[test] = P[test] >= choose_thresholds(Y[rest], P[rest])
    result = evaluate_sets(Y, predicted, tags)
    result["folds"] = len(folds)
    result["n_labels"] = int(Y.shape[0])
    result["thresholds"] = {tag: float(t) for tag, t in zip(tags, choose_thresholds(Y, P))}
    result["ci95"] = set_intervals(Y, predicted, seed=seed)
    return result


def audit_sets(Y_true: Any, Y_pred: Any, tags: Sequence[Any], *, seed: int = 0) -> dict[str, Any]:
    """Metrics of a model on held-out audit items with 95 % intervals (:func:`set_intervals`).
    With no items, every figure is None."""
    Y_true, Y_pred = _check_Y(Y_true), _check_Y(Y_pred)
    n = int(Y_true.shape[0])
    if n == 0:
        return {"labelled": 0, **{name: None for name in INTERVAL_METRICS},
                "ci95": {name: None for name in INTERVAL_METRICS}}
    point = evaluate_sets(Y_true, Y_pred, tags)
    exact = int(np.sum((Y_true == Y_pred).all(axis=1)))
    return {"labelled": n, "correct": exact, **{name: point[name] for name in INTERVAL_METRICS},
            "ci95": set_intervals(Y_true, Y_pred, seed=seed), "per_tag": point["per_tag"]}


INTERVAL_METRICS = ("subset_accuracy", "micro_f1", "macro_f1", "hamming_loss")


def set_intervals(Y_true: Any, Y_pred: Any, *, seed: int = 0) -> dict[str, list[float]]:
    """95 % intervals of the set metrics of predictions ``Y_pred`` of items ``Y_true``:
    ``subset_accuracy`` by the Wilson score interval with continuity correction (as the
    single-label audit), micro-F1, macro-F1 and Hamming loss by a percentile bootstrap over
    items (:data:`BOOTSTRAP` resamples, seeded). Each resample is a vector of item weights, so a
    resample costs a few matrix products, not a copy of the sets."""
    Y_true, Y_pred = _check_Y(Y_true), _check_Y(Y_pred)
    n, k = Y_true.shape
    exact = int(np.sum((Y_true == Y_pred).all(axis=1)))
    ci = binomtest(exact, n).proportion_ci(confidence_level=0.95, method="wilsoncc")
    both = ((Y_true == 1) & (Y_pred == 1)).astype(np.float64)  # per item and tag
    either = Y_true.astype(np.float64) + Y_pred  # true + predicted, per item and tag
    wrong = (Y_true != Y_pred).sum(axis=1).astype(np.float64)
    rng = np.random.default_rng(seed)
    samples = {name: np.empty(BOOTSTRAP) for name in ("micro_f1", "macro_f1", "hamming_loss")}
    step = max(1, min(BOOTSTRAP, 2_000_000 // max(n, 1)))
    for start in range(0, BOOTSTRAP, step):
        b = min(step, BOOTSTRAP - start)
        draws = rng.integers(0, n, size=(b, n))
        flat = (draws + n * np.arange(b)[:, None]).ravel()
        weights = np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        tp, total = weights @ both, weights @ either  # (b, k)
        tp_all, total_all = tp.sum(axis=1), total.sum(axis=1)
        samples["micro_f1"][start:start + b] = np.where(total_all > 0, 2 * tp_all / np.maximum(total_all, 1e-12), 1.0)
        used = total > 0
        per_tag = np.where(used, 2 * tp / np.maximum(total, 1e-12), 0.0)
        samples["macro_f1"][start:start + b] = np.where(
            used.any(axis=1), per_tag.sum(axis=1) / np.maximum(used.sum(axis=1), 1), 0.0)
        samples["hamming_loss"][start:start + b] = (weights @ wrong) / (n * max(k, 1))
    intervals = {"subset_accuracy": [float(ci.low), float(ci.high)]}
    for name, values in samples.items():
        intervals[name] = [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]
    return intervals


def set_uncertainty(P: Any, thresholds: Any, *, how: str = "max", rng: Any = None) -> np.ndarray:
    """Informativeness of each row of probabilities ``P`` (n, k): per tag, 1 at the tag's
    threshold falling to 0 at certainty (0 or 1), aggregated over the tags by ``how``: ``max``
    (the most doubtful tag decides), ``mean`` (doubt spread over the tags) or ``random``
    (uniform scores, the baseline). Higher means ask sooner."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2:
        raise InvalidInputError(f"tag probabilities must be a 2-d array (n, k), got shape {P.shape}")
    if P.size and not (np.isfinite(P).all() and P.min() >= 0.0 and P.max() <= 1.0):
        raise InvalidInputError("tag probabilities must be finite and between 0 and 1")
    if how == "random":
        return np.random.default_rng(rng).random(P.shape[0])
    if how not in SET_STRATEGIES:
        raise InvalidInputError(f"unknown multi-label strategy {how!r}; known: {', '.join(SET_STRATEGIES)}")
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (P.shape[1],))
    span = np.where(P >= t, 1.0 - t, t)
    doubt = 1.0 - np.abs(P - t) / np.maximum(span, 1e-12)
    if P.shape[1] == 0:
        return np.zeros(P.shape[0])
    return doubt.max(axis=1) if how == "max" else doubt.mean(axis=1)


def set_stability(previous_ids: Any, previous_Y: Any, ids: Any, Y: Any) -> dict[str, Any]:
    """Cohen's kappa between two models' predicted sets on their common items, over every
    item-tag decision. ``kappa`` is 1.0 for identical predictions and None with no common item;
    ``compared`` counts the common items."""
    position = {item: row for row, item in enumerate(np.asarray(previous_ids).tolist())}
    pairs = [(position[item], row) for row, item in enumerate(np.asarray(ids).tolist()) if item in position]
    if not pairs:
        return {"kappa": None, "compared": 0}
    before_rows, after_rows = (np.array(side) for side in zip(*pairs))
    before = _check_Y(previous_Y)[before_rows].ravel()
    after = _check_Y(Y)[after_rows].ravel()
    if np.array_equal(before, after):
        return {"kappa": 1.0, "compared": len(pairs)}
    return {"kappa": float(cohen_kappa_score(before, after)), "compared": len(pairs)}
