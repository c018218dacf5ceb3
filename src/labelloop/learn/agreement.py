"""Agreement between labellers on items labelled by several of them (pure; no database).

Input is a long table: one row per label, ``(item, labeller, tag)``, at most one label per
labeller and item. Only items with labels from at least two labellers carry information about
agreement; the others are ignored by every figure below.

- **percent agreement**: agreeing pairs among all pairs of labels on the same item (an item
  with ``m`` labels has ``m (m - 1) / 2`` pairs).
- **Cohen's kappa** per pair of labellers, on the items both labelled (scikit-learn's
  ``cohen_kappa_score``); None with fewer than 2 shared items or when undefined (both gave
  one and the same tag to everything).
- **Krippendorff's alpha** (nominal, the ``krippendorff`` package) over all overlap items, and
  per tag one-vs-rest (the tag against every other tag); None when undefined (a single value
  in the data, or no item with two labels).
- **confusion**: a symmetric matrix of label pairs from different labellers on the same item:
  an agreeing pair ``(t, t)`` adds 1 to the diagonal cell, a disagreeing pair ``(s, t)`` adds 1
  to both ``[s, t]`` and ``[t, s]``. Large off-diagonal cells are the tags people confuse.
- **agreement with the consensus** per labeller: on each item they labelled, the consensus is
  the tag of the strict majority of the *other* labellers of the item; items without other
  labellers or with a tie among them are skipped.

**Label sets** (multi-label projects, :func:`set_agreement`; sets are bit masks): the same
figures, where two labels agree when their sets are equal; Krippendorff's alpha uses the
**MASI distance** between sets (:func:`masi_distance`; computed by the ``krippendorff`` package
with MASI as its distance callable, checked against the definition in the tests), alpha per
tag is the binary alpha of "tag in or out", Cohen's kappa is over every item-tag decision, and
the consensus set is the per-tag strict majority of the other labellers (items where they tie
on a tag are skipped). The confusion matrix counts tags across the two sets of each pair of
labels, and ``instead`` / ``alone`` separate tags given instead of each other from tags left out.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

__all__ = ["Agreement", "SetAgreement", "agreement", "alpha_masi", "alpha_nominal", "cohen_kappa", "masi_distance",
           "set_agreement"]


@dataclass(frozen=True)
class Agreement:
    """Agreement figures of one long table of labels (see the module docstring)."""

    items_with_overlap: int
    pairs: int
    agreeing_pairs: int
    percent: float | None
    krippendorff_alpha: float | None
    alpha_per_tag: dict[Hashable, float | None]
    # (labeller a, labeller b) with a < b -> (shared items, kappa or None)
    cohen_kappa: dict[tuple[Hashable, Hashable], tuple[int, float | None]]
    tags: list[Hashable]
    confusion: np.ndarray
    # labeller -> (items compared with a consensus, of which agreeing)
    consensus: dict[Hashable, tuple[int, int]] = field(default_factory=dict)

    def consensus_share(self, labeller: Hashable) -> float | None:
        compared, agreeing = self.consensus.get(labeller, (0, 0))
        return agreeing / compared if compared else None


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def alpha_nominal(value_counts: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) of a units x values count matrix; None when undefined."""
    counts = np.asarray(value_counts, dtype=float)
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.shape[0] == 0 or pairable.shape[1] < 2 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _finite(krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal"))


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two labellers' tags on the same items; None if fewer than 2 or undefined."""
    if len(a) != len(b):
        raise ValueError("both labellers need one tag per shared item")
    if len(a) < 2:
        return None
    if set(a) == set(b) and len(set(a)) == 1:
        return None  # both gave one and the same tag to everything: chance agreement is 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(cohen_kappa_score([str(x) for x in a], [str(x) for x in b]))


def _by_item(
    items: Sequence[Hashable], labellers: Sequence[Hashable], tags: Sequence[Hashable]
) -> dict[Hashable, dict[Hashable, Hashable]]:
    if not len(items) == len(labellers) == len(tags):
        raise ValueError("items, labellers and tags must have the same length")
    table: dict[Hashable, dict[Hashable, Hashable]] = defaultdict(dict)
    for item, who, tag in zip(items, labellers, tags):
        if who in table[item]:
            raise ValueError(f"labeller {who!r} labelled item {item!r} twice")
        table[item][who] = tag
    return table


def agreement(
    items: Sequence[Hashable],
    labellers: Sequence[Hashable],
    tags: Sequence[Hashable],
    *,
    tag_order: Sequence[Hashable] = (),
) -> Agreement:
    """Every agreement figure of the long table ``(items[i], labellers[i], tags[i])``.

    ``tag_order`` fixes the rows of the confusion matrix and the keys of ``alpha_per_tag``
    (tags found in the data but not in it follow, sorted by their text)."""
    table = _by_item(items, labellers, tags)
    overlap = {item: labels for item, labels in table.items() if len(labels) >= 2}
    seen = {t for labels in overlap.values() for t in labels.values()}
    order = list(dict.fromkeys(tag_order))
    order += sorted((t for t in seen if t not in set(order)), key=str)
    index = {t: i for i, t in enumerate(order)}

    counts = np.zeros((len(overlap), len(order)), dtype=np.int64)
    confusion = np.zeros((len(order), len(order)), dtype=np.int64)
    pairs = agreeing = 0
    for row, labels in enumerate(overlap.values()):
        values = list(labels.values())
        for tag in values:
            counts[row, index[tag]] += 1
        for s, t in combinations(values, 2):
            pairs += 1
            if s == t:
                agreeing += 1
                confusion[index[s], index[s]] += 1
            else:
                confusion[index[s], index[t]] += 1
                confusion[index[t], index[s]] += 1

    per_tag: dict[Hashable, float | None] = {}
    for tag, col in index.items():
        binary = np.column_stack([counts[:, col], counts.sum(axis=1) - counts[:, col]])
        per_tag[tag] = alpha_nominal(binary)

    shared: dict[tuple[Hashable, Hashable], tuple[list[Hashable], list[Hashable]]] = defaultdict(lambda: ([], []))
    consensus: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for labels in overlap.values():
        people = sorted(labels, key=str)
        for a, b in combinations(people, 2):
            mine, theirs = shared[(a, b)]
            mine.append(labels[a])
            theirs.append(labels[b])
        for who in people:
            ranked = Counter(t for other, t in labels.items() if other != who).most_common(2)
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue  # the others are split evenly: no consensus to compare with
            consensus[who][0] += 1
            consensus[who][1] += int(labels[who] == ranked[0][0])
    kappas = {pair: (len(a), cohen_kappa(a, b)) for pair, (a, b) in sorted(shared.items(), key=lambda kv: str(kv[0]))}

    return Agreement(
        items_with_overlap=len(overlap),
        pairs=pairs,
        agreeing_pairs=agreeing,
        percent=agreeing / pairs if pairs else None,
        krippendorff_alpha=alpha_nominal(counts),
        alpha_per_tag=per_tag,
        cohen_kappa=kappas,
        tags=order,
        confusion=confusion,
        consensus={who: (c[0], c[1]) for who, c in consensus.items()},
    )


# ----------------------------------------------------------------------------- label sets


@dataclass(frozen=True)
class SetAgreement:
    """Agreement figures of one long table of label *sets* (multi-label projects): the fields
    of :class:`Agreement` (``percent``: share of label pairs with the very same set;
    ``krippendorff_alpha``: alpha with the MASI distance; ``alpha_per_tag``: binary alpha of
    each tag, in or out; ``cohen_kappa``: per pair of labellers over every item-tag decision;
    ``confusion``: see :func:`set_agreement`) plus ``instead`` and ``alone``."""

    items_with_overlap: int
    pairs: int
    agreeing_pairs: int
    percent: float | None
    krippendorff_alpha: float | None
    alpha_per_tag: dict[Hashable, float | None]
    cohen_kappa: dict[tuple[Hashable, Hashable], tuple[int, float | None]]
    tags: list[Hashable]
    confusion: np.ndarray
    instead: np.ndarray
    alone: np.ndarray
    consensus: dict[Hashable, tuple[int, int]] = field(default_factory=dict)
    alpha_metric: str = "masi"

    def consensus_share(self, labeller: Hashable) -> float | None:
        compared, agreeing = self.consensus.get(labeller, (0, 0))
        return agreeing / compared if compared else None


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _popcount(masks: np.ndarray) -> np.ndarray:
    """Set bits of each non-negative int64 mask (numpy < 2 has no bitwise_count)."""
    masks = np.asarray(masks, dtype=np.int64)
    return sum(_BYTE_BITS[(masks >> (8 * k)) & 0xFF] for k in range(8))


def masi_distance(a: Any, b: Any) -> np.ndarray:
    """MASI distance (Passonneau 2006) between tag sets given as bit masks (broadcast):
    ``1 - J * M`` with J the Jaccard index and M 1 for equal sets, 2/3 when one contains the
    other, 1/3 when they overlap otherwise, 0 when disjoint. Two empty sets are equal (0)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    both, either = _popcount(a & b), _popcount(a | b)
    jaccard = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    monotonicity = np.select(
        [a == b, (a & b) == a, (a & b) == b, both > 0], [1.0, 2 / 3, 2 / 3, 1 / 3], default=0.0)
    return 1.0 - jaccard * monotonicity


def _masi_metric(v1: Any, v2: Any, **_: Any) -> np.ndarray:
    """The ``krippendorff`` package's distance callable (it passes the value domain as
    ``v1`` (V, 1) and ``v2`` (1, V)); MASI is used as the squared difference δ² itself."""
    return masi_distance(v1, v2)


def alpha_masi(value_counts: np.ndarray, masks: np.ndarray) -> float | None:
    """Krippendorff's alpha with the MASI distance of a units x values count matrix whose
    values are the tag sets ``masks``; None when undefined (no unit with two labels, or a
    single set among the pairable labels)."""
    counts = np.asarray(value_counts, dtype=float)
    pairable = counts[counts.sum(axis=1) >= 2]
    used = pairable.sum(axis=0) > 0
    if pairable.shape[0] == 0 or used.sum() < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _finite(krippendorff.alpha(value_counts=pairable[:, used], value_domain=np.asarray(masks)[used],
                                          level_of_measurement=_masi_metric))


def _set_kappa(a: Sequence[int], b: Sequence[int], bits: Sequence[int]) -> float | None:
    """Cohen's kappa of two labellers' sets over every item-tag decision."""
    if len(a) < 2:
        return None
    shifts = np.asarray(bits, dtype=np.int64)
    left = ((np.asarray(a, dtype=np.int64)[:, None] >> shifts) & 1).ravel()
    right = ((np.asarray(b, dtype=np.int64)[:, None] >> shifts) & 1).ravel()
    return cohen_kappa(left.tolist(), right.tolist())


def set_agreement(
    items: Sequence[Hashable],
    labellers: Sequence[Hashable],
    masks: Sequence[int],
    *,
    tags: Sequence[Hashable],
    bits: Sequence[int],
) -> SetAgreement:
    """Every agreement figure of the long table ``(items[i], labellers[i], masks[i])`` of tag
    sets (bit masks; bits not in ``bits`` are ignored, e.g. retired tags'), with ``tags`` named
    in the order of their ``bits``.

    ``confusion`` extends the single-label matrix to sets: for each pair of labels on an item,
    every tag ``s`` of one set and ``t`` of the other add 1 to ``[s, t]`` and ``[t, s]`` (a tag
    both gave adds 1 to ``[t, t]``), so single-tag sets give exactly the single-label matrix.
    Its off-diagonal cells mix tags given *together* with tags given *instead of each other*;
    ``instead[s, t]`` counts only the latter (one gave ``s`` and not ``t``, the other ``t`` and
    not ``s``), and ``alone[t]`` the pairs where one gave ``t``, the other not, and nothing the
    first did not give (a tag left out rather than replaced)."""
    active = 0
    for bit in bits:
        active |= 1 << int(bit)
    table = _by_item(items, labellers, [int(m) & active for m in masks])
    overlap = {item: labels for item, labels in table.items() if len(labels) >= 2}
    shifts = np.asarray(list(bits), dtype=np.int64)
    k = len(shifts)
    values = sorted({m for labels in overlap.values() for m in labels.values()})
    column = {m: j for j, m in enumerate(values)}
    counts = np.zeros((len(overlap), len(values)), dtype=np.int64)
    per_tag = np.zeros((k, len(overlap), 2), dtype=np.int64)  # tag, unit, (in, out)
    confusion = np.zeros((k, k), dtype=np.int64)
    instead = np.zeros((k, k), dtype=np.int64)
    alone = np.zeros(k, dtype=np.int64)
    pairs = agreeing = 0
    for row, labels in enumerate(overlap.values()):
        sets = list(labels.values())
        for m in sets:
            counts[row, column[m]] += 1
            inside = (m >> shifts) & 1
            per_tag[:, row, 0] += inside
            per_tag[:, row, 1] += 1 - inside
        for a, b in combinations(sets, 2):
            pairs += 1
            agreeing += int(a == b)
            in_a, in_b = ((a >> shifts) & 1).astype(bool), ((b >> shifts) & 1).astype(bool)
            cross = np.outer(in_a, in_b).astype(np.int64)
            confusion += cross + cross.T - np.diag(np.diag(cross))
            only_a, only_b = in_a & ~in_b, in_b & ~in_a
            swapped = np.outer(only_a, only_b).astype(np.int64)
            instead += swapped + swapped.T
            if not only_b.any():
                alone += only_a
            if not only_a.any():
                alone += only_b
    kappas: dict[tuple[Hashable, Hashable], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    consensus: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for labels in overlap.values():
        people = sorted(labels, key=str)
        for a, b in combinations(people, 2):
            kappas[(a, b)][0].append(labels[a])
            kappas[(a, b)][1].append(labels[b])
        for who in people:
            others = np.array([(m >> shifts) & 1 for other, m in labels.items() if other != who])
            yes, no = others.sum(axis=0), len(others) - others.sum(axis=0)
            if (yes == no).any():
                continue  # the others tie on some tag: no consensus set to compare with
            consensus[who][0] += 1
            consensus[who][1] += int(np.array_equal((labels[who] >> shifts) & 1, (yes > no).astype(np.int64)))
    return SetAgreement(
        items_with_overlap=len(overlap),
        pairs=pairs,
        agreeing_pairs=agreeing,
        percent=agreeing / pairs if pairs else None,
        krippendorff_alpha=alpha_masi(counts, np.array(values, dtype=np.int64)),
        alpha_per_tag={tag: alpha_nominal(per_tag[j]) for j, tag in enumerate(tags)},
        cohen_kappa={pair: (len(a), _set_kappa(a, b, shifts)) for pair, (a, b) in
                     sorted(kappas.items(), key=lambda kv: str(kv[0]))},
        tags=list(tags),
        confusion=confusion,
        instead=instead,
        alone=alone,
        consensus={who: (c[0], c[1]) for who, c in consensus.items()},
    )
