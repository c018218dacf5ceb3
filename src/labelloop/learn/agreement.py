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
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

__all__ = ["Agreement", "agreement", "alpha_nominal", "cohen_kappa"]


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
