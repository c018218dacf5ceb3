"""Do the gold accuracy intervals contain each labeller's true accuracy, and is the weak one flagged?

    .venv/bin/python benchmarks/gold_sim.py [--runs 200] [--answers 20,50,100,200] [--gold-items 200]
        [--accuracies 0.95,0.85,0.70] [--min-accuracy 0.8] [--seed 0]

The real code on a real SQLite database (a temporary file): each run is a fresh project with
``--gold-items`` gold items (single-label, 4 tags, gold answers drawn at random) and three
simulated labellers of known accuracy (``--accuracies``). Each labeller is served gold items by
``store.gold.claim_gold`` (never the same twice) and answers each through
``store.gold.answer_gold``: the gold tag with probability equal to their accuracy, else one of
the other tags at random. After each labeller's n-th answer, for each n in ``--answers``, the
report of ``labelloop status`` / the dashboard (``orchestrator.gold.gold_report``: Wilson's
95 % interval, flagged when its upper bound is below ``--min-accuracy``) is read and compared
with the truth.

Goals (issue 14): the interval contains the true accuracy in >= 90 % of runs for every
labeller, and the weakest labeller (70 %, below the bar of 80 %) is flagged. Prints JSON: per
labeller and n, the share of runs covered, the share flagged, the share a point-estimate rule
(accuracy below the bar) would have flagged, for comparison, and the mean interval width; then
whether the goals are met at the largest n.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_COVERAGE = 0.9
TAGS = ["A", "B", "C", "D"]


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import insert

    from labelloop.orchestrator.gold import gold_report
    from labelloop.store import gold as store_gold
    from labelloop.store import open_engine, writing
    from labelloop.store import projects as store_projects
    from labelloop.store import users as store_users
    from labelloop.store.items import rand_key
    from labelloop.store.schema import items, utcnow

    accuracies = [float(a) for a in args.accuracies.split(",")]
    checkpoints = sorted(int(n) for n in args.answers.split(","))
    if checkpoints[-1] > args.gold_items:
        raise SystemExit(f"--gold-items ({args.gold_items}) must be at least the largest --answers ({checkpoints[-1]})")
    tally = {(a, n): {"covered": 0, "flagged": 0, "point_flagged": 0, "width": 0.0}
             for a in accuracies for n in checkpoints}
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'gold.db'}")
        with writing(engine) as conn:
            users = [store_users.create_user(conn, name=f"labeller{i}", role="labeller",
                                             password="a long password").id for i in range(len(accuracies))]
        for run in range(args.runs):
            seed = args.seed + run
            rng = random.Random(seed)
            now = utcnow()
            with writing(engine) as conn:
                project = store_projects.create_project(
                    conn, name=f"run{seed}", labels=TAGS, seed=seed,
                    settings={"gold_fraction": 0.1, "gold_min_accuracy": args.min_accuracy})
                conn.execute(insert(items), [
                    {"project_id": project.id, "external_id": f"g{i}", "display": {"text": f"gold {i}"},
                     "text": f"gold {i}", "rand": rand_key(seed, f"g{i}"), "created_at": now, "updated_at": now}
                    for i in range(args.gold_items)])
                ids = sorted(conn.execute(items.select().with_only_columns(items.c.id)
                                          .where(items.c.project_id == project.id)).scalars())
                truth = {i: rng.choice(TAGS) for i in ids}
                store_gold.mark_gold(conn, project=project,
                                     values={i: project.tag_id(t) for i, t in truth.items()}, user_id=None)
            with writing(engine) as conn:
                answered = 0
                for k in range(1, checkpoints[-1] + 1):
                    for user_id, accuracy in zip(users, accuracies, strict=True):
                        lease = store_gold.claim_gold(conn, project=project, user_id=user_id, lease_seconds=600,
                                                      rng=rng)
                        assert lease is not None
                        gold = truth[lease.item_id]
                        tag = gold if rng.random() < accuracy else rng.choice([t for t in TAGS if t != gold])
                        store_gold.answer_gold(conn, project=project, user_id=user_id, item_id=lease.item_id, tag=tag)
                        answered += 1
                    if k in checkpoints:
                        report = gold_report(conn, project=project)["labellers"]
                        for i, accuracy in enumerate(accuracies):
                            figures = report[f"labeller{i}"]
                            assert figures["answered"] == k
                            lo, hi = figures["ci95"]
                            cell = tally[(accuracy, k)]
                            cell["covered"] += lo <= accuracy <= hi
                            cell["flagged"] += bool(figures["flagged"])
                            cell["point_flagged"] += figures["accuracy"] < args.min_accuracy  # the rule not chosen
                            cell["width"] += hi - lo
        engine.dispose()
    rows = []
    for (accuracy, n), cell in sorted(tally.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        rows.append({"true_accuracy": accuracy, "answers": n, "covered": round(cell["covered"] / args.runs, 3),
                     "flagged": round(cell["flagged"] / args.runs, 3),
                     "point_rule_flagged": round(cell["point_flagged"] / args.runs, 3),
                     "mean_width": round(cell["width"] / args.runs, 3)})
    last = [r for r in rows if r["answers"] == checkpoints[-1]]
    weakest = min(accuracies)
    return {
        "rows": rows,
        "goals_at_largest_n": {
            "answers": checkpoints[-1],
            "coverage_ok": all(r["covered"] >= GOAL_COVERAGE for r in last),
            "weakest_flagged_share": next(r["flagged"] for r in last if r["true_accuracy"] == weakest),
            "others_flagged_share": max((r["flagged"] for r in last if r["true_accuracy"] != weakest), default=0.0),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--answers", default="20,50,100,200", help="checkpoints: gold answers per labeller")
    parser.add_argument("--gold-items", type=int, default=200)
    parser.add_argument("--accuracies", default="0.95,0.85,0.70")
    parser.add_argument("--min-accuracy", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    result = run_all(args)
    result["settings"] = vars(args)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
