"""Steered queues at scale (issue 13): search, ``next`` in steered queues, and the default queue
beside them, over loopback HTTP on a 1M-item project.

    .venv/bin/python benchmarks/steer_speed.py [--items 1000000] [--db sqlite|postgresql|both]
        [--duration 15] [--labellers 400] [--period 2.0] [--queues search,random,default]

Reuses ``serve_latency.py`` (beside this script): its project builder (random texts of 20
words, so the search index has real work) and its load generator, with the project and
database of its own (``benchmarks/.cache/steer_<items>.db``, schema ``bench_steer_<items>``):
never a database another benchmark uses (this branch's migrations would move it on).

1. search: the first page ranked (``store.search.ranked_ids``, limit 20) and the steered list
   (``store.steerqueue.search_order``, limit 500) for a few queries, p50/p99 in-process;
2. ``next`` in steered queues: open loop, ``--labellers`` labellers each starting a cycle
   (``POST next?queue=...`` then ``POST labels``) every ``--period`` s (400 / 2 s = 200
   labels/s offered), p50/p99 of ``next`` and ``label``, one phase per queue;
3. the default queue (``POST next`` without parameters) in the same run, for comparison with
   ``serve_latency.py``.

No model round runs at 1M items here, so ``likely``/``unsure``/``similar`` are not driven
(their lists come from a round; ``similar`` speed is the lists helper's ``similar_speed``).
Goals (2 cores): search first page p99 <= 100 ms; steered ``next`` p99 <= 50 ms at 200 labels/s.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_latency as sl  # noqa: E402

from labelloop.store import open_engine, reading  # noqa: E402
from labelloop.store import projects as store_projects  # noqa: E402
from labelloop.store import search as store_search  # noqa: E402
from labelloop.store import steerqueue  # noqa: E402

QUERIES = ["market", "election AND goal", '"bank player"', "soft*", "chip OR court", "minister -vote"]


def _db_url(kind: str, n_items: int) -> str:
    if kind == "sqlite":
        return f"sqlite:///{sl.CACHE / f'steer_{n_items}.db'}"
    return f"{sl.PG_BASE}?options=-csearch_path%3D{_schema(n_items)}"


def _schema(n_items: int) -> str:
    return f"bench_steer_{n_items}"


sl.db_url = _db_url
sl.pg_schema = _schema

NEXT_QUERY = ""  # the steered queue of the phase running ("" = the default queue)
_plain_cycle = sl.cycle


async def _cycle(client, rec, prefix):
    """serve_latency's cycle with the phase's queue on ``next``."""
    if not NEXT_QUERY:
        return await _plain_cycle(client, rec, prefix)
    original = client.post

    async def post(path, body=b""):
        if path.endswith("/next"):
            path += NEXT_QUERY
        return await original(path, body)

    client.post = post
    try:
        return await _plain_cycle(client, rec, prefix)
    finally:
        client.post = original


sl.cycle = _cycle


def search_figures(url: str, n: int) -> dict:
    engine = open_engine(url)
    out: dict = {}
    try:
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name=sl.PROJECT)
        for what, call in (
            ("first_page_ranked", lambda conn, q: store_search.ranked_ids(conn, project_id=project.id, query=q, limit=20)),
            ("steered_list_500", lambda conn, q: steerqueue.search_order(conn, project=project, query=q, limit=500)),
        ):
            times = []
            for i in range(n):
                q = QUERIES[i % len(QUERIES)]
                with reading(engine) as conn:
                    t0 = time.perf_counter()
                    call(conn, q)
                    times.append(time.perf_counter() - t0)
            out[what] = sl.percentiles(times)
    finally:
        engine.dispose()
    out["queries"] = QUERIES
    return out


def run_db(kind: str, args: argparse.Namespace) -> dict:
    global NEXT_QUERY
    url = sl.build(kind, args.items, args.labellers)
    sl.reset(url)
    result: dict = {"search": search_figures(url, args.searches)}
    server = sl.Server(url, args.workers)
    try:
        server.wait()
        for queue in args.queues.split(","):
            NEXT_QUERY = {"default": "", "random": "?queue=random",
                          "search": "?queue=search&q=market"}.get(queue, f"?queue={queue}")
            result[f"next_{queue}"] = sl.measured(
                server, sl.open_loop(server.port, args.labellers, args.period, args.duration, 3.0))
    finally:
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--labellers", type=int, default=400)
    parser.add_argument("--period", type=float, default=2.0)
    parser.add_argument("--searches", type=int, default=120)
    parser.add_argument("--queues", default="search,random,default")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out = {"items": args.items, "offered_labels_per_s": args.labellers / args.period,
           "machine": f"{platform.machine()}, 2 cores, loaded by parallel work",
           "results": {kind: run_db(kind, args) for kind in kinds}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
