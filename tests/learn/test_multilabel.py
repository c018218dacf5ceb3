"""Multi-label learning (pure): one-vs-rest, thresholds, metrics with intervals, strategies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression

from labelloop.errors import InvalidInputError, NotEnoughLabelsError
from labelloop.learn.multilabel import (
    SET_STRATEGIES,
    OneVsRest,
    audit_sets,
    can_train_sets,
    choose_thresholds,
    cross_validate_sets,
    evaluate_sets,
    indicator,
    set_intervals,
    set_stability,
    set_uncertainty,
    tag_classifier,
)

TAGS = ["a", "b", "c"]


def synthetic(n: int = 300, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Features 0-2 switch tags a-c on (each item has 0-3 tags), plus noise features."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < [0.5, 0.3, 0.1]).astype(np.int8)
    X = np.hstack([Y * 2.0, rng.random((n, 20)) * 0.5])
    return sp.csr_matrix(X), Y


def model() -> OneVsRest:
    return OneVsRest(LogisticRegression(C=10.0, max_iter=1000))


def test_indicator_and_unknown_tags():
    assert indicator([["a", "c"], [], ["b"]], TAGS).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(InvalidInputError, match="'z' is not among the tags"):
        indicator([["z"]], TAGS)


def test_one_vs_rest_learns_each_tag_and_survives_constant_tags():
    X, Y = synthetic()
    Y[:, 2] = 0  # nobody used tag c yet
    fitted = model().fit(X[:200], Y[:200])
    assert isinstance(fitted.estimators_[2], float) and fitted.estimators_[2] < 0.01
    P = fitted.predict_proba(X[200:])
    assert P.shape == (100, 3)
    assert (fitted.predict(X[200:])[:, :2] == Y[200:, :2]).mean() > 0.95
    assert not fitted.predict(X[200:])[:, 2].any()


def test_training_needs_a_tag_that_varies():
    assert "no item is labelled" in can_train_sets(np.zeros((0, 3)))
    assert "same answer" in can_train_sets(np.array([[1, 0, 0], [1, 0, 0]]))
    assert can_train_sets(np.array([[1, 0, 0], [0, 0, 0]])) is None
    with pytest.raises(InvalidInputError, match="0 or 1"):
        can_train_sets(np.array([[2, 0, 0]]))


def test_thresholds_maximise_each_tags_f1():
    Y = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    P = np.array([[0.9, 0.30, 0.9], [0.6, 0.25, 0.2], [0.4, 0.10, 0.1], [0.1, 0.05, 0.1]])
    t = choose_thresholds(Y, P)
    assert t[0] == pytest.approx(0.5)  # halfway between 0.6 and 0.4
    assert t[1] == pytest.approx(0.175)  # a model that is shy of tag b still finds both
    assert t[2] == 0.5  # a single positive: too few to tune


def test_evaluate_sets_by_hand():
    true = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    m = evaluate_sets(true, pred, TAGS)
    assert m["subset_accuracy"] == 0.5
    assert m["hamming_loss"] == pytest.approx(3 / 12)
    assert m["micro_f1"] == pytest.approx(2 * 2 / (4 + 3))
    assert m["per_tag"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    with pytest.raises(InvalidInputError):
        evaluate_sets(true, pred[:, :2], TAGS)


def test_cross_validation_reports_thresholds_and_honest_scores():
    X, Y = synthetic()
    cv = cross_validate_sets(model, X, Y, tags=TAGS, seed=1)
    assert cv["folds"] == 5 and cv["n_labels"] == 300
    assert set(cv["thresholds"]) == set(TAGS) and all(0 < t < 1 for t in cv["thresholds"].values())
    assert cv["micro_f1"] > 0.9
    again = cross_validate_sets(model, X, Y, tags=TAGS, seed=1)
    assert again["micro_f1"] == cv["micro_f1"]
    with pytest.raises(NotEnoughLabelsError, match="at least 4"):
        cross_validate_sets(model, X[:3], np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]]), tags=TAGS)


def test_audit_intervals():
    rng = np.random.default_rng(3)
    true = (rng.random((80, 3)) < 0.4).astype(int)
    pred = true.copy()
    pred[rng.random((80, 3)) < 0.1] ^= 1
    audit = audit_sets(true, pred, TAGS)
    exact = int((true == pred).all(axis=1).sum())
    ci = binomtest(exact, 80).proportion_ci(method="wilsoncc")
    assert audit["labelled"] == 80 and audit["correct"] == exact
    assert audit["ci95"]["subset_accuracy"] == [pytest.approx(ci.low), pytest.approx(ci.high)]
    for name in ("subset_accuracy", "micro_f1", "macro_f1", "hamming_loss"):
        lo, hi = audit["ci95"][name]
        assert lo <= audit[name] <= hi and hi - lo > 0.01
    assert audit_sets(true, pred, TAGS) == audit  # seeded
    empty = audit_sets(np.zeros((0, 3)), np.zeros((0, 3)), TAGS)
    assert empty["labelled"] == 0 and empty["micro_f1"] is None and empty["ci95"]["micro_f1"] is None


class TestEverySetStrategy:
    """The contract every multi-label strategy (how set_uncertainty aggregates) must meet, as
    TestEveryStrategy in test_strategies.py for the single-label ones."""

    P = np.array([[0.3, 0.99], [0.0, 1.0], [0.15, 0.5], [0.9, 0.6]])
    T = [0.3, 0.5]

    @pytest.fixture(params=SET_STRATEGIES)
    def how(self, request):
        return request.param

    def test_one_score_per_row_between_0_and_1(self, how):
        scores = set_uncertainty(self.P, self.T, how=how, rng=0)
        assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))

    def test_deterministic_given_rng(self, how):
        np.testing.assert_array_equal(set_uncertainty(self.P, self.T, how=how, rng=7),
                                      set_uncertainty(self.P, self.T, how=how, rng=7))

    def test_certain_rows_come_last_and_a_row_at_its_thresholds_first(self, how):
        scores = set_uncertainty(self.P, self.T, how=how, rng=0)
        if how == "random":  # no preference: the scores ignore the probabilities
            np.testing.assert_array_equal(scores, set_uncertainty(self.P[::-1], self.T, how=how, rng=0))
        else:
            assert scores[1] == 0.0 and np.argmax(scores) in (0, 2)

    def test_no_rows_and_no_tags(self, how):
        assert set_uncertainty(np.zeros((0, 2)), self.T, how=how, rng=0).shape == (0,)
        assert set_uncertainty(np.zeros((3, 0)), [], how=how, rng=0).shape == (3,)

    @pytest.mark.parametrize("bad", [np.array([0.5, 0.5]), np.array([[0.5, np.nan]]), np.array([[1.5, 0.2]])])
    def test_rejects_malformed_probabilities(self, how, bad):
        with pytest.raises(InvalidInputError):
            set_uncertainty(bad, self.T, how=how, rng=0)


def test_set_uncertainty():
    P = np.array([[0.3, 0.99], [0.0, 1.0], [0.15, 0.5]])
    t = [0.3, 0.5]
    assert set_uncertainty(P, t, how="max").tolist() == pytest.approx([1.0, 0.0, 1.0])
    assert set_uncertainty(P, t, how="mean").tolist() == pytest.approx([(1 + 0.02) / 2, 0.0, 0.75])
    r = set_uncertainty(P, t, how="random", rng=4)
    assert r.tolist() == set_uncertainty(P, t, how="random", rng=4).tolist() and r.shape == (3,)
    with pytest.raises(InvalidInputError, match="unknown multi-label strategy"):
        set_uncertainty(P, t, how="entropy")


def test_set_stability():
    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert set_stability([1, 2, 3, 4], Y, [4, 3, 2, 1], Y[::-1]) == {"kappa": 1.0, "compared": 4}
    assert set_stability([1], Y[:1], [9], Y[:1]) == {"kappa": None, "compared": 0}
    changed = Y.copy()
    changed[0, 0] = 0
    result = set_stability([1, 2, 3, 4], Y, [1, 2, 3, 4], changed)
    assert result["compared"] == 4 and 0 < result["kappa"] < 1


def test_tag_classifier_gives_logistic_regression_an_intercept():
    plain = LogisticRegression(C=10.0, fit_intercept=False, max_iter=2000)
    per_tag = tag_classifier(plain)
    assert per_tag.fit_intercept and per_tag.solver == "liblinear" and per_tag.C == 10.0
    assert not plain.fit_intercept  # the model's own classifier is left alone
    other = LogisticRegression(fit_intercept=True)
    assert tag_classifier(other) is other



def test_cross_validation_has_intervals_around_its_figures():
    X, Y = synthetic(200)
    cv = cross_validate_sets(model, X, Y, tags=TAGS, seed=2)
    for name in ("subset_accuracy", "micro_f1", "macro_f1", "hamming_loss"):
        lo, hi = cv["ci95"][name]
        assert lo <= cv[name] <= hi


def test_bootstrap_intervals_match_a_plain_resampling():
    """set_intervals' weighted resamples give the intervals of resampling the items themselves."""
    rng = np.random.default_rng(5)
    true = (rng.random((60, 4)) < 0.3).astype(int)
    pred = true.copy()
    pred[rng.random((60, 4)) < 0.15] ^= 1
    fast = set_intervals(true, pred, seed=9)
    draws = np.random.default_rng(9).integers(0, 60, size=(1000, 60))
    micro = [evaluate_sets(true[r], pred[r], list("abcd"))["micro_f1"] for r in draws]
    hamming = [np.mean(true[r] != pred[r]) for r in draws]
    assert fast["micro_f1"] == pytest.approx([np.quantile(micro, 0.025), np.quantile(micro, 0.975)])
    assert fast["hamming_loss"] == pytest.approx([np.quantile(hamming, 0.025), np.quantile(hamming, 0.975)])
