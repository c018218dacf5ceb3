"""Scores of learning curves: area under the curve and labels needed to reach a target.

A curve is a list of ``[labels, accuracy, macro_f1]`` points with increasing ``labels`` (for label
sets, ``[labels, micro_f1, macro_f1]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TARGET_SHARE", "aulc", "labels_to_reach", "median_labels", "summarize"]

TARGET_SHARE = 0.95
_COLUMN = {"accuracy": 1, "micro_f1": 1, "macro_f1": 2}


def aulc(curve: Sequence[Sequence[float]], metric: str = "macro_f1") -> float:
    """Area under the ``metric`` curve (trapezoids) divided by its label range.

    So it is the curve's mean height, between 0 and 1; a curve of one point is that point.
    """
    points = np.asarray([[p[0], p[_COLUMN[metric]]] for p in curve], dtype=np.float64)
    if len(points) == 1:
        return float(points[0, 1])
    x, y = points[:, 0], points[:, 1]
    return float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)) / (x[-1] - x[0]))


def labels_to_reach(curve: Sequence[Sequence[float]], target: float, metric: str = "macro_f1") -> int | None:
    """The fewest labels at which the curve reaches ``target``; None if it never does."""
    column = _COLUMN[metric]
    for point in curve:
        if point[column] >= target:
            return int(point[0])
    return None


def median_labels(values: Sequence[int | None]) -> float | None:
    """Median over seeds, a seed that never reached the target counting as infinitely many
    labels; None when the median itself is such a seed (most seeds never got there)."""
    finite = np.asarray([math.inf if v is None else v for v in values], dtype=np.float64)
    median = float(np.median(finite))
    return None if math.isinf(median) or math.isnan(median) else median


def summarize(runs: Sequence[dict[str, Any]], full_pool: dict[str, Any], *,
              multi_label: bool = False) -> dict[str, dict[str, Any]]:
    """Per configuration: mean AULC (macro-F1, and accuracy or for label sets micro-F1) and median
    labels to 95 % of full pool."""
    first = "micro_f1" if multi_label else "accuracy"
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_strategy.setdefault(run["strategy"], []).append(run)
    targets = {metric: TARGET_SHARE * full_pool[metric] for metric in ("macro_f1", first)}
    summary: dict[str, dict[str, Any]] = {}
    for name, group in by_strategy.items():
        group = sorted(group, key=lambda r: r["seed"])
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in group]}
        for metric, suffix in (("macro_f1", ""), (first, "_" + first)):
            areas = [aulc(r["curve"], metric) for r in group]
            reached = [labels_to_reach(r["curve"], targets[metric], metric) for r in group]
            entry[f"aulc_{metric}"] = float(np.mean(areas))
            entry[f"aulc_{metric}_std"] = float(np.std(areas))
            entry[f"labels_to_95pct{suffix}"] = median_labels(reached)
            entry[f"labels_to_95pct{suffix}_per_seed"] = reached
            entry[f"final_{metric}"] = float(np.mean([r["curve"][-1][_COLUMN[metric]] for r in group]))
        summary[name] = entry
    return summary
