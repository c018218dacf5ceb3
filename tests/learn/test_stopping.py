"""Stopping advice: stop-set stability (Cohen's kappa) and every branch of advise()."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from labelloop.learn.stopping import KAPPA_THRESHOLD, MIN_AUDIT_LABELS, STABLE_PAIRS, advise, stability

AUDIT = {"labelled": 120, "correct": 112, "accuracy": 112 / 120, "ci95": [0.8739, 0.9661]}


def test_stability_compares_common_items_only():
    # ids 1-5 before, 3-8 now: common 3, 4, 5 (tags a/b vs a/a/b)
    result = stability([1, 2, 3, 4, 5], ["a", "a", "a", "b", "b"], [3, 4, 5, 6, 7, 8], ["a", "a", "b", "c", "c", "c"])
    assert result["compared"] == 3
    assert result["kappa"] == pytest.approx(cohen_kappa_score(["a", "b", "b"], ["a", "a", "b"]))
    # by hand: po = 2/3, pe = (1/3 * 2/3) + (2/3 * 1/3) = 4/9, kappa = (2/3 - 4/9) / (5/9) = 0.4
    assert result["kappa"] == pytest.approx(0.4)


def test_identical_predictions_are_kappa_1_even_when_constant():
    assert stability([1, 2, 3], [7, 7, 7], [1, 2, 3], [7, 7, 7]) == {"kappa": 1.0, "compared": 3}
    assert stability([1, 2], ["a", "b"], [2, 1], ["b", "a"]) == {"kappa": 1.0, "compared": 2}
    assert stability([1, 2], ["a", "b"], [3], ["a"]) == {"kappa": None, "compared": 0}


def test_advice_stops_only_when_stable_over_3_pairs_and_30_audit_items():
    stable = [0.995, 1.0, 0.991]
    advice = advise(stable, AUDIT)
    assert advice["stop"] is True
    assert advice["message"] == (
        "the model's labels are estimated 93.3 % accurate (95 % CI 87.4-96.6 %, 120 audit items); "
        "labelling more changes little"
    )
    # Only the last STABLE_PAIRS kappas count.
    assert advise([0.2, *stable], AUDIT)["stop"] is True
    assert STABLE_PAIRS == 3 and KAPPA_THRESHOLD == 0.99 and MIN_AUDIT_LABELS == 30


def test_advice_keeps_labelling_while_predictions_change():
    advice = advise([0.995, 0.93, 0.999], AUDIT)
    assert advice == {"stop": False,
                      "message": "keep labelling: predictions still change between rounds (kappa 0.930 < 0.99)"}


def test_a_kappa_just_below_the_threshold_never_reads_as_equal():
    assert "(kappa 0.989 < 0.99)" in advise([1.0, 0.98999, 1.0], AUDIT)["message"]


def test_advice_keeps_labelling_before_3_comparisons():
    for kappas in ([], [1.0], [None, 1.0, 1.0], [1.0, 1.0]):
        advice = advise(kappas, AUDIT)
        assert advice["stop"] is False
        known = sum(k is not None for k in kappas[-3:])
        assert advice["message"] == (
            f"keep labelling: predictions compared between {known} of 3 pairs of consecutive models so far"
        )


def test_advice_keeps_labelling_with_too_few_audit_items():
    few = {"labelled": 12, "correct": 11, "accuracy": 11 / 12, "ci95": [0.6461, 0.9851]}
    assert advise([1.0, 1.0, 1.0], few) == {
        "stop": False, "message": "keep labelling: only 12 audit items labelled (30 needed for an estimate)"}
    assert advise([1.0, 1.0, 1.0], None)["message"].endswith("only 0 audit items labelled (30 needed for an estimate)")


def test_advice_gives_every_reason_at_once():
    few = {"labelled": 29, "correct": 29, "accuracy": 1.0, "ci95": [0.88, 1.0]}
    assert advise([0.5, 1.0, 1.0], few)["message"] == (
        "keep labelling: predictions still change between rounds (kappa 0.500 < 0.99); "
        "only 29 audit items labelled (30 needed for an estimate)"
    )


def test_the_stability_sentence_says_little_only_from_the_advices_threshold():
    from labelloop.learn.stopping import describe_stability

    assert describe_stability(0.788, since="v3", compared=1000) == (
        "Predictions still change since v3: Cohen's kappa 0.788 < 0.99 (stable from 0.99) on 1,000 fixed random items.")
    # just below the threshold: rounded down, never "0.990 < 0.99", and not "little"
    assert describe_stability(0.9899, since="v3", compared=200).startswith(
        "Predictions still change since v3: Cohen's kappa 0.989 < 0.99")
    assert describe_stability(KAPPA_THRESHOLD, since="v3", compared=200) == (
        "Predictions changed little since v3: Cohen's kappa 0.990 ≥ 0.99 on 200 fixed random items.")
    # the advice judges the same kappa the same way
    assert "kappa 0.788 < 0.99" in advise([1.0, 1.0, 0.788], AUDIT)["message"]


def test_an_audit_accuracy_is_shown_only_with_its_interval_and_enough_items():
    from labelloop.learn.stopping import describe_audit

    few = describe_audit({"labelled": 5, "correct": 5, "accuracy": 1.0, "ci95": [0.57, 1.0]})
    assert few == {"labelled": 5, "needed": MIN_AUDIT_LABELS, "shown": False, "accuracy": None, "ci95": None,
                   "message": f"too few audit items (5 of {MIN_AUDIT_LABELS})"}
    assert describe_audit(None)["message"] == f"too few audit items (0 of {MIN_AUDIT_LABELS})"
    enough = describe_audit(AUDIT)
    assert enough["shown"] and enough["accuracy"] == AUDIT["accuracy"] and enough["ci95"] == AUDIT["ci95"]
    no_interval = describe_audit({**AUDIT, "ci95": None})
    assert not no_interval["shown"] and no_interval["message"] == "no 95 % interval recorded for this version"


def test_advice_on_label_sets_names_exact_sets_and_micro_f1():
    sets = {**AUDIT, "micro_f1": 0.8123, "intervals": {"micro_f1": [0.78, 0.84]}}
    advice = advise([0.995, 1.0, 0.991], sets)
    assert advice["stop"] is True
    assert advice["message"] == (
        "the model's tag sets are estimated 93.3 % exactly right (95 % CI 87.4-96.6 %) with micro-F1 0.812 "
        "(95 % CI 0.780-0.840) on 120 audit items; labelling more changes little"
    )
    assert advise([0.5, 1.0, 1.0], sets)["stop"] is False
