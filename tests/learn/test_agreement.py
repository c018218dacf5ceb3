"""Agreement figures against values computed by hand, edge cases, and noisy simulated labellers."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.learn.agreement import agreement, alpha_nominal, cohen_kappa

# i1: everyone says A; i2: alice and bob split; i3: two B, one A; i4: bob and carol agree on C;
# i5 has a single label (no overlap: ignored by every figure).
FIXTURE = [
    ("i1", "alice", "A"), ("i1", "bob", "A"), ("i1", "carol", "A"),
    ("i2", "alice", "A"), ("i2", "bob", "B"),
    ("i3", "alice", "B"), ("i3", "bob", "B"), ("i3", "carol", "A"),
    ("i4", "bob", "C"), ("i4", "carol", "C"),
    ("i5", "alice", "A"),
]


def run(rows, **kwargs):
    items, labellers, tags = zip(*rows) if rows else ((), (), ())
    return agreement(list(items), list(labellers), list(tags), **kwargs)


def test_hand_computed_fixture():
    report = run(FIXTURE, tag_order=["A", "B", "C"])
    assert report.items_with_overlap == 4
    # pairs: i1 3 agreeing of 3, i2 0 of 1, i3 1 of 3, i4 1 of 1
    assert (report.agreeing_pairs, report.pairs) == (5, 8)
    assert report.percent == pytest.approx(5 / 8)
    # coincidences o_AA=3, o_AB=o_BA=2, o_BB=1, o_CC=2; n=10, n_A=5, n_B=3, n_C=2:
    # D_o = 4/10, D_e = (100 - 25 - 9 - 4) / 90, alpha = 1 - D_o / D_e = 13/31
    assert report.krippendorff_alpha == pytest.approx(13 / 31)
    # one-vs-rest: A 1 - 0.4 / (50/90) = 0.28; B 1 - 0.4 / (42/90) = 1/7; C never confused = 1
    assert report.alpha_per_tag["A"] == pytest.approx(0.28)
    assert report.alpha_per_tag["B"] == pytest.approx(1 / 7)
    assert report.alpha_per_tag["C"] == pytest.approx(1.0)
    # alice/bob on i1-i3: p_o = 2/3, p_e = 4/9 -> 0.4; alice/carol on i1, i3: p_o = p_e = 1/2 -> 0;
    # bob/carol on i1, i3, i4: p_o = 2/3, p_e = 1/3 -> 0.5
    assert report.cohen_kappa[("alice", "bob")] == (3, pytest.approx(0.4))
    assert report.cohen_kappa[("alice", "carol")] == (2, pytest.approx(0.0))
    assert report.cohen_kappa[("bob", "carol")] == (3, pytest.approx(0.5))
    assert report.tags == ["A", "B", "C"]
    assert report.confusion.tolist() == [[3, 3, 0], [3, 1, 0], [0, 0, 1]]
    # consensus of the others: alice agrees on i1, not on i2 (i3 is a tie among bob and carol)
    assert report.consensus == {"alice": (2, 1), "bob": (3, 2), "carol": (3, 2)}
    assert report.consensus_share("alice") == pytest.approx(0.5)
    assert report.consensus_share("nobody") is None


def test_tags_outside_the_given_order_follow_it():
    report = run(FIXTURE, tag_order=["C", "Z"])
    assert report.tags == ["C", "Z", "A", "B"]
    assert report.alpha_per_tag["Z"] is None  # never used: undefined
    assert report.confusion[0, 0] == 1 and report.confusion[1].sum() == 0


def test_no_overlap_gives_empty_figures():
    report = run([("i1", "alice", "A"), ("i2", "bob", "B")])
    assert report.items_with_overlap == 0 and report.pairs == 0
    assert report.percent is None and report.krippendorff_alpha is None
    assert report.cohen_kappa == {} and report.consensus == {}
    assert run([]).percent is None


def test_one_tag_only_is_full_agreement_but_alpha_and_kappa_are_undefined():
    rows = [(f"i{i}", who, "A") for i in range(5) for who in ("alice", "bob")]
    report = run(rows)
    assert report.percent == 1.0
    assert report.krippendorff_alpha is None
    assert report.cohen_kappa[("alice", "bob")] == (5, None)
    assert report.consensus["alice"] == (5, 5)


def test_perfect_agreement_on_several_tags():
    rows = [(f"i{i}", who, "AB"[i % 2]) for i in range(6) for who in ("alice", "bob", "carol")]
    report = run(rows)
    assert report.percent == 1.0 and report.krippendorff_alpha == pytest.approx(1.0)
    assert all(k == pytest.approx(1.0) for _, k in report.cohen_kappa.values())
    assert report.alpha_per_tag == {"A": pytest.approx(1.0), "B": pytest.approx(1.0)}
    assert report.confusion.tolist() == [[9, 0], [0, 9]]


def test_kappa_needs_two_shared_items():
    report = run([("i1", "alice", "A"), ("i1", "bob", "B")])
    assert report.cohen_kappa == {("alice", "bob"): (1, None)}
    assert cohen_kappa(["A"], ["B"]) is None
    assert cohen_kappa(["A", "B"], ["A", "B"]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["A"], ["A", "B"])


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="twice"):
        run([("i1", "alice", "A"), ("i1", "alice", "B")])
    with pytest.raises(ValueError, match="same length"):
        agreement(["i1"], ["alice", "bob"], ["A"])


def test_alpha_of_a_count_matrix():
    assert alpha_nominal(np.array([[2, 0], [0, 2], [1, 1]])) == pytest.approx(4 / 9)
    assert alpha_nominal(np.array([[1, 0], [0, 1]])) is None  # nothing pairable


def simulated(noise: float, rng: np.random.Generator, n_items: int = 400, k: int = 4, labellers: int = 3):
    """Labellers who copy the true tag, except with probability ``noise`` a uniformly random one."""
    truth = rng.integers(0, k, n_items)
    rows = []
    for who in range(labellers):
        flip = rng.random(n_items) < noise
        given = np.where(flip, rng.integers(0, k, n_items), truth)
        rows += [(i, f"l{who}", int(t)) for i, t in enumerate(given)]
    return run(rows)


def test_noisier_labellers_agree_less():
    rng = np.random.default_rng(42)
    noise_levels = [0.0, 0.1, 0.3, 0.5, 0.8]
    reports = [simulated(noise, rng) for noise in noise_levels]
    alphas = [r.krippendorff_alpha for r in reports]
    assert alphas[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(alphas, alphas[1:])), alphas
    # with noise p and k = 4 tags, a label is right with probability 1 - 3p/4, and the expected
    # alpha (chance-corrected) is about (1 - p)^2: check the middle level is near it
    assert alphas[2] == pytest.approx((1 - 0.3) ** 2, abs=0.06)
    percents = [r.percent for r in reports]
    assert all(a > b for a, b in zip(percents, percents[1:])), percents
    assert all(
        a > b for a, b in zip((r.consensus_share("l0") for r in reports), (r.consensus_share("l0") for r in reports[1:]))
    )
