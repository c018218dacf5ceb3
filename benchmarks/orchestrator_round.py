"""One orchestrator round on a large project, timed by phase, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/orchestrator_round.py --items 1000000 --labels 2000 [--db sqlite|postgresql|both]
        [--rounds 2] [--rebuild-features] [--plot out.png]

Builds (once, cached under benchmarks/.cache/) a project of ``--items`` items whose texts are
resampled from the real corpora in ../shared/datasets (BBC articles and Reddit posts cut into
title + a few paragraphs, health tweets; lightly perturbed) with ``--labels`` human labels
(the source topic, spread evenly), imported with labelloop's own importer. Then, per database,
each step in a fresh child process (peak RSS from ``wait4``):

1. ``features``: the feature cache brought up to date (built on first use, else reused), timed
   on its own, as the spec asks;
2. ``round``: ``--rounds`` rounds of ``run_round`` (tfidf-logreg, margin) with per-phase
   timings; the later rounds are the steady state (they also delete the previous version's
   score rows). While they run, a probe process writes one tiny transaction every 20 ms, as a
   labeller's label would, and reports its latencies: labellers must never be blocked.

Prints JSON. Goals at 1M items / 2,000 labels on 2 cores: total <= 3x the pure model time
(fit + CV + predict) and <= 60 s, write-back >= 200,000 rows/s, peak RSS <= 2 GB.

``--multi-label``: a multi-label project instead, with the ten most common Debtags as its tags
and texts resampled from ../shared/datasets/debian_tags.csv (title + description, perturbed);
``--labels`` items are imported with their true set (their Debtags among the ten; maybe none).
Rounds use the default set strategy (max_uncertainty): one-vs-rest over the ten tags, CV
thresholds, predicted sets and tag probabilities written with every score row. Goals: total <=
3x the pure model time (fit + CV + predict of all tags), peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DATASETS = HERE.parent.parent / "shared" / "datasets"
PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PROJECT = "bench"
TAGS = ["business", "entertainment", "politics", "sports", "tech", "reddit", "health"]
GOALS = {"total_s": 60.0, "total_over_model": 3.0, "write_rows_per_s": 200_000, "peak_rss_mb": 2048}


# ------------------------------------------------------------------------------ data
def text_pool() -> dict[str, list[tuple[str, str, str]]]:
    """(title, body, tag) by source: BBC title + up to 4 paragraphs, Reddit posts, tweets."""
    csv.field_size_limit(10**8)

    def read(name: str) -> list[dict[str, str]]:
        with open(DATASETS / name, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    pool: dict[str, list[tuple[str, str, str]]] = {"bbc": [], "reddit": [], "health": []}
    for row in read("bbc_news.csv"):
        paragraphs = [p for p in row["body"].split("\n") if p.strip()]
        for k in range(0, len(paragraphs), 4):
            pool["bbc"].append((row["title"], "\n\n".join(paragraphs[k : k + 4]), row["label"]))
    for row in read("reddit_sg.csv"):
        paragraphs = [p for p in row["selftext"].split("\n\n") if p.strip()] or [""]
        pool["reddit"].append((row["title"], "\n\n".join(paragraphs[:3])[:3000], "reddit"))
    for row in read("health_tweets.csv")[:30000]:
        pool["health"].append(("", row["text"], "health"))
    return pool


# Source mix: about 230 tf-idf terms per item, as the spec's memory estimate assumes.
SOURCE_WEIGHTS = {"bbc": 0.62, "reddit": 0.25, "health": 0.13}


def perturb(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) > 4:
        for _ in range(2):
            i = rng.randrange(len(words) - 1)
            if rng.random() < 0.5:
                words[i], words[i + 1] = words[i + 1], words[i]
            else:
                del words[i]
    return " ".join(words) + f" {rng.randrange(1000)}"


def records(n: int, labels: int, seed: int = 0):
    rng = random.Random(seed)
    pool = text_pool()
    sources, weights = list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values())
    every = max(1, n // max(labels, 1))
    for i in range(n):
        texts = pool[rng.choices(sources, weights)[0]]
        title, body, tag = texts[rng.randrange(len(texts))]
        yield {"id": f"b{i}", "title": perturb(title, rng) if title else "", "body": perturb(body, rng),
               "label": tag if labels and i % every == 0 and i // every < labels else ""}


SET_TAGS = 10  # the most common Debtags


def debian_pool() -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(title, description, Debtags) of every package, and the SET_TAGS most common tags."""
    from collections import Counter

    with open(DATASETS / "debian_tags.csv", encoding="utf-8", newline="") as f:
        rows = [(r["title"], r["text"], r["labels"].split("|")) for r in csv.DictReader(f)]
    common = [tag for tag, _ in Counter(t for _, _, tags in rows for t in tags).most_common(SET_TAGS)]
    return rows, common


def set_records(n: int, labels: int, seed: int = 0):
    """Items resampled from debian_tags (perturbed), each with its set among the common tags;
    the first of every n // labels items is labelled (``sets`` gives its tags)."""
    rng = random.Random(seed)
    rows, common = debian_pool()
    every = max(1, n // max(labels, 1))
    for i in range(n):
        title, body, tags = rows[rng.randrange(len(rows))]
        labelled = labels and i % every == 0 and i // every < labels
        yield {"id": f"b{i}", "title": perturb(title, rng), "body": perturb(body, rng)}, (
            [t for t in tags if t in common] if labelled else None)


def db_url(kind: str, n: int, labels: int, multi: bool = False) -> str:
    stem = f"orch_{'ml_' if multi else ''}{n}_{labels}"
    if kind == "sqlite":
        return f"sqlite:///{CACHE / f'{stem}.db'}"
    schema = f"bench_{stem}"
    return f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"


def import_sets(engine, url: str, n: int, labels: int) -> None:
    """The multi-label project, through labelloop's importer: each labelled item's set joined
    by "|" ("__none__" when none of the ten tags applies), an empty cell for the others."""
    from labelloop.config import Settings
    from labelloop.io import ImportOptions, MappingSource, import_source
    from labelloop.store import writing
    from labelloop.store import projects as store_projects

    _, common = debian_pool()
    with writing(engine) as conn:
        store_projects.create_project(conn, name=PROJECT, labels=common, seed=1, multi_label=True)
    source = ({**record, "labels": "" if tags is None else ("|".join(tags) or "__none__")}
              for record, tags in set_records(n, labels))
    settings = Settings(database_url=url, import_chunk_rows=20_000)
    import_source(engine, project=PROJECT, source=MappingSource(source), settings=settings,
                  options=ImportOptions(id_column="id", text_columns=["title", "body"], label_column="labels",
                                        label_separator="|"))


def ensure_project(kind: str, n: int, labels: int, multi: bool = False) -> dict[str, float]:
    """Create and import the project once; later runs reuse it (and reset its model runs)."""
    from sqlalchemy import create_engine, delete, func, select, text, update

    from labelloop.config import Settings
    from labelloop.io import ImportOptions, MappingSource, import_source
    from labelloop.store import open_engine, reading, writing
    from labelloop.store import projects as store_projects
    from labelloop.store.schema import item_scores, items, model_runs, orchestrator_locks, projects, score_ranks

    if kind == "postgresql":
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "bench_orch_{"ml_" if multi else ""}{n}_{labels}"'))
        admin.dispose()
    url = db_url(kind, n, labels, multi)
    engine = open_engine(url)
    built = 0.0
    with reading(engine) as conn:
        have = conn.execute(select(func.count()).select_from(items)).scalar_one()
    if have != n:
        if have:
            raise SystemExit(f"{url} holds {have} items, not {n}: delete it (or drop the schema) and rerun")
        started = time.perf_counter()
        if multi:
            import_sets(engine, url, n, labels)
        else:
            with writing(engine) as conn:
                store_projects.create_project(conn, name=PROJECT, labels=TAGS, seed=1)
            settings = Settings(database_url=url, import_chunk_rows=20_000)
            import_source(engine, project=PROJECT, source=MappingSource(records(n, labels)), settings=settings,
                          options=ImportOptions(id_column="id", text_columns=["title", "body"], label_column="label"))
        built = time.perf_counter() - started
    with writing(engine) as conn:  # every measurement starts from "no version yet"
        conn.execute(update(projects).values(current_run_id=None, retrain_requested_at=None))
        conn.execute(delete(item_scores))
        conn.execute(delete(score_ranks))
        conn.execute(delete(model_runs))
        conn.execute(delete(orchestrator_locks))
    if kind == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE item_scores"))
    engine.dispose()
    return {"import_s": round(built, 1)}


# ------------------------------------------------------------------------------ children
def child(args: argparse.Namespace) -> None:
    """Runs inside a fresh process: ``features`` or ``round``; prints one JSON line."""
    from labelloop.config import Settings
    from labelloop.orchestrator import run_round
    from labelloop.orchestrator.round import feature_cache
    from labelloop.store import open_engine, reading
    from labelloop.store import projects as store_projects

    engine = open_engine(args.url)
    settings = Settings(database_url=args.url, models_dir=Path(args.models_dir), keep_models=3)
    if args.child == "features":
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name=PROJECT)
        started = time.perf_counter()
        features, ids, _, how = feature_cache(settings, project, "tfidf").ensure(engine, project_id=project.id)
        seconds = time.perf_counter() - started
        nnz = sum(int(block.nnz) for _, block in features.chunks())
        print(json.dumps({"how": how, "seconds": round(seconds, 2), "rows": int(len(ids)),
                          "features": features.n_features, "nnz_per_row": round(nnz / max(len(ids), 1), 1),
                          "shards": len(features.shards)}))
        return
    out = []
    for _ in range(args.rounds):
        started_at = time.time()
        strategy = "max_uncertainty" if args.multi_label else "margin"
        result = run_round(engine, settings, project=PROJECT, model="tfidf-logreg", strategy=strategy)
        t = {k: round(v, 3) for k, v in result.timings.items()}
        cpu = {k: round(v, 3) for k, v in result.cpu.items()}
        out.append({"started_at": round(started_at, 2), "version": result.version, "state": result.state, "features": result.features,
                    "scored": result.scored, "labels": result.labels_used,
                    "cv": None if not result.cv else {k: round(result.cv[k], 4) for k in (
                        ("micro_f1", "macro_f1", "subset_accuracy") if args.multi_label else ("accuracy", "macro_f1"))},
                    "timings": t, "cpu": cpu, "model_s": round(result.model_seconds, 3),
                    "model_cpu_s": round(sum(cpu.get(k, 0.0) for k in ("fit", "cv", "predict")), 3),
                    "write_rows_per_s": round(result.scored / max(result.timings.get("write", 0), 1e-9)),
                    "write_rows_per_cpu_s": round(result.scored / max(result.cpu.get("write", 0), 1e-9))})
    print(json.dumps(out))


PROBE = """
import signal, sys, time, json
from sqlalchemy import text
from labelloop.store import make_engine, writing
engine = make_engine(sys.argv[1])
lat = []
slowest = []
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    t = time.perf_counter()
    with writing(engine) as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('bench_probe', :v) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), {"v": str(t)})
    lat.append(time.perf_counter() - t)
    slowest = sorted(slowest + [(lat[-1], time.time() - lat[-1])], reverse=True)[:5]
    time.sleep(0.02)
lat.sort()
q = lambda p: round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)
print(json.dumps({"writes": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": round(1000 * lat[-1], 1),
                  "slowest_ms_at": [[round(1000 * l, 1), round(at, 2)] for l, at in slowest]}))
"""


def run_child(argv: list[str], timeout: float = 7200) -> tuple[object, float]:
    """(parsed JSON output, peak RSS in MB) of a child process."""
    proc = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"child {argv} timed out")
        time.sleep(0.2)
    output = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {argv} failed: {output[-2000:]}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def bench(kind: str, args: argparse.Namespace) -> dict[str, object]:
    multi = args.multi_label
    setup = ensure_project(kind, args.items, args.labels, multi)
    url = db_url(kind, args.items, args.labels, multi)
    models = CACHE / f"orch_models_{kind}_{'ml_' if multi else ''}{args.items}_{args.labels}"
    if args.rebuild_features:
        import shutil

        shutil.rmtree(models / PROJECT / "features", ignore_errors=True)
    common = ["--url", url, "--models-dir", str(models)]
    features, features_rss = run_child(["--child", "features", *common])
    probe = subprocess.Popen([sys.executable, "-c", PROBE, url], stdout=subprocess.PIPE, text=True)
    try:
        rounds, round_rss = run_child(["--child", "round", "--rounds", str(args.rounds), *common,
                                       *(["--multi-label"] if multi else [])])
    finally:
        probe.send_signal(signal.SIGTERM)
    try:
        probe_out = probe.communicate(timeout=120)[0].strip().splitlines()
    except subprocess.TimeoutExpired:
        probe.kill()
        probe_out = []
    print(json.dumps({kind: rounds}), file=sys.stderr)  # in case anything below fails
    steady = rounds[-1]
    t = steady["timings"]
    return {
        **setup,
        "features": {**features, "peak_rss_mb": round(features_rss)},
        "rounds": rounds,
        "round_peak_rss_mb": round(round_rss),
        "labeller_writes_during_rounds": json.loads(probe_out[-1]) if probe_out else None,
        "steady_state": {
            "total_s": t["total"], "serving_s": t["serving"], "cleanup_s": t["cleanup"], "model_s": steady["model_s"],
            "total_over_model": round(t["total"] / max(steady["model_s"], 1e-9), 2),
            "serving_over_model": round(t["serving"] / max(steady["model_s"], 1e-9), 2),
            "write_rows_per_s": steady["write_rows_per_s"],
            "goals_met": {
                "total_s": t["total"] <= GOALS["total_s"],
                "total_over_model": t["total"] <= GOALS["total_over_model"] * steady["model_s"],
                "serving_over_model": t["serving"] <= GOALS["total_over_model"] * steady["model_s"],
                "write_rows_per_s": steady["write_rows_per_s"] >= GOALS["write_rows_per_s"],
                "peak_rss_mb": round_rss <= GOALS["peak_rss_mb"],
            },
        },
    }


def plot(results: dict[str, dict[str, object]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = ["snapshot", "features", "fit", "cv", "predict", "save", "write", "switch", "cleanup"]
    fig, ax = plt.subplots(figsize=(8, 2.8))
    for row, (kind, res) in enumerate(results.items()):
        left = 0.0
        for k, phase in enumerate(phases):
            width = res["rounds"][-1]["timings"].get(phase, 0.0)
            ax.barh(row, width, left=left, color=plt.cm.tab10(k), label=phase if row == 0 else None)
            left += width
    ax.set_yticks(range(len(results)), list(results))
    ax.set_xlabel("seconds (steady-state round)")
    ax.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rebuild-features", action="store_true")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--multi-label", action="store_true", help="a multi-label project (10 Debtags)")
    parser.add_argument("--child", choices=["features", "round"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    CACHE.mkdir(exist_ok=True)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = {kind: bench(kind, args) for kind in kinds}
    report = {
        "benchmark": "orchestrator_round", "items": args.items, "labels": args.labels, "model": "tfidf-logreg",
        "multi_label": args.multi_label, "tags": SET_TAGS if args.multi_label else len(TAGS),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
        "goals": GOALS, "results": results,
    }
    if args.plot:
        plot(results, args.plot)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
