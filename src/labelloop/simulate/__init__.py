"""Simulated labelling with an oracle: compare query strategies on an already labelled file.

The file's own labels play the labellers. Each configuration (see
:mod:`labelloop.simulate.presets`) and seed labels a cold-start batch, then repeatedly
retrains with the very round code a live project runs (:mod:`labelloop.simulate.rounds`),
evaluates on a held-out test set and takes the top of the serving order, up to a budget::

    dataset = load_dataset("bbc.csv", text_columns=["title", "body"], label_column="label")
    results = simulate(dataset, parse_strategies("default,random"), seeds=3, budget=300)
    plot_results(results, "curve.png")

This package sits next to the command line: it may use the orchestrator, ``learn/``, the
store's project defaults, ``config`` and ``errors``, never the other way round.
"""

from labelloop.simulate.data import Dataset, load_dataset, read_labelled_file
from labelloop.simulate.plot import plot_results
from labelloop.simulate.presets import QuerySettings, default_model, parse_strategies, resolve
from labelloop.simulate.simulation import RESULTS_VERSION, simulate
from labelloop.simulate.summary import aulc, labels_to_reach, median_labels, summarize

__all__ = [
    "RESULTS_VERSION",
    "Dataset",
    "QuerySettings",
    "aulc",
    "default_model",
    "labels_to_reach",
    "load_dataset",
    "median_labels",
    "parse_strategies",
    "plot_results",
    "read_labelled_file",
    "resolve",
    "simulate",
    "summarize",
]
