"""Agreement on label sets (bit masks): MASI distance and alpha against their definitions, the
single-label figures as the special case of one-tag sets, and the instead/alone views."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from labelloop.learn.agreement import agreement, masi_distance, set_agreement

# the single-label fixture of test_agreement.py
FIXTURE = [
    ("i1", "alice", "A"), ("i1", "bob", "A"), ("i1", "carol", "A"),
    ("i2", "alice", "A"), ("i2", "bob", "B"),
    ("i3", "alice", "B"), ("i3", "bob", "B"), ("i3", "carol", "A"),
    ("i4", "bob", "C"), ("i4", "carol", "C"),
    ("i5", "alice", "A"),
]

A, B, C = 1, 2, 4  # the masks of tags a, b, c (bits 0, 1, 2)
BITS, TAGS = [0, 1, 2], ["a", "b", "c"]


def run(rows, **kwargs):
    items, labellers, masks = zip(*rows) if rows else ((), (), ())
    return set_agreement(list(items), list(labellers), list(masks), tags=TAGS, bits=BITS, **kwargs)


def test_masi_distance_by_hand():
    assert masi_distance(A | B, A | B) == 0.0 and masi_distance(0, 0) == 0.0
    assert masi_distance(A, A | B) == pytest.approx(1 - (1 / 2) * (2 / 3))  # subset
    assert masi_distance(A | B, B | C) == pytest.approx(1 - (1 / 3) * (1 / 3))  # overlap
    assert masi_distance(A, B) == 1.0 and masi_distance(0, A) == 1.0  # disjoint, empty
    assert masi_distance(np.array([A, A | B]), A).tolist() == pytest.approx([0.0, 2 / 3])


def alpha_by_definition(units: list[list[int]]) -> float:
    """Krippendorff's alpha 1 - D_o / D_e with the MASI distance, from its definition."""
    pairable = [u for u in units if len(u) >= 2]
    values = [v for u in pairable for v in u]
    n = len(values)
    observed = sum(sum(masi_distance(a, b) for a, b in permutations(u, 2)) / (len(u) - 1) for u in pairable) / n
    expected = sum(masi_distance(values[i], values[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return 1 - observed / expected


def test_masi_alpha_matches_its_definition():
    rng = np.random.default_rng(2)
    rows = []
    for item in range(30):
        truth = int(rng.integers(0, 8))
        for who in rng.choice(["ann", "bob", "cy"], size=int(rng.integers(1, 4)), replace=False):
            mask = truth ^ (1 << int(rng.integers(3))) if rng.random() < 0.3 else truth
            rows.append((item, str(who), mask))
    report = run(rows)
    units: dict[int, list[int]] = {}
    for item, _, mask in rows:
        units.setdefault(item, []).append(mask)
    assert report.krippendorff_alpha == pytest.approx(alpha_by_definition(list(units.values())))
    assert 0.2 < report.krippendorff_alpha < 0.95 and report.alpha_metric == "masi"


def test_one_tag_sets_give_the_single_label_figures():
    letters = {"A": A, "B": B, "C": C}
    single = agreement(*map(list, zip(*FIXTURE)), tag_order=["A", "B", "C"])
    sets = set_agreement([r[0] for r in FIXTURE], [r[1] for r in FIXTURE], [letters[r[2]] for r in FIXTURE],
                         tags=["A", "B", "C"], bits=BITS)
    assert (sets.items_with_overlap, sets.pairs, sets.agreeing_pairs) == (
        single.items_with_overlap, single.pairs, single.agreeing_pairs)
    assert sets.krippendorff_alpha == pytest.approx(single.krippendorff_alpha)  # MASI is nominal on one tag
    assert sets.confusion.tolist() == single.confusion.tolist()
    for tag in "ABC":
        assert sets.alpha_per_tag[tag] == pytest.approx(single.alpha_per_tag[tag])
    assert sets.consensus == single.consensus


def test_tags_given_together_instead_or_left_out():
    report = run([
        ("i1", "ann", A | B), ("i1", "bob", A | B),  # agree on a and b
        ("i2", "ann", A), ("i2", "bob", B),  # b instead of a
        ("i3", "ann", A | C), ("i3", "bob", A),  # c left out
        ("i4", "ann", 0), ("i4", "bob", 0),  # both: none applies
    ])
    assert (report.pairs, report.agreeing_pairs, report.percent) == (4, 2, 0.5)
    # i1: a-b across the two sets both ways (2), i2: a-b once; i3: a-a, a-c
    assert report.confusion.tolist() == [[2, 3, 1], [3, 1, 0], [1, 0, 0]]
    assert report.instead.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert report.alone.tolist() == [0, 0, 1]
    # per pair of labellers: kappa over the 12 item-tag decisions
    (pair, (shared, kappa)), = report.cohen_kappa.items()
    assert pair == ("ann", "bob") and shared == 4 and -1 <= kappa < 1


def test_perfect_and_undefined_agreement():
    perfect = run([(i, who, m) for i, m in enumerate([A, A | B, 0, C]) for who in ("ann", "bob")])
    assert perfect.krippendorff_alpha == 1.0 and perfect.percent == 1.0
    assert perfect.alpha_per_tag == {"a": 1.0, "b": 1.0, "c": 1.0}
    same = run([(1, "ann", A), (1, "bob", A), (2, "ann", A), (2, "bob", A)])
    assert same.krippendorff_alpha is None and same.alpha_per_tag["b"] is None  # one value: undefined
    assert run([]).krippendorff_alpha is None and run([]).percent is None


def test_bits_outside_the_active_tags_are_ignored():
    retired = 1 << 5
    report = run([(1, "ann", A | retired), (1, "bob", A)])
    assert report.agreeing_pairs == 1


def test_consensus_is_the_per_tag_majority_of_the_others():
    report = run([(1, "ann", A | B), (1, "bob", A | B), (1, "cy", A), (2, "ann", A), (2, "bob", B)])
    # item 1: ann vs {bob, cy} ties on b -> skipped; bob likewise; cy vs {ann, bob} = a|b: disagrees
    # item 2: each has one other: ann vs bob's set (b): disagrees; bob vs ann's (a): disagrees
    assert report.consensus == {"cy": (1, 0), "ann": (1, 0), "bob": (1, 0)}
