"""Rare tags: how many labels a labeller needs to collect 20 examples of a rare tag with the
`likely` queue, the default queue and random order (issue 13).

    .venv/bin/python benchmarks/rare_tags.py [--seeds 5] [--batch 10] [--target 20] [--datasets trec6,sms_spam,20ng]

Data sets (from ../shared/datasets, never copied into the repository): TREC-6 (tag ABBR, 86 of
5,381), SMS spam (spam, 642 of 4,862) and the 20 newsgroups training split (its smallest
group). For each seed: 20 random items are labelled first (the oracle answers from the file),
then each queue is followed, the model retrained every `--batch` labels with the very round
code of a live project (`labelloop.simulate.rounds.play_round`, which is what `labelloop
simulate --strategy likely:TAG` runs), until `--target` examples of the tag are labelled (the
first 20 random labels count). `random` simply labels in a random order. The number reported
is the total labels at the moment the target-th example is labelled (capped at `--cap`).

Goal: `likely` needs at most 1/3 of random's labels on each data set (median over seeds).
Prints JSON to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from labelloop.learn import make_featurizer
from labelloop.simulate.data import read_labelled_file
from labelloop.simulate.presets import default_model, parse_strategies
from labelloop.simulate.rounds import play_round
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABELLOOP_SHARED_DIR") or ROOT.parent / "shared") / "datasets"

DATASETS = {
    "trec6": ("trec6.csv", ["text"], "ABBR"),
    "sms_spam": ("sms_spam.csv", ["text"], "spam"),
    "20ng": ("20ng_train.csv", ["text"], None),  # None: the smallest group
}


def load(name: str) -> tuple[list[str], np.ndarray, str]:
    file, columns, tag = DATASETS[name]
    texts, labels = read_labelled_file(SHARED / file, text_columns=columns, label_column="label")
    labels = np.asarray(labels).astype(str)
    if tag is None:
        values, counts = np.unique(labels, return_counts=True)
        tag = str(values[np.argmin(counts)])
    return texts, labels, tag


def follow(X: Any, labels: np.ndarray, tag: str, strategy: str, *, seed: int, initial: int, batch: int,
           target: int, cap: int, model: str) -> dict[str, Any]:
    """Labels needed to collect ``target`` examples of ``tag`` following ``strategy``."""
    rng = np.random.default_rng([seed, 13])
    n = len(labels)
    labelled = [int(i) for i in rng.choice(n, size=initial, replace=False)]
    found = int(np.sum(labels[labelled] == tag))
    rounds = 0
    if found >= target:
        return {"labels": initial, "rounds": 0, "found": found}
    if strategy == "random":
        rest = np.setdiff1d(np.arange(n), labelled)
        order = rng.permutation(rest)
        hits = np.cumsum(labels[order] == tag) + found
        at = np.flatnonzero(hits >= target)
        return {"labels": int(initial + at[0] + 1) if len(at) else None, "rounds": 0,
                "found": int(min(hits[-1], target)) if len(hits) else found}
    query = parse_strategies(strategy)[0]
    class_weight = PROJECT_SETTINGS_DEFAULTS["class_weight"]
    while len(labelled) < min(cap, n):
        rows = np.asarray(labelled, dtype=np.int64)
        outcome = play_round(X, rows, labels[rows].astype(object), model=model, query=query,
                             class_weight=class_weight, seed=seed, step=rounds + 1, with_cv=False)
        rounds += 1
        for row in outcome.order[:batch].tolist():
            labelled.append(int(row))
            found += int(labels[row] == tag)
            if found >= target:
                return {"labels": len(labelled), "rounds": rounds, "found": found}
            if len(labelled) >= cap:
                break
    return {"labels": None, "rounds": rounds, "found": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="trec6,sms_spam,20ng")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=10, help="labels between two model rounds")
    parser.add_argument("--target", type=int, default=20)
    parser.add_argument("--cap", type=int, default=3000, help="give up after this many labels")
    args = parser.parse_args()
    model = default_model()
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "model": model, "settings": vars(args), "datasets": {},
    }
    started = time.perf_counter()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        texts, labels, tag = load(name)
        with threadpool_limits(limits=1):
            X = make_featurizer("tfidf").fit_transform(texts)
        methods: dict[str, Any] = {}
        for strategy in (f"likely:{tag}", "default", "random"):
            runs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                with threadpool_limits(limits=1):
                    run = follow(X, labels, tag, strategy, seed=seed, initial=args.initial, batch=args.batch,
                                 target=args.target, cap=args.cap, model=model)
                run["seconds"] = round(time.perf_counter() - t0, 2)
                runs.append(run)
                print(f"{name} {strategy} seed {seed}: {run}", file=sys.stderr, flush=True)
            needed = [r["labels"] if r["labels"] is not None else args.cap for r in runs]
            methods[strategy.split(":")[0]] = {"labels": needed, "median": float(np.median(needed)), "runs": runs}
        ratio = methods["likely"]["median"] / methods["random"]["median"]
        report["datasets"][name] = {
            "file": DATASETS[name][0], "items": len(labels), "tag": tag, "tag_items": int(np.sum(labels == tag)),
            "methods": methods,
            "ratio_likely_to_random": round(ratio, 3),
            "ratio_default_to_random": round(methods["default"]["median"] / methods["random"]["median"], 3),
            "goal_met": bool(ratio <= 1 / 3),
        }
    report["goal_met"] = all(d["goal_met"] for d in report["datasets"].values())
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
