"""Plots of a simulation's results (matplotlib, Agg backend, PNG).

Left: test macro-F1 against labels, the mean over seeds with a band from the worst to the
best seed, the full-pool score and 95 % of it. Right: the CV-vs-test drift, the macro-F1
that cross-validation on the labelled rows alone reports minus the test macro-F1 (0 = CV is
unbiased): on actively chosen items CV is biased (they are the hard ones), on random ones it
is not.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["curves_by_strategy", "plot_results"]


def curves_by_strategy(results: dict[str, Any], key: str = "curve", column: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per strategy: (labels, values of shape (seeds, points)) of ``key`` curves; None -> NaN."""
    grouped: dict[str, list[list[Any]]] = {}
    for run in results["runs"]:
        grouped.setdefault(run["strategy"], []).append(run[key])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, curves in grouped.items():
        length = min(len(c) for c in curves)
        labels = np.asarray([p[0] for p in curves[0][:length]], dtype=np.float64)
        values = np.asarray(
            [[np.nan if p[column] is None else p[column] for p in c[:length]] for c in curves], dtype=np.float64
        )
        out[name] = (labels, values)
    return out


def plot_results(
    results: dict[str, Any], path: str | Path, *, title: str | None = None, strategies: list[str] | None = None
) -> Path:
    """Draw the learning curves and the CV-vs-test drift of ``results`` into the PNG ``path``
    (only the configurations named in ``strategies``, if given, in that order)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    path = Path(path)
    figure = Figure(figsize=(13, 5), dpi=110, layout="constrained")
    curve_ax, drift_ax = figure.subplots(1, 2)
    # label sets: micro-F1 (column 1) is the headline; otherwise macro-F1 (column 2)
    metric, column, label = ("micro_f1", 1, "micro-F1") if results["settings"].get("multi_label") else \
        ("macro_f1", 2, "macro-F1")
    test = curves_by_strategy(results, "curve", column)
    cv = curves_by_strategy(results, "cv", column)
    if strategies is not None:
        test = {name: test[name] for name in strategies if name in test}
    colours = matplotlib.colormaps["tab10" if len(test) <= 10 else "tab20"]
    for i, (name, (labels, values)) in enumerate(test.items()):
        colour = colours(i % colours.N)
        mean = values.mean(axis=0)
        curve_ax.plot(labels, mean, color=colour, label=f"{name} (AULC {results['summary'][name][f'aulc_{metric}']:.3f})")
        if values.shape[0] > 1:
            curve_ax.fill_between(labels, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.18, linewidth=0)
        cv_labels, cv_values = cv[name]
        with warnings.catch_warnings():  # all-NaN columns: "mean of empty slice"
            warnings.simplefilter("ignore", RuntimeWarning)
            drift = np.nanmean(cv_values - values[:, : cv_values.shape[1]], axis=0)
        known = ~np.isnan(drift)
        if known.any():
            drift_ax.plot(cv_labels[known], drift[known], color=colour, marker=".", label=name)
    full = results["full_pool"][metric]
    share = results["settings"].get("target_share", 0.95)
    curve_ax.axhline(full, color="black", linewidth=0.8, label=f"full pool ({full:.3f})")
    drift_ax.axhline(0.0, color="black", linewidth=0.8)
    for ax in (curve_ax, drift_ax):
        ax.set_xlabel("labels")
        ax.grid(alpha=0.3)
    curve_ax.set_ylabel(f"{label} on the test set")
    drift_ax.set_ylabel(f"CV {label} minus test {label}")
    curve_ax.axhline(share * full, color="grey", linestyle=":", linewidth=0.8, label=f"{share:.0%} of full pool")
    curve_ax.set_title(f"test {label} (mean; band = min-max over seeds)")
    drift_ax.set_title("drift of CV on the labelled items from the test score (mean over seeds)")
    curve_ax.legend(fontsize=7, loc="lower right")
    if drift_ax.get_legend_handles_labels()[0]:
        drift_ax.legend(fontsize=7, loc="lower right")
    else:
        drift_ax.text(0.5, 0.5, "no cross-validation in these runs", ha="center", transform=drift_ax.transAxes)
    dataset = Path(str(results["dataset"].get("file", ""))).name
    figure.suptitle(title or f"{dataset} - model {results['settings']['model']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path

