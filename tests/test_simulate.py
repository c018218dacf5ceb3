"""Simulation with an oracle: learning curves, strategy ordering, results schema, CLI.

The simulation uses no database, so these tests need neither `db_url` nor `engine`. The data
sets are synthetic and small so that the whole file runs in seconds.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from labelloop.cli import main
from labelloop.errors import InputFileError, InvalidInputError
from labelloop.simulate import (
    Dataset,
    aulc,
    labels_to_reach,
    load_dataset,
    median_labels,
    parse_strategies,
    plot_results,
    simulate,
)
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS

TAGS = ("apple", "boat", "cloud")


def _vocab(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(n)]


def separable_rows(n_per_tag: int, seed: int) -> list[tuple[str, str]]:
    """Texts of 3 tags, each with its own 12 topic words plus shared filler words."""
    rng = np.random.default_rng(seed)
    filler = _vocab("fill", 40)
    rows = []
    for tag in TAGS:
        topic = _vocab(tag[:3], 12)
        for _ in range(n_per_tag):
            words = list(rng.choice(topic, 4)) + list(rng.choice(filler, 4))
            rng.shuffle(words)
            rows.append((" ".join(words), tag))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i, (text, tag) in enumerate(rows):
            writer.writerow([f"r{i}", text, tag])
    return path


def dataset_of(pool: list[tuple[str, str]], test: list[tuple[str, str]]) -> Dataset:
    tags = tuple(sorted({t for _, t in pool} | {t for _, t in test}))
    return Dataset(
        [t for t, _ in pool], np.array([g for _, g in pool]), [t for t, _ in test], np.array([g for _, g in test]),
        tags, {"file": "synthetic"},
    )


@pytest.fixture(scope="module")
def separable() -> Dataset:
    return dataset_of(separable_rows(50, seed=1), separable_rows(20, seed=2))


def test_separable_data_reach_near_perfect_accuracy(separable):
    results = simulate(separable, parse_strategies("default"), seeds=2, initial=10, batch=10, budget=60,
                       cv_every=0, processes=1)
    assert results["full_pool"]["accuracy"] >= 0.95
    for run in results["runs"]:
        labels, accuracy, macro_f1 = run["curve"][-1]
        assert labels == 60
        assert accuracy >= 0.95 and macro_f1 >= 0.95
        assert len(set(run["labelled"])) == 60  # never the same item twice
    assert results["summary"]["default"]["labels_to_95pct"] is not None


def redundant_pool_rows(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A pool where random sampling must lose: 85 % are copies of 3 texts (one per tag), which
    teach nothing after the first; the test set is made only of 'hard' items, whose tags show
    in topic words that appear in the pool's few distinct items alone."""
    rng = np.random.default_rng(seed)
    neutral = _vocab("neu", 30)
    topics = {tag: _vocab(tag[:3], 30) for tag in TAGS}

    def hard(tag: str) -> tuple[str, str]:
        return " ".join([*rng.choice(topics[tag], 2, replace=False), *rng.choice(neutral, 2)]), tag

    pool = [hard(tag) for tag in TAGS for _ in range(25)]
    pool += [(f"copy{tag} same{tag} again{tag}", tag) for tag in TAGS for _ in range(140)]
    test = [hard(tag) for tag in TAGS for _ in range(30)]
    return [pool[i] for i in rng.permutation(len(pool))], test


def test_margin_beats_random_where_it_must():
    pool, test = redundant_pool_rows(seed=3)
    results = simulate(dataset_of(pool, test), parse_strategies("random,margin"), seeds=2, initial=10, batch=10,
                       budget=70, cv_every=0, processes=1)
    summary = results["summary"]
    assert summary["margin"]["aulc_macro_f1"] > summary["random"]["aulc_macro_f1"] + 0.15
    for seed in (0, 1):
        runs = {r["strategy"]: r for r in results["runs"] if r["seed"] == seed}
        distinct = {s: sum(not pool[i][0].startswith("copy") for i in r["labelled"]) for s, r in runs.items()}
        assert distinct["margin"] > 2 * distinct["random"]  # it asked for the informative items


def test_results_schema_and_summary_follow_the_curves(separable):
    strategies = parse_strategies("random,superintendent")
    results = simulate(separable, strategies, seeds=2, initial=5, batch=7, budget=40, processes=1)
    results = json.loads(json.dumps(results))  # what --out writes
    assert results["version"] == 1
    assert results["dataset"]["pool_size"] == 150 and results["dataset"]["test_size"] == 60
    assert set(results["full_pool"]) >= {"model", "accuracy", "macro_f1"}
    assert results["settings"]["model"] == PROJECT_SETTINGS_DEFAULTS["model"]
    assert len(results["runs"]) == 4
    for run in results["runs"]:
        labels = [p[0] for p in run["curve"]]
        assert labels == [5, 12, 19, 26, 33, 40]  # the last batch is cut to the budget
        assert [p[0] for p in run["cv"]] == labels
        for point in run["curve"]:
            assert all(0.0 <= v <= 1.0 for v in point[1:])
        cv_known = [p for p in run["cv"] if p[1] is not None]
        assert cv_known, "cross-validation must run once each tag has 2 labels"
        assert all(0.0 <= p[1] <= 1.0 and 0.0 <= p[2] <= 1.0 for p in cv_known)
    full = results["full_pool"]
    for name in ("random", "superintendent"):
        entry = results["summary"][name]
        runs = [r for r in results["runs"] if r["strategy"] == name]
        assert [r["seed"] for r in runs] == [0, 1]
        for metric, suffix in (("macro_f1", ""), ("accuracy", "_accuracy")):
            column = 2 if metric == "macro_f1" else 1
            mean_height = np.mean([np.trapezoid([p[column] for p in r["curve"]], [p[0] for p in r["curve"]]) / 35
                                   for r in runs])
            assert entry[f"aulc_{metric}"] == pytest.approx(mean_height)
            reached = [next((p[0] for p in r["curve"] if p[column] >= 0.95 * full[metric]), None) for r in runs]
            assert entry[f"labels_to_95pct{suffix}_per_seed"] == reached
            expected = None if None in reached else float(np.median(reached))
            assert entry[f"labels_to_95pct{suffix}"] == expected
    superintendent = results["runs"][2]["query"]
    assert superintendent == {"name": "superintendent", "strategy": "entropy", "exploration": 0.1, "diversity": False}


def test_same_seed_gives_bit_identical_results_in_any_number_of_processes(separable):
    strategies = parse_strategies("default,margin")
    kwargs = dict(seeds=2, initial=10, batch=10, budget=40)
    first = simulate(separable, strategies, processes=1, **kwargs)
    again = simulate(separable, strategies, processes=2, **kwargs)
    for a, b in zip(first["runs"], again["runs"], strict=True):
        assert (a["strategy"], a["seed"]) == (b["strategy"], b["seed"])
        assert a["labelled"] == b["labelled"]
        assert a["curve"] == b["curve"] and a["cv"] == b["cv"]
    assert first["summary"] == again["summary"]
    by_seed = {r["seed"]: r["labelled"] for r in first["runs"] if r["strategy"] == "default"}
    assert by_seed[0] != by_seed[1]  # the seed does matter


def test_default_is_what_a_new_project_uses():
    (default,) = parse_strategies("default")
    assert default.strategy == PROJECT_SETTINGS_DEFAULTS["strategy"]
    assert default.exploration == PROJECT_SETTINGS_DEFAULTS["exploration"]
    assert default.diversity is True
    (custom,) = parse_strategies(["least-confidence+explore=0.05+diverse"])
    assert (custom.strategy, custom.exploration, custom.diversity) == ("least_confidence", 0.05, True)
    for bad in ("nope", "margin+explore=2", "margin+fast", "random,random", ""):
        with pytest.raises(InvalidInputError):
            parse_strategies(bad)


def test_learning_curve_scores():
    ramp = [[10, 0.0, 0.0], [20, 0.5, 0.5], [30, 1.0, 1.0]]
    assert aulc(ramp) == pytest.approx(0.5)
    assert aulc([[10, 0.9, 0.8], [50, 0.9, 0.8]], "accuracy") == pytest.approx(0.9)
    assert labels_to_reach(ramp, 0.5) == 20 and labels_to_reach(ramp, 1.01) is None
    assert median_labels([30, None, 10]) == 30
    assert median_labels([30, None, None]) is None
    assert math.isclose(median_labels([10, 20]), 15)


def test_split_is_stratified_and_bad_files_are_named(tmp_path):
    rows = separable_rows(20, seed=4)
    path = write_csv(tmp_path / "data.csv", rows)
    dataset = load_dataset(path, text_columns=["text"], label_column="label", test_fraction=0.25)
    assert len(dataset.test_texts) == 15 and len(dataset.pool_texts) == 45
    assert sorted(np.unique(dataset.test_tags, return_counts=True)[1]) == [5, 5, 5]
    assert set(dataset.pool_texts).isdisjoint(dataset.test_texts)
    test_path = write_csv(tmp_path / "test.csv", separable_rows(3, seed=5))
    with_test = load_dataset(path, text_columns=["text"], label_column="label", test_file=test_path)
    assert len(with_test.pool_texts) == 60 and len(with_test.test_texts) == 9

    write_csv(tmp_path / "lonely.csv", [*rows, ("a lonely row", "solo")])
    with pytest.raises(InputFileError, match="'solo'.*single row"):
        load_dataset(tmp_path / "lonely.csv", text_columns=["text"], label_column="label")
    write_csv(tmp_path / "gap.csv", [*rows[:5], ("no tag here", ""), *rows[5:]])
    with pytest.raises(InputFileError, match="data row 6"):
        load_dataset(tmp_path / "gap.csv", text_columns=["text"], label_column="label")
    with pytest.raises(InputFileError, match="field 'body'"):
        load_dataset(path, text_columns=["text", "body"], label_column="label")


def test_cli_simulate_writes_results_and_plot(tmp_path):
    data = write_csv(tmp_path / "tiny.csv", separable_rows(20, seed=6))
    out, png = tmp_path / "res" / "results.json", tmp_path / "curve.png"
    result = CliRunner().invoke(main, [
        "simulate", str(data), "--text-columns", "text", "--label-column", "label", "--strategy", "default,random",
        "--seeds", "2", "--initial", "6", "--batch", "6", "--budget", "24", "--jobs", "1",
        "--out", str(out), "--plot", str(png),
    ])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert set(results["summary"]) == {"default", "random"}
    assert len(results["runs"]) == 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "default" in result.stdout and "AULC" in result.stdout


def test_cli_simulate_rejects_bad_input_with_one_line(tmp_path):
    data = write_csv(tmp_path / "tiny.csv", separable_rows(10, seed=7))
    runner = CliRunner()
    cases = [
        (["--text-columns", "body", "--label-column", "label"], "field 'body': no such column"),
        (["--text-columns", "text", "--label-column", "label", "--strategy", "clever"], "unknown strategy 'clever'"),
        (["--text-columns", "text", "--label-column", "label", "--budget", "500"], "larger than the pool"),
        (["--text-columns", "text", "--label-column", "label", "--initial", "0"], "--initial must be at least 1"),
    ]
    for args, message in cases:
        out = tmp_path / "never.json"
        result = runner.invoke(main, ["simulate", str(data), *args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert not out.exists()


def test_plot_handles_runs_without_any_cv(separable, tmp_path):
    results = simulate(separable, parse_strategies("random"), seeds=1, initial=10, batch=10, budget=20,
                       cv_every=0, processes=1)
    assert all(p[1] is None for p in results["runs"][0]["cv"])
    path = plot_results(results, tmp_path / "nocv.png")
    assert path.stat().st_size > 10_000
