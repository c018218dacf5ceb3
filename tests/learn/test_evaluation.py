"""Evaluation: metrics by hand, the enough-labels guards, fold choice and cross-validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelloop.errors import InvalidInputError, NotEnoughLabelsError
from labelloop.learn.evaluation import (
    audit_estimate,
    can_cross_validate,
    can_train,
    cross_validate,
    evaluate,
    n_folds,
)
from labelloop.learn.features import make_featurizer
from labelloop.learn.models import get_model_spec


def test_metrics_on_a_hand_computed_example():
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    result = evaluate(y_true, y_pred, ["a", "b", "c"])
    # correct at positions 0, 1, 3, 5 -> accuracy 4/6
    assert result["accuracy"] == pytest.approx(4 / 6)
    # a: TP 2, FP 0, FN 1 -> P 1,   R 2/3, F1 2*(2/3)/(5/3) = 0.8
    # b: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 0.5
    # c: TP 1, FP 1, FN 0 -> P 1/2, R 1,   F1 2*(1/2)/(3/2) = 2/3
    expected = {
        "a": {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3},
        "b": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "c": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1},
    }
    for tag, metrics in expected.items():
        assert result["per_tag"][tag] == pytest.approx(metrics)
    # macro F1 = (0.8 + 0.5 + 2/3) / 3 = 0.655556
    assert result["macro_f1"] == pytest.approx(0.655556, abs=1e-6)
    # rows: true a, b, c; columns: predicted a, b, c
    assert result["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert result["labels"] == ["a", "b", "c"]
    json.dumps(result)  # plain Python types only


def test_label_order_and_unused_tags():
    result = evaluate(["a", "b", "b"], ["a", "b", "a"], ["d", "b", "a"])
    assert result["labels"] == ["d", "b", "a"]
    assert result["confusion"] == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert result["per_tag"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # a: P 1/2 R 1 F1 2/3; b: P 1 R 1/2 F1 2/3; the unused d is not averaged in
    assert result["macro_f1"] == pytest.approx(2 / 3)


def test_integer_tags_serialise():
    result = evaluate(np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([0, 1]))
    assert result["labels"] == [0, 1] and type(result["labels"][0]) is int
    json.dumps(result)


def test_evaluate_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="not among the labels given: z"):
        evaluate(["a", "b"], ["a", "z"], ["a", "b"])
    with pytest.raises(InvalidInputError, match="same length"):
        evaluate(["a", "b"], ["a"], ["a", "b"])
    with pytest.raises(NotEnoughLabelsError, match="nothing to evaluate"):
        evaluate([], [], ["a", "b"])


@pytest.mark.parametrize(
    "y, train_reason, cv_reason",
    [
        ([], "no item is labelled", "no item is labelled"),
        (["spam"] * 4, "all 4 labels are 'spam'; need at least 2 different tags", "need at least 2 different tags"),
        (["spam", "ham"], None, "tags 'ham', 'spam' have only 1 label"),
        (["spam", "ham", "ham", "ham"], None, "tag 'spam' has only 1 label; cross-validation needs at least 2 per tag"),
        (["spam", "ham", "ham", "spam"], None, None),
    ],
)
def test_guards(y, train_reason, cv_reason):
    for got, expected in ((can_train(y), train_reason), (can_cross_validate(y), cv_reason)):
        if expected is None:
            assert got is None
        else:
            assert got.startswith("not enough labels yet: ") and expected in got


@pytest.mark.parametrize(
    "counts, folds",
    [
        ({"a": 2, "b": 2}, 2),
        ({"a": 2, "b": 50}, 2),
        ({"a": 3, "b": 3}, 3),
        ({"a": 4, "b": 9}, 4),
        ({"a": 7, "b": 90}, 5),
    ],
)
def test_number_of_folds(counts, folds):
    y = [tag for tag, count in counts.items() for _ in range(count)]
    assert n_folds(y) == folds


@pytest.fixture(scope="module")
def tfidf(corpus):
    return make_featurizer("tfidf").fit_transform(corpus[0])


def test_cross_validate_returns_out_of_fold_metrics(corpus, tfidf):
    tags = corpus[1]
    calls = []

    def make_classifier():
        calls.append(1)
        return get_model_spec("tfidf-logreg").make_classifier()

    result = cross_validate(make_classifier, tfidf, tags, labels=["sport", "food", "space"])
    assert result["folds"] == 5 and len(calls) == 5  # 15 per tag -> min(5, 15); fresh model per fold
    assert result["n_labels"] == 45
    assert result["labels"] == ["sport", "food", "space"]
    assert sum(map(sum, result["confusion"])) == 45  # every label predicted exactly once
    assert [row for row in map(sum, result["confusion"])] == [15, 15, 15]
    assert result["accuracy"] >= 0.9 and result["macro_f1"] >= 0.9
    again = cross_validate(make_classifier, tfidf, tags, labels=["sport", "food", "space"])
    assert again == result  # deterministic for a seed


def test_cross_validate_with_imbalanced_rare_tag(corpus, tfidf):
    tags = corpus[1]
    rare_food = np.flatnonzero(tags == "food")[:2]
    rows = np.concatenate([rare_food, np.flatnonzero(tags != "food")])
    spec = get_model_spec("tfidf-svm")  # training folds hold 1 food: the uncalibrated path
    result = cross_validate(spec.make_classifier, tfidf[rows], tags[rows], seed=3)
    assert result["folds"] == 2
    assert result["labels"] == ["food", "space", "sport"]  # default: sorted tags of y
    assert result["per_tag"]["food"]["support"] == 2
    assert result["per_tag"]["sport"]["recall"] >= 0.8


@pytest.mark.parametrize(
    "tags, message",
    [
        (["food"] * 6, "need at least 2 different tags"),
        (["food", "food", "food", "space", "space", "sport"], "tag 'sport' has only 1 label"),
    ],
)
def test_cross_validate_refuses_too_few_labels(tags, message, tfidf):
    make = get_model_spec("tfidf-logreg").make_classifier
    with pytest.raises(NotEnoughLabelsError, match=f"not enough labels yet: .*{message}"):
        cross_validate(make, tfidf[: len(tags)], np.array(tags), labels=["food", "space", "sport"])


def test_cross_validate_checks_shapes(tfidf):
    with pytest.raises(InvalidInputError, match="X has 45 rows but there are 4 labels"):
        cross_validate(get_model_spec("tfidf-logreg").make_classifier, tfidf, ["a", "a", "b", "b"])


def _wilson_cc(c: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval with continuity correction by its textbook formula (Newcombe 1998)."""
    p = c / n
    lo = 0.0 if c == 0 else (2 * n * p + z * z - 1 - z * np.sqrt(z * z - 2 - 1 / n + 4 * p * (n * (1 - p) + 1))) / (
        2 * (n + z * z))
    hi = 1.0 if c == n else (2 * n * p + z * z + 1 + z * np.sqrt(z * z + 2 - 1 / n + 4 * p * (n * (1 - p) - 1))) / (
        2 * (n + z * z))
    return lo, hi


@pytest.mark.parametrize(("c", "n"), [(45, 50), (30, 30), (0, 7), (93, 120)])
def test_audit_estimate_is_the_accuracy_with_a_continuity_corrected_wilson_interval(c, n):
    y_true = ["a"] * n
    y_pred = ["a"] * c + ["b"] * (n - c)
    result = audit_estimate(y_true, y_pred)
    assert (result["labelled"], result["correct"]) == (n, c)
    assert result["accuracy"] == pytest.approx(c / n)
    assert result["ci95"] == pytest.approx(list(_wilson_cc(c, n)), abs=1e-9)
    assert result["ci95"][0] <= result["accuracy"] <= result["ci95"][1]
    json.dumps(result)


def test_the_audit_interval_covers_95_percent_even_near_accuracy_1():
    """Exact coverage over the binomial, where plain Wilson falls to about 86 %."""
    from scipy.stats import binom

    n = 50
    bounds = [audit_estimate(["a"] * n, ["a"] * c + ["b"] * (n - c))["ci95"] for c in range(n + 1)]
    for p in np.linspace(0.5, 0.999, 200):
        weights = binom.pmf(np.arange(n + 1), n, p)
        covered = sum(w for w, (lo, hi) in zip(weights, bounds) if lo <= p <= hi)
        assert covered >= 0.95 - 1e-9


def test_audit_estimate_without_audit_items_is_null():
    assert audit_estimate([], []) == {"labelled": 0, "correct": 0, "accuracy": None, "ci95": None}
    with pytest.raises(InvalidInputError):
        audit_estimate(["a"], ["a", "b"])
