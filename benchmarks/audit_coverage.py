"""Does the audit 95 % interval contain the true accuracy of the model's labels on the rest?

    .venv/bin/python benchmarks/audit_coverage.py [--runs 20] [--first-seed 0] [--budget 600]
        [--every 50] [--audit-fraction 0.1] [--processes 1] [--plot out.png]

Each run (seed s = 0 .. runs-1) is a whole project life on the real code: a fresh SQLite
database in a temporary folder, project ``bbc`` (seed s, the default model and strategy,
audit fraction ``--audit-fraction``) with the 2,225 BBC articles of ../shared/datasets
imported unlabelled by labelloop's importer; a simulated labeller answers every item it is
served with its true topic through the real queue (``store.queue.next_item`` with
``random.Random(s)`` deciding the audit draws); the real ``run_round`` retrains before the first
label and after every ``--every`` labels, up to ``--budget`` labels.

After every round the round's audit estimate (``metrics["audit"]``: accuracy and Wilson 95 %
interval on the held-out audit items) is compared with the truth: the accuracy of that run's
predictions (``item_scores``) on the items without any label, i.e. the unlabelled rest. The goal
is about the end of the run: the interval contains the truth in >= 18 of 20 runs. The CV
accuracy (on the actively chosen labels) is reported beside it.

Prints JSON: per run the final audit estimate, the truth, whether it is covered, the CV
accuracy, the stopping advice and the per-round comparisons; then the summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASETS = HERE.parent.parent / "shared" / "datasets"
TAGS = ["business", "entertainment", "politics", "sport", "tech"]
GOAL_SHARE = 0.9  # 18 of 20 runs


def articles() -> list[dict[str, str]]:
    with open(DATASETS / "bbc_news.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def one_run(seed: int, *, budget: int, every: int, audit_fraction: float) -> dict[str, Any]:
    """A whole project life on a fresh SQLite database; see the module's notes."""
    from sqlalchemy import select

    from labelloop.config import Settings
    from labelloop.io import ImportOptions, MappingSource, import_source
    from labelloop.orchestrator import run_round
    from labelloop.store import labelling as store_labelling
    from labelloop.store import open_engine, reading, writing
    from labelloop.store import projects as store_projects
    from labelloop.store import queue as store_queue
    from labelloop.store import runs as store_runs
    from labelloop.store import users as store_users
    from labelloop.store.schema import item_scores, items

    rows = articles()
    tags = sorted({r["label"] for r in rows})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="audit_coverage_") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        settings = Settings(database_url=url, models_dir=Path(tmp) / "models", keep_models=1)
        engine = open_engine(url)
        with writing(engine) as conn:
            store_projects.create_project(conn, name="bbc", labels=tags, seed=seed,
                                          settings={"audit_fraction": audit_fraction})
            user = store_users.create_user(conn, name="sim", role="labeller", password="a long password").id
        import_source(engine, project="bbc", source=MappingSource(
            {"id": r["id"], "title": r["title"], "body": r["body"]} for r in rows),
            options=ImportOptions(id_column="id", text_columns=["title", "body"]), settings=settings)
        topic = {r["id"]: r["label"] for r in rows}
        with reading(engine) as conn:
            truth = {i: topic[e] for i, e in conn.execute(select(items.c.id, items.c.external_id))}
        rng = random.Random(seed)
        labelled = 0
        rounds: list[dict[str, Any]] = []
        while True:
            result = run_round(engine, settings, project="bbc")
            with reading(engine) as conn:
                project = store_projects.get_project(conn, name="bbc")
                run = store_runs.current_run(conn, project_id=project.id)
                predicted = conn.execute(  # the unlabelled rest (held-out audit items are scored too)
                    select(item_scores.c.item_id, item_scores.c.predicted_tag_id)
                    .join(items, items.c.id == item_scores.c.item_id)
                    .where(item_scores.c.run_id == run.id, items.c.n_labels == 0)
                ).all()
            if run.has_model:
                names = {t.id: t.name for t in project.tags}
                correct = sum(names[tag] == truth[item] for item, tag in predicted)
                true_accuracy = correct / len(predicted)
                audit = run.metrics["audit"]
                lo, hi = audit["ci95"] if audit["ci95"] else (None, None)
                rounds.append({
                    "labels": labelled, "version": run.version, "audit_n": audit["labelled"],
                    "audit_correct": audit["correct"],
                    "audit_accuracy": audit["accuracy"], "ci95": audit["ci95"], "true_accuracy": true_accuracy,
                    "rest": len(predicted), "covered": None if lo is None else lo <= true_accuracy <= hi,
                    "audit_reached": len(run.metrics.get("audit_reached", [])),
                    "cv_accuracy": (run.cv or {}).get("accuracy"), "kappa": run.metrics["stability"]["kappa"],
                    "advice": run.metrics["advice"],
                })
            if labelled >= budget or result.status != "complete":
                break
            for _ in range(min(every, budget - labelled)):
                with writing(engine) as conn:
                    lease = store_queue.next_item(conn, project=project, user_id=user, lease_seconds=600, rng=rng)
                    if lease is None:
                        break
                    store_labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id,
                                           tag=truth[lease.item_id])
                labelled += 1
        engine.dispose()
    final = rounds[-1]
    return {"seed": seed, "seconds": round(time.perf_counter() - started, 1), **final, "rounds": rounds}


def other_intervals(runs: list[dict[str, Any]]) -> dict[str, int]:
    """How many final intervals would contain the truth with other 95 % intervals (post hoc,
    from the same counts): Wilson with continuity correction, and Clopper-Pearson."""
    from scipy.stats import binomtest

    covered = {"wilsoncc": 0, "exact": 0}
    for r in runs:
        if not r["audit_n"]:
            continue
        test = binomtest(r["audit_correct"], r["audit_n"])
        for method in covered:
            ci = test.proportion_ci(confidence_level=0.95, method=method)
            covered[method] += int(ci.low <= r["true_accuracy"] <= ci.high)
    return covered


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [r for r in runs if r["ci95"] is not None]
    every_round = [x for r in runs for x in r["rounds"] if x["covered"] is not None]
    mean = lambda values: sum(values) / len(values) if values else None  # noqa: E731
    return {
        "runs": len(runs),
        "covered_at_end": sum(r["covered"] for r in finals),
        "covered_at_end_other_intervals": other_intervals(finals),
        "goal": f">= {GOAL_SHARE:.0%} of the runs ({math.ceil(GOAL_SHARE * len(runs))} of {len(runs)})",
        "goal_met": sum(r["covered"] for r in finals) >= math.ceil(GOAL_SHARE * len(runs)),
        # Held-out errors seen vs expected if the held-out items were a uniform sample of the rest.
        "audit_errors": sum(r["audit_n"] - r["audit_correct"] for r in finals),
        "audit_errors_expected": sum(r["audit_n"] * (1 - r["true_accuracy"]) for r in finals),
        "mean_audit_n": mean([r["audit_n"] for r in finals]),
        "mean_audit_reached": mean([r["audit_reached"] for r in finals]),
        "mean_audit_accuracy": mean([r["audit_accuracy"] for r in finals]),
        "mean_true_accuracy": mean([r["true_accuracy"] for r in finals]),
        "mean_cv_accuracy": mean([r["cv_accuracy"] for r in finals if r["cv_accuracy"] is not None]),
        "mean_bias_audit_minus_truth": mean([r["audit_accuracy"] - r["true_accuracy"] for r in finals]),
        "mean_bias_cv_minus_truth": mean([r["cv_accuracy"] - r["true_accuracy"] for r in finals
                                          if r["cv_accuracy"] is not None]),
        "mean_ci_width": mean([r["ci95"][1] - r["ci95"][0] for r in finals]),
        "rounds_compared": len(every_round),
        "covered_all_rounds": sum(x["covered"] for x in every_round),
        "stop_advised_at_end": sum(bool(r["advice"]["stop"]) for r in finals),
        "mean_seconds_per_run": mean([r["seconds"] for r in runs]),
    }


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, r in enumerate(runs):
        lo, hi = r["ci95"]
        colour = "tab:blue" if r["covered"] else "tab:red"
        ax.plot([k, k], [lo, hi], color=colour, lw=2)
        ax.plot(k, r["audit_accuracy"], "o", color=colour, ms=4)
        ax.plot(k, r["true_accuracy"], "k_", ms=12, mew=2)
        if r["cv_accuracy"] is not None:
            ax.plot(k, r["cv_accuracy"], "x", color="tab:orange", ms=5)
    ax.set_xticks(range(len(runs)), [str(r["seed"]) for r in runs])
    ax.set_xlabel("run (seed)")
    ax.set_ylabel("accuracy")
    ax.set_title("Audit 95 % interval (bars) vs true accuracy on the unlabelled rest (black); CV (orange x)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--audit-fraction", type=float, default=0.1)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    kwargs = {"budget": args.budget, "every": args.every, "audit_fraction": args.audit_fraction}
    began = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.runs)
    if args.processes > 1:
        with ProcessPoolExecutor(args.processes) as pool:
            runs = list(pool.map(_run, [(s, kwargs) for s in seeds]))
    else:
        runs = []
        for seed in seeds:
            runs.append(one_run(seed, **kwargs))
            print(f"seed {seed}: audit {runs[-1]['audit_accuracy']:.3f} {runs[-1]['ci95']} "
                  f"truth {runs[-1]['true_accuracy']:.3f} ({runs[-1]['seconds']} s)", file=sys.stderr)
    if args.plot:
        plot(runs, args.plot)
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.machine()},
        "settings": {**kwargs, "runs": args.runs, "first_seed": args.first_seed, "data": "bbc_news (2,225 articles, 5 topics)",
                     "model": "tfidf-logreg", "strategy": "margin"},
        "summary": summarise(runs),
        "wall_seconds": round(time.perf_counter() - began, 1),
        "runs": runs,
    }, indent=1))


def _run(job: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    seed, kwargs = job
    return one_run(seed, **kwargs)


if __name__ == "__main__":
    main()
