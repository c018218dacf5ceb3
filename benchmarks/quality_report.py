"""Cost of the team-quality figures behind the dashboard and `status`, on a large project.

    .venv/bin/python benchmarks/quality_report.py [--items 100000] [--overlap 0.2] [--db sqlite|postgresql|both]

Builds a fresh project of ``--items`` items, every one labelled by one of 5 labellers (a few
seconds apart, with pauses), a share ``--overlap`` of them by a second labeller who agrees 85 %
of the time, and a current model run scoring a tenth of the items. Then times (median of 3, in
ms) :func:`labelloop.orchestrator.quality.agreement_report` (what the dashboard and
``status`` compute on every request), the first page of the review queue and the cumulative
progress per day. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, insert, select, text, update

from labelloop.orchestrator.quality import agreement_report
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import scores as store_scores
from labelloop.store import quality as store_quality
from labelloop.store import review as store_review
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import refresh_items
from labelloop.store.schema import annotations, items, model_runs, projects

PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "bench_quality"
TAGS = ["Business", "Entertainment", "Politics", "Sport", "Tech"]
LABELLERS = ["ann", "bob", "cat", "dan", "eve"]
CHUNK = 20_000


def build(url: str, n_items: int, overlap: float) -> tuple[object, float]:
    started = time.perf_counter()
    engine = open_engine(url)
    rng = random.Random(7)
    t0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="bench", labels=TAGS, seed=1)
        users = [store_users.create_user(conn, name=n, role="labeller", password="a long password").id for n in LABELLERS]
        tag_ids = [project.tag_id(t) for t in TAGS]
        for start in range(0, n_items, CHUNK):
            conn.execute(insert(items), [
                {"project_id": project.id, "external_id": f"x{i}", "display": {"title": f"item {i}"},
                 "text": f"item {i}", "rand": rand_key(1, f"x{i}"), "target_labels": 1,
                 "created_at": t0, "updated_at": t0}
                for i in range(start, min(n_items, start + CHUNK))
            ])
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
    clock = {u: t0 for u in users}
    rows = []
    for item_id in ids:
        truth = rng.choice(tag_ids)
        people = rng.sample(users, 2 if rng.random() < overlap else 1)
        for k, user in enumerate(people):
            clock[user] += timedelta(seconds=rng.choice([4, 6, 9, 15, 900]))  # sometimes a break
            tag = truth if k == 0 or rng.random() < 0.85 else rng.choice(tag_ids)
            rows.append({"project_id": project.id, "item_id": item_id, "user_id": user, "tag_id": tag,
                         "source": "human", "created_at": clock[user], "updated_at": clock[user]})
    with writing(engine) as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(annotations), rows[start : start + CHUNK])
        refresh_items(conn, item_ids=ids)
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="m", strategy="margin",
            metrics={"state": "model"}, created_at=t0 + timedelta(days=1))).inserted_primary_key[0]
        scored = ids[:: 10]
        store_scores.insert_scores(conn, run_id=run_id, item_ids=scored, priorities=[0.5] * len(scored),
                                   predicted_tag_ids=[rng.choice(tag_ids) for _ in scored],
                                   confidences=[0.6] * len(scored))
        conn.execute(update(projects).values(current_run_id=run_id))
    return engine, time.perf_counter() - started, len(rows)


def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 1)


def measure(engine) -> dict[str, object]:
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="bench")

        def report():
            with reading(engine) as c:
                return agreement_report(c, project=project)

        def review():
            with reading(engine) as c:
                return store_review.review_queue(c, project=project, limit=25)

        def progress():
            with reading(engine) as c:
                return store_quality.label_progress(c, project_id=project.id, now=datetime(2030, 3, 1, tzinfo=UTC))

        sample = report()
        return {
            "agreement_report_ms": timed(report),
            "review_queue_first_page_ms": timed(review),
            "label_progress_ms": timed(progress),
            "items_with_overlap": sample["items_with_overlap"],
            "krippendorff_alpha": round(sample["krippendorff_alpha"], 3),
            "to_review": review().total,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    out: dict[str, object] = {"items": args.items, "overlap": args.overlap, "machine": platform.platform(),
                              "cpus": os.cpu_count()}
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            engine, seconds, n = build(f"sqlite:///{Path(tmp) / 'q.db'}", args.items, args.overlap)
            out["sqlite"] = {"labels": n, "build_s": round(seconds, 1), **measure(engine)}
            engine.dispose()
    if args.db in ("postgresql", "both"):
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
        try:
            url = f"{PG_URL}?options={quote(f'-csearch_path={PG_SCHEMA}')}"
            engine, seconds, n = build(url, args.items, args.overlap)
            with engine.begin() as conn:  # committed: fresh statistics, as autovacuum would gather
                conn.execute(text("ANALYZE"))
            out["postgresql"] = {"labels": n, "build_s": round(seconds, 1), **measure(engine)}
            engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
            admin.dispose()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
