"""Search speed: the first page of a ranked search (limit 20) and the capped count, at 1M items.

    .venv/bin/python benchmarks/search_speed.py [--rows 1000000] [--db sqlite|postgresql|both] [--n 200]

Imports ``--rows`` items (the CSV of benchmarks/import_speed.py: real Reddit, BBC and tweet
texts) into a fresh database with `labelloop import` (search index kept), then times
:func:`measure_search` over a mix of queries: common and rare words, phrases, prefixes,
booleans. Prints JSON; goal: p99 of the first ranked page <= 100 ms.

``measure_search(engine, project_id, queries, n)`` is importable (benchmarks/steer_speed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

QUERIES = ["the", "government", "people AND time", '"prime minister"', "mark*", "film OR music", "market -oil",
           "covid", "reddit", "zzzunknown", "health care", "year*", "(election OR vote) minister"]
GOAL_P99_MS = 100.0


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure_search(engine, project_id: int, queries: list[str], n: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """``n`` rounds over ``queries``: each the first ranked page (limit 20) and the capped count,
    timed apart; p50/p99/max in ms, and per query the median."""
    from labelloop.store import reading, search

    page_ms: list[float] = []
    count_ms: list[float] = []
    per_query: dict[str, list[float]] = {q: [] for q in queries}
    counts: dict[str, object] = {}
    for i in range(n):
        q = queries[i % len(queries)]
        with reading(engine) as conn:
            t = time.perf_counter()
            search.ranked_ids(conn, project_id=project_id, query=q, limit=20)
            page = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            counts[q] = search.count_matches(conn, project_id=project_id, query=q)
            count_ms.append((time.perf_counter() - t) * 1000)
        page_ms.append(page)
        per_query[q].append(page)

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(_pct(values, 0.5), 1), "p99_ms": round(_pct(values, 0.99), 1),
                "max_ms": round(max(values), 1)}

    return {
        "first_page": summary(page_ms),
        "count": summary(count_ms),
        "per_query_median_ms": {q: round(statistics.median(v), 1) for q, v in per_query.items() if v},
        "matches": {q: list(c) for q, c in counts.items()},  # type: ignore[call-overload]
        "meets_goal": _pct(page_ms, 0.99) <= GOAL_P99_MS,
    }


def main() -> None:
    import import_speed as imp
    from sqlalchemy import select

    from labelloop.store import open_engine, reading
    from labelloop.store.schema import projects

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=260)
    ns = parser.parse_args()
    path = imp.generate(ns.rows)
    results = []
    for kind in (["sqlite", "postgresql"] if ns.db == "both" else [ns.db]):
        url = imp.fresh_database(kind)
        subprocess.run(imp.labelloop("init", "bench", "--labels", "a,b", "--seed", "1", "--db", url),
                       check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run(imp.labelloop("import", "bench", str(path), "--id-column", "id", "--text-columns",
                                     "title,body", "--db", url), check=True, capture_output=True)
        imported = time.perf_counter() - started
        engine = open_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with reading(engine) as conn:
            project_id = conn.execute(select(projects.c.id).where(projects.c.name == "bench")).scalar_one()
        measure_search(engine, project_id, QUERIES, len(QUERIES))  # warm the caches once
        results.append({"db": kind, "import_seconds": round(imported, 1),
                        **measure_search(engine, project_id, QUERIES, ns.n)})
        engine.dispose()
    print(json.dumps({
        "benchmark": "search_speed", "rows": ns.rows, "queries": QUERIES, "n": ns.n,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
