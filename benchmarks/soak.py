"""Soak: labellers for minutes against `labelloop serve --workers N` on PostgreSQL while a
separate `labelloop orchestrate` retrains; latencies, errors, rounds and memory over time.

    .venv/bin/python benchmarks/soak.py [--duration 300] [--labellers 32] [--items 100000]
        [--workers 2] [--interval 30] [--min-new-labels 20] [--think 0.25] [--sample 5] [--plot]

Builds a fresh PostgreSQL schema ``bench_soak`` (dropped first): a project of ``--items`` real
texts resampled from ../shared/datasets as in orchestrator_round.py (7 tags) and ``--labellers``
users with API tokens. Starts ``labelloop serve --workers N`` and ``labelloop orchestrate bench
--interval I --min-new-labels M`` (both at the default log level, INFO: one log line per
request, into benchmarks/.cache/soak/*.log) and drives the server from this process: each
labeller (asyncio, raw HTTP/1.1 keep-alive, bearer token) loops ``POST next``, ``POST labels``
with the item's true tag, then waits ``--think`` seconds. Every ``--sample`` seconds it records
the RSS and CPU time of each process (server parent and workers, orchestrator, this generator)
with psutil, and the 1-minute load average.

Prints JSON: p50/p99 of next and label overall and per 30 s window, errors by kind, labels
done, model rounds completed (from the database), and per process its CPU seconds and RSS: at
the start, at the end, the maximum, and the floor (lowest RSS) of every minute with its growth
and slope (a round makes the orchestrator's RSS jump and fall back; a leak raises the floor).
``--plot`` also writes benchmarks/plots/soak.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psutil
from sqlalchemy import create_engine, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orchestrator_round import SOURCE_WEIGHTS, TAGS, perturb, text_pool  # noqa: E402
from serve_latency import Client, _load_users, percentiles, token_of  # noqa: E402

from labelloop.config import Settings  # noqa: E402
from labelloop.io import ImportOptions, MappingSource, import_source  # noqa: E402
from labelloop.store import open_engine, reading, writing  # noqa: E402
from labelloop.store import projects as store_projects  # noqa: E402
from labelloop.store.schema import model_runs  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = HERE / ".cache" / "soak"
PG_BASE = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_soak"
PROJECT = "bench"
WINDOW = 30.0
LABELLOOP = str(Path(sys.executable).parent / "labelloop")


# ---- the project ---------------------------------------------------------------------------
def build(n_items: int, n_users: int) -> tuple[str, dict[str, str]]:
    """A fresh schema with the project and users; returns its URL and external id -> true tag."""
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.dispose()
    url = f"{PG_BASE}?options={quote(f'-csearch_path={SCHEMA}')}"
    engine = open_engine(url)
    rng = random.Random(0)
    pool = text_pool()
    sources, weights = list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values())
    truth: dict[str, str] = {}
    rows = []
    for i in range(n_items):
        texts = pool[rng.choices(sources, weights)[0]]
        title, body, tag = texts[rng.randrange(len(texts))]
        truth[f"s{i}"] = tag
        rows.append({"id": f"s{i}", "title": perturb(title, rng) if title else "", "body": perturb(body, rng)})
    with writing(engine) as conn:
        store_projects.create_project(conn, name=PROJECT, labels=TAGS, seed=1)
    import_source(engine, project=PROJECT, source=MappingSource(rows), settings=Settings(database_url=url),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"]))
    _load_users(engine, n_users)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return url, truth


# ---- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([LABELLOOP, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})


def wait_ready(port: int, proc: subprocess.Popen[bytes], workers: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server ended at startup")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    if len(psutil.Process(proc.pid).children()) >= workers:
                        time.sleep(2.0)  # let the other worker finish starting
                        return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


class Sampler(threading.Thread):
    """RSS (MB) and CPU seconds of every watched process every ``every`` seconds."""

    def __init__(self, server: int, orchestrator: int, every: float, t0: float):
        super().__init__(daemon=True)
        self.server, self.orchestrator, self.every, self.t0 = server, orchestrator, every, t0
        self.samples: list[dict] = []
        self.halt = threading.Event()

    def processes(self) -> dict[str, psutil.Process]:
        found = {"generator": psutil.Process(os.getpid())}
        try:
            parent = psutil.Process(self.server)
            found["server-parent"] = parent
            for child in parent.children(recursive=True):
                cmd = " ".join(child.cmdline())
                kind = "server-worker" if "spawn_main" in cmd or "multiprocessing" in cmd else "server-child"
                if "resource_tracker" in cmd:
                    kind = "server-resource-tracker"
                found[f"{kind}-{child.pid}"] = child
        except psutil.Error:
            pass
        try:
            found["orchestrator"] = psutil.Process(self.orchestrator)
        except psutil.Error:
            pass
        return found

    def run(self) -> None:
        while not self.halt.is_set():
            sample: dict = {"t": round(time.monotonic() - self.t0, 1), "load1": os.getloadavg()[0], "rss_mb": {},
                            "cpu_s": {}}
            for name, proc in self.processes().items():
                try:
                    with proc.oneshot():
                        sample["rss_mb"][name] = round(proc.memory_info().rss / 2**20, 1)
                        times = proc.cpu_times()
                        sample["cpu_s"][name] = round(times.user + times.system, 1)
                except psutil.Error:
                    pass
            self.samples.append(sample)
            self.halt.wait(self.every)


# ---- load ------------------------------------------------------------------------------------
class Log:
    def __init__(self) -> None:
        self.ops: list[tuple[float, str, float]] = []  # (time since start, "next"/"label", seconds)
        self.errors: dict[str, int] = {}
        self.labels = 0
        self.empty = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def labeller(port: int, token: str, truth: dict[str, str], log: Log, t0: float, stop: float,
                   think: float) -> None:
    prefix = f"/api/projects/{PROJECT}"
    await asyncio.sleep(random.uniform(0, 2.0))  # labellers arrive over 2 s, not all at once
    client = Client(port, token)
    await client.open()
    while time.perf_counter() < stop:
        try:
            a = time.perf_counter()
            status, body = await client.post(prefix + "/next")
            b = time.perf_counter()
            log.ops.append((a - t0, "next", b - a))
            if status == 204:
                log.empty += 1
                await asyncio.sleep(1.0)
                continue
            if status != 200:
                log.error(f"next {status}")
                await asyncio.sleep(1.0)
                continue
            item = json.loads(body)["item"]
            payload = json.dumps({"label": truth[item["external_id"]]}).encode()
            status, _ = await client.post(f"{prefix}/items/{item['id']}/labels", payload)
            c = time.perf_counter()
            log.ops.append((b - t0, "label", c - b))
            if status == 201:
                log.labels += 1
            else:
                log.error(f"label {status}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.error(type(exc).__name__)
            client.close()
            await asyncio.sleep(1.0)
            client = Client(port, token)
            await client.open()
        if think:
            await asyncio.sleep(think)
    client.close()


async def drive(port: int, n: int, truth: dict[str, str], duration: float, think: float, t0: float) -> Log:
    log = Log()
    stop = time.perf_counter() + duration
    await asyncio.gather(*(labeller(port, token_of(i), truth, log, t0, stop, think) for i in range(n)))
    return log


# ---- summary ---------------------------------------------------------------------------------
def windows(log: Log, duration: float) -> list[dict]:
    out = []
    start = 0.0
    while start < duration:
        ops = [(kind, s) for t, kind, s in log.ops if start <= t < start + WINDOW]
        out.append({"from_s": start, "labels": sum(1 for k, _ in ops if k == "label"),
                    "next": percentiles([s for k, s in ops if k == "next"]),
                    "label": percentiles([s for k, s in ops if k == "label"])})
        start += WINDOW
    return out


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return round(60 * sum((t - mx) * (v - my) for t, v in points) / var, 2) if var else None


def memory(samples: list[dict], duration: float) -> dict[str, dict]:
    """Per process: RSS at the start, at the end and its maximum, and its *floor* (the lowest
    RSS) per minute. A round makes the orchestrator's RSS jump and fall back; a leak raises the
    floor. Growth is the last minute's floor minus the second minute's (the first one is
    start-up); the slope is fitted to the floors of the minutes after the first."""
    names = sorted({name for s in samples for name in s["rss_mb"]})
    out = {}
    for name in names:
        series = [(s["t"], s["rss_mb"][name]) for s in samples if name in s["rss_mb"]]
        floors = [(60 * m + 30, min(v for t, v in series if 60 * m <= t < 60 * (m + 1)))
                  for m in range(int(duration // 60) + 1) if any(60 * m <= t < 60 * (m + 1) for t, _ in series)]
        out[name] = {
            "start_mb": series[0][1], "end_mb": series[-1][1], "max_mb": max(v for _, v in series),
            "floor_per_min_mb": [v for _, v in floors],
            "growth_mb": round(floors[-1][1] - floors[min(1, len(floors) - 1)][1], 1),
            "floor_slope_mb_per_min": slope_mb_per_min(floors[1:]),
            "cpu_s": next((s["cpu_s"][name] for s in reversed(samples) if name in s["cpu_s"]), None),
        }
    return out


def rounds(url: str, t0_wall: float) -> list[dict]:
    engine = open_engine(url)
    with reading(engine) as conn:
        rows = conn.execute(select(model_runs).order_by(model_runs.c.id)).mappings().all()
    engine.dispose()
    out = []
    for r in rows:
        metrics = r["metrics"] or {}
        finished = r["finished_at"]
        out.append({"version": r["version"], "status": r["status"], "labels_used": r["labels_used"],
                    "state": metrics.get("state"), "macro_f1": metrics.get("macro_f1"),
                    "started_s": round(r["created_at"].timestamp() - t0_wall, 1),  # since the load started
                    # from its run row to the switch (snapshot and features come before the row)
                    "seconds": round((finished - r["created_at"]).total_seconds(), 1) if finished else None,
                    "error": ((r["error"] or "").strip().splitlines() or [None])[0]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--labellers", type=int, default=32)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=30.0, help="the orchestrator's check interval (s)")
    parser.add_argument("--min-new-labels", type=int, default=20)
    parser.add_argument("--think", type=float, default=0.25, help="seconds a labeller waits after each label")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--plot", action="store_true", help="also write benchmarks/plots/soak.png")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    started_build = time.perf_counter()
    url, truth = build(args.items, args.labellers)
    build_s = time.perf_counter() - started_build
    port = free_port()
    env = {"LABELLOOP_SECRET_KEY": "soak-secret", "LABELLOOP_LOG_LEVEL": "INFO",
           "LABELLOOP_MODELS_DIR": str(WORK / "models")}
    server = start(["serve", "--port", str(port), "--workers", str(args.workers), "--db", url], WORK / "serve.log", env)
    orchestrator = None
    try:
        wait_ready(port, server, args.workers)
        orchestrator = start(["orchestrate", PROJECT, "--interval", str(args.interval), "--min-new-labels",
                              str(args.min_new_labels), "--db", url], WORK / "orchestrate.log", env)
        load_before = os.getloadavg()[0]
        t0, t0_wall = time.perf_counter(), time.time()
        sampler = Sampler(server.pid, orchestrator.pid, args.sample, time.monotonic())
        sampler.start()
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        log = asyncio.run(drive(port, args.labellers, truth, args.duration, args.think, t0))
        elapsed = time.perf_counter() - t0
        sampler.halt.set()
        sampler.join()
    finally:
        for proc in (orchestrator, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in (("orchestrator", orchestrator), ("server", server)):
            if proc is not None:
                try:
                    codes[name] = proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes[name] = "killed"
    (WORK / "samples.json").write_text(json.dumps(sampler.samples))  # kept even if the summary fails
    runs = rounds(url, t0_wall)
    loads = [s["load1"] for s in sampler.samples]
    out = {
        "benchmark": "soak", "database": "postgresql", "cpus": os.cpu_count(), "python": platform.python_version(),
        "items": args.items, "labellers": args.labellers, "workers": args.workers, "think_s": args.think,
        "orchestrator": {"interval_s": args.interval, "min_new_labels": args.min_new_labels},
        "build_s": round(build_s, 1), "duration_s": round(elapsed, 1),
        "load_average_1min": {"before": load_before, "mean": round(sum(loads) / len(loads), 2), "max": max(loads)},
        "labels": log.labels, "labels_per_s": round(log.labels / elapsed, 1), "queue_empty_answers": log.empty,
        "errors": log.errors,
        "next": percentiles([s for _, k, s in log.ops if k == "next"]),
        "label": percentiles([s for _, k, s in log.ops if k == "label"]),
        "rounds_completed": sum(1 for r in runs if r["status"] == "complete"),
        "rounds_failed": sum(1 for r in runs if r["status"] == "failed"),
        "rounds": runs,
        "windows": windows(log, elapsed),
        "memory": memory(sampler.samples, elapsed),
        "exit_codes": codes,
    }
    print(json.dumps(out, indent=2))
    (WORK / "soak.json").write_text(json.dumps({**out, "samples": sampler.samples}, indent=1))
    if args.plot:
        plot(out, sampler.samples, HERE / "plots" / "soak.png")


def plot(out: dict, samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(exist_ok=True)
    fig, (mem, lat) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    names = sorted({n for s in samples for n in s["rss_mb"]})
    for name in names:
        series = [(s["t"], s["rss_mb"][name]) for s in samples if name in s["rss_mb"]]
        if max(v for _, v in series) > 20:  # skip tiny helper processes
            mem.plot([t for t, _ in series], [v for _, v in series], label=name)
    mem.set_ylabel("RSS (MB); grey: rounds")
    mem.legend(fontsize=8, loc="upper left")
    mem.set_title(f"soak: {out['labellers']} labellers, {out['items']:,} items, PostgreSQL, "
                  f"{out['rounds_completed']} rounds, load avg {out['load_average_1min']['mean']}")
    xs = [w["from_s"] + WINDOW / 2 for w in out["windows"]]
    for kind in ("next", "label"):
        lat.plot(xs, [w[kind].get("p99_ms", float("nan")) for w in out["windows"]], marker="o", label=f"{kind} p99")
        lat.plot(xs, [w[kind].get("p50_ms", float("nan")) for w in out["windows"]], linestyle="--", label=f"{kind} p50")
    for r in out["rounds"]:
        if r["seconds"] is not None:
            for ax in (mem, lat):
                ax.axvspan(r["started_s"], r["started_s"] + r["seconds"], color="grey", alpha=0.15, lw=0)
    lat.set_yscale("log")
    lat.set_ylabel(f"latency per {WINDOW:.0f} s window (ms)")
    lat.set_xlabel("seconds since the load started")
    lat.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
