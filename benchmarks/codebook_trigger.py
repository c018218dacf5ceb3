"""The cost of recording the codebook version on every label (issue 14; migration 0011's trigger).

    .venv/bin/python benchmarks/codebook_trigger.py [--labels 10000] [--batch 8,256] [--db sqlite|postgresql|both]

Each label records ``annotations.codebook_version``, written by the database (PostgreSQL: a
BEFORE INSERT trigger; SQLite: an AFTER INSERT trigger that only fires when the project has a
codebook). This times ``store.labelling.label_many`` (the dispatcher's batched label statement;
PostgreSQL batches of 8, SQLite of up to 256, as ``server/dispatch.py``) over ``--labels`` leased
items, one transaction per batch, in three fresh databases per backend:

- ``no_trigger``: the trigger dropped (the labelling path as before migration 0011);
- ``no_codebook``: the trigger, on a project without a codebook (version 0);
- ``codebook``: the trigger, on a project with a codebook (version 3).

First, the trigger alone (``*_trigger_alone``): ``--labels`` rows in one INSERT ... SELECT with
and without it, and on PostgreSQL the time EXPLAIN ANALYZE reports inside the trigger. Then
prints labels per second and microseconds per label for each, and the overhead against
``no_trigger``. Every configuration is run ``--repeat`` times and the best run kept (the machine
is shared). Goal: the overhead stays within the noise of the label path (< 10 % per label).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from labelloop.store import codebook as store_codebook
from labelloop.store import labelling, open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items

PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
USERS = 10


def _database(kind: str, tmp: Path) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / (uuid.uuid4().hex + '.db')}", None
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{PG_URL}?options=-csearch_path%3D{schema}", (admin, schema)


def _drop(handle: object) -> None:
    if handle is not None:
        admin, schema = handle  # type: ignore[misc]
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_once(kind: str, config: str, n_labels: int, batch: int, tmp: Path) -> dict[str, float]:
    url, handle = _database(kind, tmp)
    engine = open_engine(url)
    try:
        now = datetime.now(UTC)
        per_user = n_labels // USERS
        with writing(engine) as conn:
            project = store_projects.create_project(conn, name="bench", labels=["A", "B", "C"], seed=1,
                                                    settings={"audit_fraction": 0.0})
            uids = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="bench password ok").id
                    for i in range(USERS)]
            conn.execute(insert(items), [
                {"project_id": project.id, "external_id": f"e{i}", "display": {"t": f"t{i}"}, "text": f"text {i}",
                 "rand": rand_key(1, f"e{i}"), "created_at": now, "updated_at": now} for i in range(per_user * USERS)])
            ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
            pairs = [(uids[i % USERS], item) for i, item in enumerate(ids)]
            conn.execute(insert(assignments), [
                {"project_id": project.id, "item_id": item, "user_id": uid, "state": "leased", "leased_at": now,
                 "expires_at": now + timedelta(hours=1)} for uid, item in pairs])
            if config == "codebook":
                for tag, words in (("A", "apples"), ("B", "bananas"), ("C", "cherries")):
                    store_codebook.set_definition(conn, project=project, tag=tag, definition=words, user_id=None)
            if config == "no_trigger":
                conn.execute(text("DROP TRIGGER annotations_codebook_version"
                                  + ("" if kind == "sqlite" else " ON annotations")))
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name="bench")
        requests = [labelling.LabelRequest(project, uid, item, tag="ABC"[item % 3]) for uid, item in pairs]
        started = time.perf_counter()
        for start in range(0, len(requests), batch):
            with writing(engine) as conn:
                outcomes = labelling.label_many(conn, requests[start:start + batch])
            assert not any(outcomes), outcomes
        seconds = time.perf_counter() - started
        with reading(engine) as conn:
            versions = set(conn.execute(select(annotations.c.codebook_version).distinct()).scalars())
        assert versions == ({3} if config == "codebook" else {None}), versions
        return {"labels_per_s": len(requests) / seconds, "us_per_label": 1e6 * seconds / len(requests)}
    finally:
        engine.dispose()
        _drop(handle)


def trigger_alone(kind: str, n_rows: int, tmp: Path, rounds: int = 5) -> dict[str, float]:
    """The trigger's own cost, apart from the rest of the label path: ``n_rows`` annotations
    inserted in one INSERT ... SELECT, with and without the trigger, on a project with a
    codebook. PostgreSQL also reports the trigger's time from EXPLAIN ANALYZE (time spent in
    the trigger function itself, per row). Best of ``rounds``, interleaved."""
    url, handle = _database(kind, tmp)
    engine = open_engine(url)
    try:
        now = datetime.now(UTC)
        with writing(engine) as conn:
            project = store_projects.create_project(conn, name="bench", labels=["A"], seed=1)
            uid = store_users.create_user(conn, name="u", role="labeller", password="bench password ok").id
            conn.execute(insert(items), [
                {"project_id": project.id, "external_id": f"e{i}", "display": {}, "text": "t",
                 "rand": i, "created_at": now, "updated_at": now} for i in range(n_rows)])
            store_codebook.set_definition(conn, project=project, tag="A", definition="x", user_id=None)
        tag = project.tag_id("A")
        sql = (f"INSERT INTO annotations (project_id, item_id, user_id, tag_id, source, is_audit, created_at, "
               f"updated_at) SELECT project_id, id, {uid}, {tag}, 'human', false, created_at, updated_at FROM items")
        trigger = store_codebook_ddl(kind)
        best = {"with": float("inf"), "without": float("inf")}
        in_trigger_us = float("inf")
        for _ in range(rounds):
            for mode in ("with", "without"):
                with writing(engine) as conn:
                    conn.execute(text("DELETE FROM annotations"))
                    conn.execute(text("DROP TRIGGER IF EXISTS annotations_codebook_version"
                                      + ("" if kind == "sqlite" else " ON annotations")))
                    if mode == "with":
                        conn.execute(text(trigger))
                with writing(engine) as conn:
                    started = time.perf_counter()
                    if kind == "postgresql" and mode == "with":
                        plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).scalar_one()
                        trig = [t for t in plan[0].get("Triggers", []) if t["Trigger Name"] == "annotations_codebook_version"]
                        in_trigger_us = min(in_trigger_us, 1000 * trig[0]["Time"] / trig[0]["Calls"])
                    else:
                        conn.execute(text(sql))
                    best[mode] = min(best[mode], time.perf_counter() - started)
        out = {"rows": n_rows, "us_per_row_without": round(1e6 * best["without"] / n_rows, 2),
               "us_per_row_with": round(1e6 * best["with"] / n_rows, 2),
               "trigger_us_per_row": round(1e6 * (best["with"] - best["without"]) / n_rows, 2)}
        if kind == "postgresql":
            out["in_trigger_function_us_per_row"] = round(in_trigger_us, 2)
        return out
    finally:
        engine.dispose()
        _drop(handle)


def store_codebook_ddl(kind: str) -> str:
    from labelloop.store.schema import CODEBOOK_TRIGGER_DDL

    return CODEBOOK_TRIGGER_DDL[kind][-1]  # the trigger (PostgreSQL: its function stays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trigger-only", action="store_true", help="only the trigger's own cost (INSERT ... SELECT)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, object] = {"labels": args.labels, "machine": f"{platform.machine()} {os.cpu_count()} cores",
                              "when": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            out[f"{kind}_trigger_alone"] = trigger_alone(kind, args.labels, Path(tmp))
            if args.trigger_only:
                continue
            batch = 256 if kind == "sqlite" else 8
            results: dict[str, dict[str, float]] = {}
            for _ in range(args.repeat):  # interleaved, so that a slow moment hits every configuration
                for config in ("no_trigger", "no_codebook", "codebook"):
                    got = run_once(kind, config, args.labels, batch, Path(tmp))
                    if config not in results or got["us_per_label"] < results[config]["us_per_label"]:
                        results[config] = got
            base = results["no_trigger"]["us_per_label"]
            out[kind] = {
                "batch": batch,
                **{c: {k: round(v, 1) for k, v in r.items()} for c, r in results.items()},
                "overhead_us_per_label": {c: round(results[c]["us_per_label"] - base, 1)
                                          for c in ("no_codebook", "codebook")},
                "overhead_percent": {c: round(100 * (results[c]["us_per_label"] / base - 1), 1)
                                     for c in ("no_codebook", "codebook")},
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
