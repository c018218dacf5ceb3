"""Simulation of the steered queues (likely:TAG, unsure:TAG): the benchmark's code path."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from labelloop.cli import main
from labelloop.errors import InvalidInputError
from labelloop.simulate import parse_strategies, simulate

from test_simulate import dataset_of, separable_rows, write_csv


def rare_rows(seed: int) -> list[tuple[str, str]]:
    """'cloud' is rare: 8 of 158 rows."""
    rows = separable_rows(75, seed)
    kept, clouds = [], 0
    for text, tag in rows:
        if tag == "cloud":
            clouds += 1
            if clouds > 8:
                continue
        kept.append((text, tag))
    return kept


def test_steered_names_parse_keep_the_tag_case_and_use_the_default_model():
    likely, unsure = parse_strategies("likely:ABBR,Unsure:spam+explore=0.2")
    assert (likely.name, likely.steer, likely.tag) == ("likely:ABBR", "likely", "ABBR")
    assert (unsure.name, unsure.steer, unsure.tag, unsure.exploration) == ("unsure:spam+explore=0.2", "unsure",
                                                                           "spam", 0.2)
    assert likely.strategy == parse_strategies("default")[0].strategy
    for bad in ("likely:", "often:ABBR"):
        with pytest.raises(InvalidInputError, match="likely:TAG or unsure:TAG"):
            parse_strategies(bad)


def test_likely_finds_the_rare_tag_much_sooner_than_random():
    data = dataset_of(rare_rows(seed=4), separable_rows(10, seed=5))
    results = simulate(data, parse_strategies("likely:cloud,random"), seeds=2, initial=20, batch=5, budget=60,
                       cv_every=0, processes=1)
    pool = data.pool_tags
    found = {}
    for run in results["runs"]:
        found.setdefault(run["strategy"], []).append(int(np.sum(pool[run["labelled"]] == "cloud")))
        assert len(set(run["labelled"])) == 60
    assert min(found["likely:cloud"]) >= 7  # nearly all 8 within 60 labels
    assert max(found["random"]) <= 6
    with pytest.raises(InvalidInputError, match="unknown tag 'fog'"):
        simulate(data, parse_strategies("likely:fog"), seeds=1, initial=5, budget=10, processes=1)


def test_unsure_runs_from_the_cli(tmp_path):
    path = write_csv(tmp_path / "d.csv", rare_rows(seed=6))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["simulate", str(path), "--text-columns", "text", "--label-column", "label",
                                       "--strategy", "unsure:cloud,likely:cloud", "--seeds", "1", "--initial", "10",
                                       "--batch", "5", "--budget", "30", "--jobs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()
