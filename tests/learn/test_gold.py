"""The gold accuracy interval (Wilson) and the flag rule."""

import random

import pytest

from labelloop.learn.gold import gold_accuracy, wilson_interval


def test_wilson_matches_published_values():
    # Newcombe (1998), table I: 81 of 263 -> 0.2553 to 0.3662; 15 of 148 -> 0.0624 to 0.1605.
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson_interval(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)


def test_wilson_at_the_ends_and_without_answers():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.83 < lo < 0.84  # 20 / (20 + z^2) = 0.8389
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.28
    for correct, answered in [(1, 1), (3, 7), (99, 100)]:
        lo, hi = wilson_interval(correct, answered)
        assert 0.0 <= lo < correct / answered < hi <= 1.0 or correct == answered


@pytest.mark.parametrize("correct, answered", [(-1, 3), (4, 3), (0, -1)])
def test_wilson_refuses_impossible_counts(correct, answered):
    with pytest.raises(ValueError, match="correct <= answered"):
        wilson_interval(correct, answered)


def test_wilson_covers_the_true_rate_about_95_percent_of_the_time():
    rng = random.Random(7)
    for p, n in [(0.95, 40), (0.7, 30)]:
        inside = 0
        for _ in range(2000):
            k = sum(rng.random() < p for _ in range(n))
            lo, hi = wilson_interval(k, n)
            inside += lo <= p <= hi
        assert 0.91 <= inside / 2000 <= 0.99


def test_flagged_only_when_the_upper_bound_is_below_the_bar():
    assert not gold_accuracy(0, 0, min_accuracy=0.8).flagged  # no answers: nothing known
    assert not gold_accuracy(14, 20, min_accuracy=0.8).flagged  # 70 % of 20: could still be 80 %
    weak = gold_accuracy(70, 100, min_accuracy=0.8)
    assert weak.flagged and weak.accuracy == 0.7 and weak.ci95[1] < 0.8
    assert not gold_accuracy(85, 100, min_accuracy=0.8).flagged
    assert gold_accuracy(85, 100, min_accuracy=0.95).flagged
    assert gold_accuracy(3, 4, min_accuracy=0.8).as_dict() == {
        "answered": 4, "correct": 3, "accuracy": 0.75, "ci95": list(wilson_interval(3, 4)), "flagged": False}
