"""Multi-label simulation with an oracle: label sets from a file, set strategies, the CLI.

Synthetic and small (seconds): each text carries the topic words of each of its tags, so a
model can learn every tag, and a rare tag shows whether a strategy finds it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from labelloop.cli import main
from labelloop.errors import InvalidInputError
from labelloop.simulate import load_dataset, parse_strategies, simulate

TAGS = ("arts", "bikes", "cars", "dogs")
SHARE = (0.5, 0.3, 0.2, 0.06)  # dogs is rare


def write_sets(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    filler = [f"fill{i}" for i in range(60)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "labels"])
        for i in range(n):
            chosen = [tag for tag, share in zip(TAGS, SHARE) if rng.random() < share]
            words = [f"{tag[:3]}{rng.integers(8)}" for tag in chosen for _ in range(3)]
            words += list(rng.choice(filler, 5))
            rng.shuffle(words)
            writer.writerow([f"r{i}", " ".join(words), "|".join(chosen) or "__none__"])
    return path


def test_load_dataset_reads_sets(tmp_path):
    data = load_dataset(write_sets(tmp_path / "sets.csv", 200), text_columns=["text"], label_column="labels",
                        label_separator="|")
    assert data.multi_label and data.tags == TAGS
    assert data.pool_tags.shape == (140, 4) and data.test_tags.shape == (60, 4)
    assert set(np.unique(data.pool_tags)) <= {0, 1}
    assert (data.pool_tags.sum(axis=1) == 0).any()  # "__none__" rows are empty sets, not errors
    assert data.description["multi_label"] is True


def test_set_strategy_names():
    names = [q.strategy for q in parse_strategies("default,random,max-uncertainty,mean-uncertainty", multi_label=True)]
    assert names == ["max_uncertainty", "random", "max_uncertainty", "mean_uncertainty"]
    with pytest.raises(InvalidInputError, match="unknown multi-label strategy 'margin'"):
        parse_strategies("margin", multi_label=True)


def test_simulation_of_sets_learns_and_reports_micro_f1(tmp_path):
    data = load_dataset(write_sets(tmp_path / "sets.csv", 500), text_columns=["text"], label_column="labels",
                        label_separator="|")
    results = simulate(data, parse_strategies("default,random", multi_label=True), seeds=2, initial=10,
                       batch=10, budget=60, processes=1)
    assert results["settings"]["multi_label"] is True
    assert results["full_pool"]["micro_f1"] > 0.9
    for run in results["runs"]:
        labels = [p[0] for p in run["curve"]]
        assert labels == sorted(labels) and labels[-1] == 60
        assert all(0.0 <= p[1] <= 1.0 and 0.0 <= p[2] <= 1.0 for p in run["curve"])
        assert all(p[1] is not None for p in run["cv"][1:])  # every set round cross-validates (thresholds)
        assert len(set(run["labelled"])) == 60
    for name in ("default", "random"):
        entry = results["summary"][name]
        assert 0.0 < entry["aulc_micro_f1"] <= 1.0 and "labels_to_95pct_micro_f1" in entry
    assert results["summary"]["default"]["final_micro_f1"] > 0.8


def test_cli_simulates_a_multi_label_file(tmp_path):
    path = write_sets(tmp_path / "sets.csv", 300)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, [
        "simulate", str(path), "--text-columns", "text", "--label-column", "labels", "--label-separator", "|",
        "--strategy", "default,random", "--seeds", "1", "--initial", "10", "--batch", "20", "--budget", "50",
        "--jobs", "1", "--out", str(out), "--plot", str(tmp_path / "r.png"),
    ])
    assert result.exit_code == 0, result.output
    assert "micro-F1" in result.output
    assert json.loads(out.read_text())["settings"]["multi_label"] is True
    assert (tmp_path / "r.png").stat().st_size > 1000
    bad = CliRunner().invoke(main, [
        "simulate", str(path), "--text-columns", "text", "--label-column", "labels", "--label-separator", "|",
        "--strategy", "margin",
    ])
    assert bad.exit_code == 2 and "unknown multi-label strategy 'margin'" in bad.output
