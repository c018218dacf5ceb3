"""Data-browser speed on a 1M-item project: keyset pages by id, priority and confidence, filters, search.

    .venv/bin/python benchmarks/browse_speed.py [--items 1000000] [--db sqlite|postgresql|both] [--plot]

Builds (once; cached in benchmarks/.cache/ for SQLite and in the PostgreSQL schema
``bench_browse``) a project of ``--items`` items resampled from the real Reddit texts in
../shared/datasets (lightly perturbed), 5 % of them labelled by 5 labellers (some labels
imported), and a current model run scoring every unlabelled item. Then times
:func:`labelloop.store.browse.browse_items` (median of 5 runs, 50 rows a page, in ms): the first
page and a page 90 % deep (a keyset cursor, as the "next page" link carries) for each sort, the
filters and the search, plus ``OFFSET`` for the same deep page to compare. Prints JSON; goal:
any keyset page by id or priority in < 100 ms, on both databases. Filters that few items pass
(a rare search term, priority order with only labelled items) stop after about a second with
a short page and a cursor that continues the scan (``TIME_BUDGET`` in store/browse.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy import Engine, create_engine, func, insert, select, text, update

from labelloop.store import open_engine, reading, writing
from labelloop.store import browse
from labelloop.store import projects as store_projects
from labelloop.store import scores as store_scores
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, item_scores, items, model_runs, projects, score_ranks

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DATASETS = HERE.parent.parent / "shared" / "datasets"
PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "bench_browse"
TAGS = ["Personal Stories", "Advocacy", "Question", "News", "Other"]
LABELLERS = ["ann", "bob", "cat", "dan", "eve"]
GOAL_MS = 100.0
CHUNK = 20_000


def text_pool() -> list[tuple[str, str]]:
    csv.field_size_limit(10**8)
    with open(DATASETS / "reddit_sg.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    pool = []
    for row in rows:
        paragraphs = [p for p in row["selftext"].split("\n\n") if p.strip()] or [""]
        pool += [(row["title"], p[:600]) for p in paragraphs[:3]]
    return pool


def perturb(words: str, rng: random.Random) -> str:
    w = words.split(" ")
    if len(w) > 3:
        i = rng.randrange(len(w) - 1)
        w[i], w[i + 1] = w[i + 1], w[i]
    return " ".join(w) + f" #{rng.randrange(10**6)}"


def build(engine: Engine, n: int) -> None:
    rng = random.Random(7)
    pool = text_pool()
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="bench", labels=TAGS, seed=3)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id",
                                          display_columns=["title", "body"])
        user_ids = [store_users.create_user(conn, name=u, role="labeller", password="benchmark password").id
                    for u in LABELLERS]
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="tfidf-logreg",
            strategy="margin", created_at=now)).inserted_primary_key[0]
    tag_ids = [t.id for t in project.tags]
    started = time.perf_counter()
    scores: list[tuple[int, float, int, float]] = []  # item id, priority, predicted tag, confidence
    for start in range(0, n, CHUNK):
        item_rows, ann_rows = [], []
        for i in range(start + 1, min(n, start + CHUNK) + 1):
            title, body = pool[rng.randrange(len(pool))]
            title, body = perturb(title, rng), perturb(body, rng) if body else ""
            labelled = rng.random() < 0.05
            tag = rng.choice(tag_ids) if labelled else None
            item_rows.append({
                "id": i, "project_id": project.id, "external_id": f"r{i}", "display": {"title": title, "body": body},
                "text": title + "\n" + body, "rand": rand_key(3, f"r{i}"), "n_labels": 1 if labelled else 0,
                "label_tag_id": tag, "label_source": "human" if labelled else None,
                "created_at": now, "updated_at": now,
            })
            if labelled:
                imported = rng.random() < 0.2
                ann_rows.append({
                    "project_id": project.id, "item_id": i, "user_id": None if imported else rng.choice(user_ids),
                    "tag_id": tag, "source": "import" if imported else "human", "created_at": now, "updated_at": now,
                })
            else:
                scores.append((i, rng.random(), rng.choice(tag_ids), rng.random()))
        with writing(engine) as conn:
            conn.execute(insert(items), item_rows)
            if ann_rows:
                conn.execute(insert(annotations), ann_rows)
        print(f"  built {min(n, start + CHUNK):,} items ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    ids, prio, pred, conf = (np.array(c) for c in zip(*scores))
    store_scores.write_scores(engine, run_id=run_id, item_ids=ids, priorities=prio, predicted_tag_ids=pred,
                              confidences=conf)
    with writing(engine) as conn:
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


def open_db(kind: str, n: int) -> Engine:
    if kind == "sqlite":
        CACHE.mkdir(exist_ok=True)
        path = CACHE / f"browse_{n}.db"
        fresh = not path.exists()
        engine = open_engine(f"sqlite:///{path}")
    else:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            fresh = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": PG_SCHEMA}).first() is None
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
        admin.dispose()
        engine = open_engine(f"{PG_URL}?options={quote(f'-csearch_path={PG_SCHEMA}')}")
    with reading(engine) as conn:
        have = conn.execute(select(func.count()).select_from(items)).scalar_one()
    if fresh or have != n:
        if have:
            raise SystemExit(f"{kind}: the cached database has {have:,} items, not {n:,}; delete it first")
        print(f"{kind}: building {n:,} items (cached for later runs)", file=sys.stderr)
        build(engine, n)
    return engine


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def measure(engine: Engine, n: int) -> dict[str, float]:
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="bench")
        run = project.current_run_id
        deep = int(n * 0.9)
        p_key = conn.execute(select(score_ranks.c.rank, score_ranks.c.item_id).where(score_ranks.c.run_id == run)
                             .order_by(score_ranks.c.rank).offset(deep).limit(1)).one()
        c_key = conn.execute(select(item_scores.c.confidence, item_scores.c.item_id).where(item_scores.c.run_id == run)
                             .order_by(item_scores.c.confidence, item_scores.c.item_id).offset(deep // 2).limit(1)).one()

    def page(**kw):
        def run_page():
            with reading(engine) as conn:
                result = browse.browse_items(conn, project=project, limit=50, **kw)
                assert result.rows or result.next_cursor, kw  # a short page still leads on
        return run_page

    def offset_page():
        with reading(engine) as conn:
            conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                         .order_by(items.c.id).offset(deep).limit(50)).all()

    cases = {
        "id_first_page": page(),
        "id_deep_page": page(after=f"i{deep}"),
        "id_deep_page_with_OFFSET_for_comparison": offset_page,
        "priority_first_page": page(sort="priority"),
        "priority_deep_page": page(sort="priority", after=f"s{p_key[0]!r}:{p_key[1]}"),
        "priority_unscored_part": page(sort="priority", after="u1"),
        "confidence_first_page": page(sort="confidence"),
        "confidence_deep_page": page(sort="confidence", after=f"s{c_key[0]!r}:{c_key[1]}"),
        "filter_tag_first_page": page(tag=TAGS[2]),
        "filter_tag_deep_page": page(tag=TAGS[2], after=f"i{deep}"),
        "filter_labeller_first_page": page(labeller="cat"),
        "filter_source_import_first_page": page(source="import"),
        "filter_unlabelled_first_page": page(labelled=False),
        "search_common_word_first_page": page(search="school"),
        "search_rare_id_first_page": page(search=f"r{n - 3}"),
        "priority_with_labelled_filter_first_page": page(sort="priority", labelled=True),
    }
    return {name: timed(fn) for name, fn in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--plot", action="store_true", help="save a bar chart to benchmarks/.cache/browse_speed.png")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, object] = {
        "benchmark": "browse_speed", "items": args.items, "page_size": 50, "unit": "ms (median of 5)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "goal_ms_id_and_priority_pages": GOAL_MS,
    }
    for kind in kinds:
        engine = open_db(kind, args.items)
        results[kind] = measure(engine, args.items)
        engine.dispose()
    print(json.dumps(results, indent=2))
    if args.plot:
        plot(results, kinds)


def plot(results: dict[str, object], kinds: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = list(results[kinds[0]])  # type: ignore[arg-type]
    fig = Figure(figsize=(9, 0.35 * len(names) + 1.2))
    ax = fig.add_subplot()
    height = 0.8 / len(kinds)
    for k, kind in enumerate(kinds):
        values = [results[kind][n] for n in names]  # type: ignore[index]
        ax.barh([i + k * height for i in range(len(names))], values, height=height, label=kind)
    ax.set_yticks([i + height / 2 for i in range(len(names))], labels=names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ms per page (log scale)")
    ax.axvline(GOAL_MS, color="grey", linestyle="--", linewidth=0.8)
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    CACHE.mkdir(exist_ok=True)
    fig.savefig(CACHE / "browse_speed.png")


if __name__ == "__main__":
    main()
