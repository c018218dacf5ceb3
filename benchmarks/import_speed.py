"""Import speed and memory: `labelloop import` of a large CSV into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/import_speed.py [--rows 1000000] [--db sqlite|postgresql|both] [--plot]

Generates (once, cached in benchmarks/.cache/) a CSV of ``--rows`` items resampled from the
real texts in ../shared/datasets: Reddit titles and bodies, BBC titles and paragraphs, health
tweets; each lightly perturbed (words swapped or dropped, a number appended) and 5 % carrying
a label. Then, per database, in a fresh database (SQLite file / PostgreSQL schema):
`labelloop init`, then the timed `labelloop import` in a subprocess (wall time and the peak RSS
of that process from ``wait4``), a re-import (every row skipped) and `labelloop export` to
Parquet. Prints JSON; goal: >= 50,000 rows/s and peak RSS < 1 GB.

The search index (issue 13): with ``--search both`` (the default) each database is also
imported once *without* the search index (dropped after `init`: PostgreSQL's
stored ``search_tsv`` column and its index, SQLite's FTS5 table and triggers), in the same run, and the report gives
``search_index_cost``: import time with the index / without it (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DATASETS = HERE.parent.parent / "shared" / "datasets"
PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = os.environ.get("LABELLOOP_BENCH_PG_SCHEMA", "bench_import")
TAGS = ["business", "entertainment", "politics", "sports", "tech", "news", "question"]
GOAL_ROWS_PER_S = 50_000
GOAL_RSS_MB = 1024


def _read(name: str) -> list[dict[str, str]]:
    csv.field_size_limit(10**8)
    with open(DATASETS / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def text_pool() -> list[tuple[str, str]]:
    """(title, body) pairs from real texts: whole short posts, single paragraphs of long ones."""
    pool: list[tuple[str, str]] = []
    for row in _read("reddit_sg.csv"):
        paragraphs = [p for p in row["selftext"].split("\n\n") if p.strip()] or [""]
        pool += [(row["title"], p[:1500]) for p in paragraphs[:4]]
    for row in _read("bbc_news.csv"):
        paragraphs = [p for p in row["body"].split("\n\n") if p.strip()]
        pool += [(row["title"], p) for p in paragraphs[:4]]
    for row in _read("health_tweets.csv")[:20000]:
        pool.append(("", row["text"]))
    return pool


def perturb(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        if rng.random() < 0.5:
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            del words[i]
    return " ".join(words)


def generate(rows: int) -> Path:
    path = CACHE / f"items_{rows}.csv"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    rng = random.Random(20240601)
    pool = text_pool()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "body", "label"])
        for i in range(rows):
            title, body = pool[rng.randrange(len(pool))]
            title = perturb(title, rng) + (f" ({rng.randrange(1000)})" if title else "")
            label = TAGS[rng.randrange(len(TAGS))] if rng.random() < 0.05 else ""
            writer.writerow([f"item-{i:08d}", title, perturb(body, rng), label])
    tmp.rename(path)
    return path


def labelloop(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "labelloop"), *args]


def timed(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; its wall time and peak RSS (from wait4, so only that process is counted)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}\n{err}")
    return {
        "seconds": round(seconds, 2),
        # CPU time of the labelloop process alone (user + system): less sensitive than the wall
        # time to other load on the machine (the database server's own CPU is not included).
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_1min_after": round(os.getloadavg()[0], 1),
        "output": out.strip(),
    }


def fresh_database(kind: str) -> str:
    if kind == "sqlite":
        db = CACHE / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{PG_SCHEMA}"')
    return f"{PG_URL}?options={quote(f'-csearch_path={PG_SCHEMA}')}"


GOAL_SEARCH_COST = 1.3


def drop_search_index(url: str) -> None:
    """Remove the search index (migrations 0006 and 0016) for the import without it: SQLite's FTS5
    table and triggers, PostgreSQL's stored tsvector column (its index goes with it)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for trigger in ("items_fts_ai", "items_fts_ad", "items_fts_au"):
                conn.execute(text(f"DROP TRIGGER {trigger}"))
            conn.execute(text("DROP TABLE items_fts"))
        else:
            conn.execute(text("ALTER TABLE items DROP COLUMN search_tsv"))
    engine.dispose()


def bench_without_search(kind: str, path: Path, rows: int) -> dict[str, object]:
    url = fresh_database(kind)
    subprocess.run(labelloop("init", "bench", "--labels", ",".join(TAGS[:5]), "--seed", "1", "--db", url),
                   check=True, capture_output=True)
    drop_search_index(url)
    args = ["--id-column", "id", "--text-columns", "title,body", "--label-column", "label", "--add-labels",
            "--db", url]
    first = timed(labelloop("import", "bench", str(path), *args))
    return {**first, "rows_per_s": round(rows / first["seconds"])}


def bench(kind: str, path: Path, rows: int, *, search: str = "both") -> dict[str, object]:
    without = bench_without_search(kind, path, rows) if search in ("both", "without") else None
    if search == "without":
        return {"db": kind, "import_without_search_index": without}
    url = fresh_database(kind)
    subprocess.run(labelloop("init", "bench", "--labels", ",".join(TAGS[:5]), "--seed", "1", "--db", url),
                   check=True, capture_output=True)
    args = ["--id-column", "id", "--text-columns", "title,body", "--label-column", "label", "--add-labels",
            "--db", url]
    first = timed(labelloop("import", "bench", str(path), *args))
    again = timed(labelloop("import", "bench", str(path), *args))
    out = CACHE / f"export_{kind}.parquet"
    export = timed(labelloop("export", "bench", str(out), "--force", "--db", url))
    size = os.path.getsize(CACHE / "bench.db") if kind == "sqlite" else None
    cost = round(first["seconds"] / without["seconds"], 2) if without else None  # type: ignore[operator]
    return {
        "db": kind,
        "import_without_search_index": without,
        "search_index_cost": cost,
        "search_index_cost_meets_goal": cost is not None and cost <= GOAL_SEARCH_COST,
        "import": {**first, "rows_per_s": round(rows / first["seconds"])},
        "reimport_all_skipped": {**again, "rows_per_s": round(rows / again["seconds"])},
        "export_parquet": {**export, "rows_per_s": round(rows / export["seconds"])},
        "sqlite_file_mb": round(size / 2**20) if size else None,
        "meets_goal": first["seconds"] > 0
        and rows / first["seconds"] >= GOAL_ROWS_PER_S
        and first["peak_rss_mb"] < GOAL_RSS_MB,
    }


def plot(results: list[dict[str, object]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (speed, memory) = plt.subplots(1, 2, figsize=(9, 3.5))
    names = ["import", "reimport_all_skipped", "export_parquet"]
    for i, r in enumerate(results):
        xs = [j + i * 0.4 for j in range(len(names))]
        speed.bar(xs, [r[n]["rows_per_s"] for n in names], width=0.4, label=r["db"])  # type: ignore[index]
        memory.bar(xs, [r[n]["peak_rss_mb"] for n in names], width=0.4, label=r["db"])  # type: ignore[index]
    for ax, title in ((speed, "rows / s"), (memory, "peak RSS (MB)")):
        ax.set_xticks([j + 0.2 for j in range(len(names))], ["import", "re-import", "export"])
        ax.set_title(title)
        ax.legend()
    speed.axhline(GOAL_ROWS_PER_S, color="grey", linestyle="--")
    memory.axhline(GOAL_RSS_MB, color="grey", linestyle="--")
    fig.tight_layout()
    fig.savefig(target, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--search", choices=["both", "with", "without"], default="both",
                        help="import with the search index, without it, or both (the cost ratio)")
    parser.add_argument("--plot", action="store_true", help="also write benchmarks/.cache/import_speed.png")
    ns = parser.parse_args()
    if not DATASETS.is_dir():
        raise SystemExit(f"the shared data sets are not at {DATASETS}")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    path = generate(ns.rows)
    generated = time.perf_counter() - started
    kinds = ["sqlite", "postgresql"] if ns.db == "both" else [ns.db]
    results = [bench(kind, path, ns.rows, search=ns.search) for kind in kinds]
    report = {
        "benchmark": "import_speed",
        "rows": ns.rows,
        "csv_mb": round(path.stat().st_size / 2**20, 1),
        "mean_row_bytes": round(path.stat().st_size / ns.rows),
        "generate_seconds": round(generated, 1),
        "load_average_1min_before": round(load_before, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
    }
    if ns.plot:
        plot(results, CACHE / "import_speed.png")
        report["plot"] = str(CACHE / "import_speed.png")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
