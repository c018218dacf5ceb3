"""Small scikit-learn classifiers that cope with the tiny, growing label sets of active learning.

Both are ordinary estimators (``get_params``/``clone``/pickle work) that pick how to train at
``fit`` time from the labels they are given, so one model name works from the first handful of
labels to tens of thousands.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from labelloop.errors import NotEnoughLabelsError

__all__ = ["AdaptiveMLPClassifier", "CalibratedLinearSVC"]


def _class_counts(y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise NotEnoughLabelsError(
            f"not enough labels yet: need at least 2 different tags to train, have {len(classes)}"
        )
    return y, classes, counts


class _DelegatingClassifier(ClassifierMixin, BaseEstimator):
    """Shared ``predict``/``predict_proba`` on top of a fitted ``model_``."""

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CalibratedLinearSVC(_DelegatingClassifier):
    """LinearSVC with probabilities, robust to classes with very few examples.

    When every class has at least 2 examples, it is a ``CalibratedClassifierCV`` (sigmoid)
    over ``cv = min(max_cv, smallest class count)`` stratified folds. When some class has a
    single example no calibration split is possible, so the SVM is fitted on everything and
    its margins are squashed into probabilities (logistic for 2 classes, softmax otherwise):
    uncalibrated, but correctly ordered, which is all a query strategy needs.
    ``calibrated_`` records which path was taken. No intercept by default, for the reason
    given in :mod:`labelloop.learn.models`.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        fit_intercept: bool = False,
        class_weight: Any = None,
        random_state: int | None = 0,
        max_cv: int = 3,
    ):
        self.C = C
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.random_state = random_state
        self.max_cv = max_cv

    def fit(self, X: Any, y: Any) -> CalibratedLinearSVC:
        y, classes, counts = _class_counts(y)
        svc = LinearSVC(
            C=self.C,
            fit_intercept=self.fit_intercept,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )
        n_splits = int(min(self.max_cv, counts.min()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if n_splits >= 2:
                cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
                self.model_ = CalibratedClassifierCV(svc, method="sigmoid", cv=cv).fit(X, y)
                self.calibrated_ = True
            else:
                self.model_ = svc.fit(X, y)
                self.calibrated_ = False
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        if self.calibrated_:
            return self.model_.predict_proba(X)
        margins = self.model_.decision_function(X)
        if margins.ndim == 1:
            positive = expit(margins)
            return np.column_stack([1.0 - positive, positive])
        return softmax(margins, axis=1)


class AdaptiveMLPClassifier(_DelegatingClassifier):
    """A small one-hidden-layer MLPClassifier; early stopping only once there is data for it.

    Sized for 200,000 tf-idf columns: 32 hidden units, Adam with a large step (1e-2) and at
    most 50 epochs keep a fit to a few seconds (on BBC News it is also more accurate with few
    labels than the scikit-learn defaults, 64 units and 200 epochs, which took 10x longer).

    Early stopping holds out ``validation_fraction`` of the labels, which is harmful (or
    impossible) with a few dozen; it is switched on only when there are at least
    ``early_stopping_min_samples`` labels and every class has at least 10.
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (32,),
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-2,
        max_iter: int = 50,
        early_stopping_min_samples: int = 1000,
        random_state: int | None = 0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping_min_samples = early_stopping_min_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> AdaptiveMLPClassifier:
        y, _, counts = _class_counts(y)
        early = bool(len(y) >= self.early_stopping_min_samples and counts.min() >= 10)
        self.model_ = MLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            early_stopping=early,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(X, y)
        self.early_stopping_ = early
        self.classes_ = self.model_.classes_
        return self
