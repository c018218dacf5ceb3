"""Does the audit estimate stay unbiased when labellers steer? (issue 13)

    .venv/bin/python benchmarks/steer_audit.py [--seeds 4] [--rounds 8] [--per-round 60] [--likely 0.5] [--audit-fraction 0.1]

A simulation on BBC news (the demo corpus, 2,225 articles, 5 topics) through the real code
paths: the store's queue (default claims with audit draws, ``audit_fraction`` 0.1 or ``--audit-fraction``), the
steered claim of the server (``server.steering.claim_in_list`` over the round's ``likely``
list of a random tag, from ``store.steerlists``) and real model rounds
(``orchestrator.run_round``). A simulated labeller answers with the true topic; a share
``--likely`` of the claims comes from the ``likely`` queue. After the last round the run's audit
estimate (accuracy on the held-out audit items) is compared with the truth: the model's
accuracy on the items still unlabelled. Two arms per seed, the same seed and choices:

- ``rule``: the reached rule for steered queues (store.steerqueue.record_reached);
- ``no_rule``: the rule switched off (audit items a steered list walks past stay held out).

Prints JSON: per arm the mean and spread of (estimate - truth) over seeds, in points.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from collections import deque
from pathlib import Path

from sqlalchemy import select

from labelloop.config import Settings
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.io.demo_data import read_articles
from labelloop.orchestrator import run_round
from labelloop.server import steering
from labelloop.store import labelling as store_labelling
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue as store_queue
from labelloop.store import runs as store_runs
from labelloop.store import steerlists, steerqueue
from labelloop.store import users as store_users
from labelloop.store.schema import item_scores, items, tags

TAGS = ["business", "entertainment", "politics", "sports", "tech"]


def one(seed: int, rule: bool, args: argparse.Namespace, workdir: Path) -> dict:
    url = f"sqlite:///{workdir / f'sim_{seed}_{int(rule)}.db'}"
    settings = Settings(database_url=url, models_dir=workdir / f"models_{seed}_{int(rule)}")
    engine = open_engine(url)
    rows = list(read_articles())
    with writing(engine) as conn:
        store_projects.create_project(conn, name="bbc", labels=TAGS, seed=seed, settings={"audit_fraction": args.audit_fraction})
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(2)]
    import_source(engine, project="bbc", source=MappingSource([{"id": r["id"], "title": r["title"], "body": r["body"]}
                                                                  for r in rows]),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"]), settings=settings)
    topic = {r["id"]: r["topic"] for r in rows}
    with reading(engine) as conn:
        truth = {i: topic[e] for i, e in conn.execute(select(items.c.id, items.c.external_id)).all()}
    rng = random.Random(seed)  # the same choices in both arms
    audit_rng = random.Random(seed + 1000)
    recorded = steerqueue.record_reached
    if not rule:
        steerqueue.record_reached = lambda *a, **k: 0  # type: ignore[assignment]
    try:
        def label(lease, user):
            with writing(engine) as conn:
                project = store_projects.get_project(conn, name="bbc")
                store_labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id,
                                           tag=truth[lease.item_id])

        for _ in range(40):  # a start: the default queue (random order before a model)
            with writing(engine) as conn:
                project = store_projects.get_project(conn, name="bbc")
                lease = store_queue.next_item(conn, project=project, user_id=users[0], lease_seconds=600, rng=audit_rng)
            label(lease, users[0])
        for _round in range(args.rounds):
            run_round(engine, settings, project="bbc")
            for _ in range(args.per_round):
                project = (lambda: None)()
                with reading(engine) as conn:
                    project = store_projects.get_project(conn, name="bbc")
                if rng.random() < args.likely:
                    tag = rng.choice(TAGS)
                    with reading(engine) as conn:
                        order = steerlists.likely_ids(conn, project_id=project.id, tag=tag, limit=500)
                        source = steerqueue.source(conn, project=project, order=order)
                    entry = steering._List(source, project.current_run_id, deque(source.open_ids))
                    with writing(engine) as conn:
                        lease = steering.claim_in_list(conn, project=project, user_id=users[1], lease_seconds=600,
                                                       entry=entry)
                    if lease is not None:
                        label(lease, users[1])
                        continue
                with writing(engine) as conn:
                    lease = store_queue.next_item(conn, project=project, user_id=users[0], lease_seconds=600,
                                                  rng=audit_rng)
                if lease is not None:
                    label(lease, users[0])
        result = run_round(engine, settings, project="bbc")
    finally:
        steerqueue.record_reached = recorded
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="bbc")
        run = store_runs.current_run(conn, project_id=project.id)
        names = dict(conn.execute(select(tags.c.id, tags.c.name)).all())
        predicted = conn.execute(select(item_scores.c.item_id, item_scores.c.predicted_tag_id).join(
            items, items.c.id == item_scores.c.item_id).where(item_scores.c.run_id == run.id, items.c.n_labels == 0)).all()
    audit = result.audit or {}
    true_acc = sum(names[t] == truth[i] for i, t in predicted) / max(1, len(predicted))
    engine.dispose()
    return {"seed": seed, "rule": rule, "audit_n": audit.get("labelled"), "estimate": audit.get("accuracy"),
            "truth": round(true_acc, 4),
            "error_points": None if audit.get("accuracy") is None else round(100 * (audit["accuracy"] - true_acc), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=60)
    parser.add_argument("--likely", type=float, default=0.5)
    parser.add_argument("--audit-fraction", type=float, default=0.1,
                        help="share of default claims drawn for the audit (more audit items: a tighter estimate)")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for rule in (True, False):
                runs.append(one(seed, rule, args, Path(tmp)))
                print(json.dumps(runs[-1]), file=sys.stderr)
    summary = {}
    for rule in (True, False):
        errs = [r["error_points"] for r in runs if r["rule"] == rule and r["error_points"] is not None]
        summary["rule" if rule else "no_rule"] = {
            "mean_error_points": round(statistics.mean(errs), 2) if errs else None,
            "sd_points": round(statistics.stdev(errs), 2) if len(errs) > 1 else None,
            "mean_audit_items": statistics.mean(r["audit_n"] or 0 for r in runs if r["rule"] == rule)}
    print(json.dumps({"args": vars(args), "summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
