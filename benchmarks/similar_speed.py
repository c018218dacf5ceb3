"""The `similar` queue's look-up at 1M items, on SQLite and PostgreSQL (issue 13).

    .venv/bin/python benchmarks/similar_speed.py [--items 1000000] [--db sqlite|postgresql|both] [--queries 300]

Builds (once; cached in benchmarks/.cache/similar_<items>.db and the PostgreSQL schema
``bench_similar_<items>``) a project of ``--items`` items whose texts are resampled, perturbed
texts of the shared data sets (TREC-6, SMS spam, 20 newsgroups), then computes its vector set
with the round's own code (:func:`labelloop.orchestrator.steering.ensure_vectors`: TF-IDF fitted
on a 100,000-text sample, truncated SVD to 64 dimensions fitted on 20,000 rows, float16 blobs in
chunks of 10,000 items), and times :func:`labelloop.store.steerlists.similar_ids` (limit 50):

- ``load_seconds``: the first call of a process (reads the set into a float32 matrix);
- ``sequential``: p50/p99 of ``--queries`` calls one after the other (each on a fresh
  connection from the pool, as a request would);
- ``parallel_4``: the same with 4 threads calling at once (a loaded server).

``measure_similar(engine, project_id, n)`` is importable (``steer_speed.py``). Goal: p99 <= 200 ms.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from sqlalchemy import Engine, create_engine, select, text

from labelloop.learn import make_featurizer
from labelloop.orchestrator.features import InMemoryFeatures
from labelloop.orchestrator.steering import ensure_vectors
from labelloop.simulate.data import read_labelled_file
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import steerlists
from labelloop.store.items import rand_key
from labelloop.store.schema import items

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SHARED = Path(os.environ.get("LABELLOOP_SHARED_DIR") or HERE.parent.parent / "shared") / "datasets"
PG_BASE = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROJECT = "bench"
LIMIT = 50


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_ms": round(float(ms.mean()), 1), "max_ms": round(float(ms.max()), 1), "n": len(values)}


def measure_similar(engine: Engine, project_id: int, n: int, *, threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Time ``n`` calls of ``similar_ids`` (limit 50) on random items of the project's vector set,
    in ``threads`` threads; the first call (the process's load of the set) is timed apart."""
    with reading(engine) as conn:
        latest = steerlists.latest_vector_set(conn, project_id=project_id)
        if latest is None:
            raise SystemExit("the project has no vector set: run a round first")
        started = time.perf_counter()
        ids, _ = steerlists.VECTORS.get(conn, project_id)
        load = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    queries = [int(i) for i in rng.choice(ids, size=n)]
    times: list[float] = []
    lock = threading.Lock()

    def work(part: list[int]) -> None:
        for item in part:
            t0 = time.perf_counter()
            with reading(engine) as conn:
                found = steerlists.similar_ids(conn, project_id=project_id, item_id=item, limit=LIMIT)
            elapsed = time.perf_counter() - t0
            assert item not in found
            with lock:
                times.append(elapsed)

    workers = [threading.Thread(target=work, args=(queries[k::threads],)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"items": len(ids), "dims": latest.dims, "load_seconds": round(load, 2), "threads": threads,
            **percentiles(times)}


def texts(n: int, seed: int = 7) -> list[str]:
    """``n`` texts: the shared data sets' texts resampled, with words dropped and swapped."""
    base: list[str] = []
    for file in ("trec6.csv", "sms_spam.csv", "20ng_train.csv"):
        found, _ = read_labelled_file(SHARED / file, text_columns=["text"], label_column="label")
        base.extend(t[:400] for t in found)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.choice(base).split()
        if len(words) > 3:
            words = [w for w in words if rng.random() > 0.15] or words
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        out.append(" ".join(words))
    return out


def db_url(kind: str, n: int) -> str:
    if kind == "sqlite":
        return f"sqlite:///{CACHE / f'similar_{n}.db'}"
    return f"{PG_BASE}?options={quote(f'-csearch_path=bench_similar_{n}')}"


def build(kind: str, n: int) -> tuple[Engine, int, dict[str, float]]:
    CACHE.mkdir(exist_ok=True)
    if kind == "postgresql":
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "bench_similar_{n}"'))
        admin.dispose()
    engine = open_engine(db_url(kind, n))
    timings: dict[str, float] = {}
    with reading(engine) as conn:
        have = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
    if have == 0:
        t0 = time.perf_counter()
        all_texts = texts(n)
        with writing(engine) as conn:
            project = store_projects.create_project(conn, name=PROJECT, labels=["a", "b", "c"], seed=42)
        now = datetime.now(UTC)
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            rows = ((project.id, f"i{i:07d}", json.dumps({"text": t}), t, rand_key(42, f"i{i:07d}"), now, now)
                    for i, t in enumerate(all_texts))
            if kind == "sqlite":
                stamp = now.replace(tzinfo=None).isoformat(" ", "microseconds")
                cur.executemany("INSERT INTO items (project_id, external_id, display, text, rand, created_at, "
                                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                ((*r[:5], stamp, stamp) for r in rows))
            else:
                with cur.copy("COPY items (project_id, external_id, display, text, rand, created_at, updated_at) "
                              "FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
            raw.commit()
        finally:
            raw.close()
        timings["insert_items_seconds"] = round(time.perf_counter() - t0, 1)
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name=PROJECT)
        latest = steerlists.latest_vector_set(conn, project_id=project.id)
    if latest is None:
        with reading(engine) as conn:
            rows = conn.execute(select(items.c.id, items.c.text).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).all()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        corpus = [r.text for r in rows]
        del rows
        t0 = time.perf_counter()
        featurizer = make_featurizer("tfidf")
        sample = np.random.default_rng(0).choice(len(corpus), size=min(100_000, len(corpus)), replace=False)
        featurizer.fit([corpus[i] for i in sample])
        X = featurizer.transform(corpus)
        del corpus
        timings["tfidf_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        ensure_vectors(engine, project, InMemoryFeatures(X, chunk_rows=100_000), ids, "tfidf")
        timings["vectors_seconds"] = round(time.perf_counter() - t0, 1)
    return engine, project.id, timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
                                      f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
                           "items": args.items, "limit": LIMIT}
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        engine, project_id, timings = build(kind, args.items)
        steerlists.VECTORS.clear()
        sequential = measure_similar(engine, project_id, args.queries)
        parallel = measure_similar(engine, project_id, args.queries, threads=4, seed=1)
        out[kind] = {"build": timings, "sequential": sequential, "parallel_4": parallel,
                     "goal_met": sequential["p99_ms"] <= 200}
        print(f"{kind}: {out[kind]}", file=sys.stderr, flush=True)
        steerlists.VECTORS.clear()
        engine.dispose()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
