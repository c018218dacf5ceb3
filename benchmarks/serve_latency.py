"""Labelling-server latency and throughput over loopback HTTP on a 1M-item project.

    .venv/bin/python benchmarks/serve_latency.py [--items 1000000] [--db sqlite|postgresql|both]
        [--workers 2] [--duration 20] [--labellers 1000] [--period 2.0] [--closed 1,8,32] [--plot]
        [--login-flood 40] [--multi-label]

Builds (once; cached in benchmarks/.cache/serve_<items>.db for SQLite and in the PostgreSQL
schema ``bench_serve_<items>``) a project of ``--items`` items and ``--labellers`` labellers with API
tokens, resets all labels and leases, starts ``labelloop serve --workers N`` on a free
127.0.0.1 port and drives it with a load generator in this process (asyncio, raw HTTP/1.1
keep-alive, one connection per labeller):

(a) open loop: every labeller starts a cycle (``POST next`` then ``POST labels``) every
    ``--period`` seconds at a random phase, whether or not the server keeps up
    (1,000 labellers every 2 s = 500 labels/s offered); p50/p99 of ``next`` and ``label``;
(b) closed loop: 1, 8 and 32 labellers with no think time: labels/s and latencies.

Latency is measured from sending a request to its full response. Prints JSON.
With ``--login-flood N`` every phase runs twice, without and then with N connections posting
random logins in a loop (``login_flood.py``, a process of its own): ``without_flood`` and
``with_flood`` per phase, so the two are compared within one run.
With ``--multi-label`` the project is a multi-label one (its own database: ``serve_ml_<items>.db``,
schema ``bench_serve_ml_<items>``; the same tags) and each label is a set of one to three tags
(``{"labels": [...]}``); run it alternated with the single-label run to compare the two.
Goals (2 cores): p99 <= 50 ms for both calls at 500 labels/s offered; closed loop >= 1,500 labels/s.
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
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, text

from labelloop.store import open_engine, writing
from labelloop.store import projects as store_projects
from labelloop.store.items import rand_key
from labelloop.store.users import hash_token

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PG_BASE = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROJECT = "bench"
TAGS = ["World", "Sport", "Business", "Tech", "Other"]
MULTI = False  # --multi-label: a multi-label project, labelled with sets
WORDS = ("market election match vote goal shares phone team minister growth chip league court "
         "bank player software union price final policy").split()


def token_of(i: int) -> str:
    return f"ll_bench_token_{i:05d}_0123456789abcdef"


def db_url(kind: str, n_items: int) -> str:
    if kind == "sqlite":
        stem = f"serve_{'ml_' if MULTI else ''}{n_items}"
        return f"sqlite:///{CACHE / (stem + '.db')}"
    return f"{PG_BASE}?options={quote(f'-csearch_path={pg_schema(n_items)}')}"


def pg_schema(n_items: int) -> str:
    return f"bench_serve_{'ml_' if MULTI else ''}{n_items}"


def build(kind: str, n_items: int, n_users: int) -> str:
    """Create (or reuse) the benchmark database; returns its URL."""
    CACHE.mkdir(exist_ok=True)
    url = db_url(kind, n_items)
    if kind == "postgresql":
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{pg_schema(n_items)}"'))
        admin.dispose()
    engine = open_engine(url)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
        users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    if have == n_items:
        if users < n_users:  # an earlier run needed fewer labellers
            _load_users(engine, n_users, start=users)
        _make_members(engine)
        engine.dispose()
        return url
    if have or users:
        raise SystemExit(f"{url} holds another benchmark's data: delete it first")
    started = time.perf_counter()
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name=PROJECT, labels=TAGS, seed=42, multi_label=MULTI)
        conn.execute(text("UPDATE projects SET display_columns = :c WHERE id = :p"),
                     {"c": json.dumps(["title", "body"]), "p": project.id})
    _load_items(engine, project.id, n_items)
    _load_users(engine, n_users)
    if kind == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    print(f"built {kind} benchmark database in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    engine.dispose()
    return url


def _item_rows(project_id: int, n_items: int, now: str):
    rng = random.Random(7)
    for i in range(n_items):
        external = f"item-{i:07d}"
        title = " ".join(rng.choices(WORDS, k=6))
        body = " ".join(rng.choices(WORDS, k=30))
        yield (project_id, external, json.dumps({"title": title, "body": body}), f"{title}\n{body}",
               rand_key(42, external), now, now)


def _load_items(engine: Engine, project_id: int, n_items: int) -> None:
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            stamp = now.replace(tzinfo=None).isoformat(" ", "microseconds")
            cur.executemany(
                "INSERT INTO items (project_id, external_id, display, text, rand, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                _item_rows(project_id, n_items, stamp),
            )
        else:
            with cur.copy(
                "COPY items (project_id, external_id, display, text, rand, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in _item_rows(project_id, n_items, now.isoformat()):
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _load_users(engine: Engine, n_users: int, start: int = 0) -> None:
    now = datetime.now(UTC)
    password_hash = PasswordHasher().hash("bench-password")  # one hash for all: logins are not measured
    with writing(engine) as conn:
        for i in range(start, n_users):
            uid = conn.execute(
                text("INSERT INTO users (name, role, password_hash, disabled, created_at) "
                     "VALUES (:n, 'labeller', :h, false, :t) RETURNING id"),
                {"n": f"bench{i:05d}", "h": password_hash, "t": now},
            ).scalar_one()
            conn.execute(
                text("INSERT INTO api_tokens (user_id, token_hash, name, created_at) VALUES (:u, :h, 'bench', :t)"),
                {"u": uid, "h": hash_token(token_of(i)), "t": now},
            )
    _make_members(engine)


def _make_members(engine: Engine) -> None:
    """Make every labeller a member of every project (labellers see only their projects); a
    no-op for the pairs that exist, so a database built before memberships is brought in line."""
    with writing(engine) as conn:
        conn.execute(
            text("INSERT INTO project_members (project_id, user_id, created_at) "
                 "SELECT p.id, u.id, :t FROM projects p CROSS JOIN users u WHERE u.role = 'labeller' "
                 "AND NOT EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = u.id)"),
            {"t": datetime.now(UTC)},
        )


def reset(url: str) -> None:
    """Forget every label and lease, so each run starts from the same state."""
    engine = open_engine(url)
    with writing(engine) as conn:
        conn.execute(text("DELETE FROM annotations"))
        conn.execute(text("DELETE FROM assignments"))
        conn.execute(text("UPDATE items SET n_labels = 0, label_tag_id = NULL, label_mask = NULL, "
                          "label_source = NULL WHERE n_labels > 0"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE items"))
            conn.execute(text("VACUUM ANALYZE assignments"))
            conn.execute(text("VACUUM ANALYZE annotations"))
    engine.dispose()


class Server:
    def __init__(self, url: str, workers: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        labelloop = str(Path(sys.executable).parent / "labelloop")
        self.proc = subprocess.Popen(
            [labelloop, "serve", "--port", str(self.port), "--workers", str(workers), "--db", url],
            env={**os.environ, "LABELLOOP_LOG_LEVEL": "WARNING", "LABELLOOP_SECRET_KEY": "bench-secret"},
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(100).startswith(b"HTTP/1.1 200"):
                        time.sleep(1.0)  # let every worker finish starting
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not start")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its worker processes."""
        import psutil

        total = 0.0
        root = psutil.Process(self.proc.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Client:
    """One keep-alive HTTP/1.1 connection with a bearer token (raw, to keep the load cheap)."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n".encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n").encode() + self.auth
        if body:
            head += b"Content-Type: application/json\r\n"
        self.writer.write(head + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, (await self.reader.readexactly(length) if length else b"")

    def close(self) -> None:
        self.writer.close()


class Recorder:
    def __init__(self) -> None:
        self.next: list[float] = []
        self.label: list[float] = []
        self.errors: dict[str, int] = {}
        self.labels = 0
        self.measuring = False

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def cycle(client: Client, rec: Recorder, prefix: str) -> bool:
    """One ``next`` + ``label``; False when nothing is left."""
    t0 = time.perf_counter()
    status, body = await client.post(prefix + "/next")
    t1 = time.perf_counter()
    if status == 204:
        return False
    if status != 200:
        rec.error(f"next {status}")
        return True
    item_id = json.loads(body)["item"]["id"]
    if MULTI:  # one to three tags, as a labeller would tick them
        chosen = [TAGS[(item_id + k) % len(TAGS)] for k in range(1 + item_id % 3)]
        payload = json.dumps({"labels": chosen}).encode()
    else:
        payload = b'{"label": "%s"}' % TAGS[item_id % len(TAGS)].encode()
    status, _ = await client.post(f"{prefix}/items/{item_id}/labels", payload)
    t2 = time.perf_counter()
    if status != 201:
        rec.error(f"label {status}")
    if rec.measuring:
        rec.next.append(t1 - t0)
        rec.label.append(t2 - t1)
        rec.labels += status == 201
    return True


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(pick(0.50), 2), "p90_ms": round(pick(0.90), 2),
            "p99_ms": round(pick(0.99), 2), "max_ms": round(ordered[-1] * 1000, 2)}


async def open_loop(port: int, labellers: int, period: float, duration: float, warmup: float) -> dict:
    prefix = f"/api/projects/{PROJECT}"
    rec = Recorder()
    clients = [Client(port, token_of(i)) for i in range(labellers)]
    await asyncio.gather(*(c.open() for c in clients))
    start = time.perf_counter() + 0.5
    stop = start + warmup + duration
    lags: list[float] = []

    async def labeller(client: Client) -> None:
        due = start + random.uniform(0, period)
        while due < stop:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif rec.measuring:
                lags.append(-delay)
            await cycle(client, rec, prefix)
            due += period

    async def switch() -> None:
        await asyncio.sleep(start + warmup - time.perf_counter())
        rec.measuring = True
        await asyncio.sleep(duration)
        rec.measuring = False

    measured = asyncio.ensure_future(switch())
    await asyncio.gather(*(labeller(c) for c in clients))
    await measured
    for c in clients:
        c.close()
    return {
        "labellers": labellers, "period_s": period, "offered_labels_per_s": round(labellers / period, 1),
        "achieved_labels_per_s": round(rec.labels / duration, 1),
        "next": percentiles(rec.next), "label": percentiles(rec.label),
        "late_starts": len(lags), "late_start_p99_ms": percentiles(lags).get("p99_ms", 0.0),
        "errors": rec.errors,
    }


async def closed_loop(port: int, labellers: int, duration: float, warmup: float, first_user: int) -> dict:
    prefix = f"/api/projects/{PROJECT}"
    rec = Recorder()
    clients = [Client(port, token_of(first_user + i)) for i in range(labellers)]
    await asyncio.gather(*(c.open() for c in clients))
    stop = time.perf_counter() + warmup + duration

    async def labeller(client: Client) -> None:
        while time.perf_counter() < stop and await cycle(client, rec, prefix):
            pass

    async def switch() -> None:
        await asyncio.sleep(warmup)
        rec.measuring = True
        began = time.perf_counter()
        await asyncio.sleep(duration)
        rec.measuring = False
        rec.elapsed = time.perf_counter() - began  # type: ignore[attr-defined]

    measured = asyncio.ensure_future(switch())
    await asyncio.gather(*(labeller(c) for c in clients))
    await measured
    for c in clients:
        c.close()
    return {
        "labellers": labellers, "labels_per_s": round(rec.labels / rec.elapsed, 1),  # type: ignore[attr-defined]
        "next": percentiles(rec.next), "label": percentiles(rec.label), "errors": rec.errors,
    }


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (/proc/stat; Linux only)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def measured(server: Server, phase) -> dict:
    """Run one load phase; add the CPU seconds used meanwhile by this load generator, the
    server's processes and the whole machine (the database's backends are the bulk of the
    rest), over the whole phase including its warm-up."""
    cpu, server_cpu, (busy, total) = time.process_time(), server.cpu_seconds(), machine_cpu()
    result = asyncio.run(phase)
    busy_after, total_after = machine_cpu()
    result["generator_cpu_s"] = round(time.process_time() - cpu, 1)
    result["server_cpu_s"] = round(server.cpu_seconds() - server_cpu, 1)
    result["machine_cpu_busy_s"] = round(busy_after - busy, 1)
    result["machine_cpu_s"] = round(total_after - total, 1)
    return result


def phase(server: Server, args: argparse.Namespace, make, warmup: float) -> dict:
    """``make()``'s load phase; with ``--login-flood``, once without and once with the flood."""
    if not args.login_flood:
        return measured(server, make())
    import login_flood  # beside this script

    quiet = measured(server, make())
    flood = login_flood.start(server.port, args.login_flood, 1.5 + warmup + args.duration + 0.5)
    time.sleep(1.5)  # its connections are up and flooding
    flooded = measured(server, make())
    flooded["login_flood"] = login_flood.finish(flood)
    return {"without_flood": quiet, "with_flood": flooded}


def run_db(kind: str, args: argparse.Namespace) -> dict:
    rounds = 2 if args.login_flood else 1
    url = build(kind, args.items, args.labellers + rounds * sum(args.closed))
    reset(url)
    server = Server(url, args.workers)
    try:
        server.wait()
        result: dict = {"workers": args.workers}
        if args.labellers:
            result["open_loop"] = phase(server, args, lambda: open_loop(server.port, args.labellers, args.period,
                                                                        args.duration, 3.0), 3.5)
        result["closed_loop"] = []
        first = [args.labellers]  # fresh users for each closed-loop run: nobody holds a lease yet

        def fresh(n: int):
            first[0] += n
            return closed_loop(server.port, n, args.duration, 2.0, first[0] - n)

        for n in args.closed:
            result["closed_loop"].append(phase(server, args, lambda n=n: fresh(n), 2.0))
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per phase")
    parser.add_argument("--labellers", type=int, default=1000, help="open loop: simulated labellers (0: no open loop)")
    parser.add_argument("--period", type=float, default=2.0, help="open loop: seconds between a labeller's labels")
    parser.add_argument("--closed", default="1,8,32", help="closed loop: numbers of labellers")
    parser.add_argument("--plot", action="store_true", help="also write benchmarks/plots/serve_latency.png")
    parser.add_argument("--login-flood", type=int, default=0, metavar="N",
                        help="run every phase also under a flood of random logins on N connections (40)")
    parser.add_argument("--multi-label", action="store_true", help="a multi-label project, labelled with sets")
    args = parser.parse_args()
    args.closed = [int(x) for x in args.closed.split(",") if x]
    global MULTI
    MULTI = args.multi_label
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out: dict = {
        "benchmark": "serve_latency", "items": args.items, "multi_label": args.multi_label, "cpus": os.cpu_count(),
        "python": platform.python_version(), "load_average_before": os.getloadavg()[0], "results": {},
    }
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        out["results"][kind] = run_db(kind, args)
    out["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    if args.plot:
        plot(out, HERE / "plots" / "serve_latency.png")


def plot(out: dict, path: Path) -> None:
    import matplotlib

    path.parent.mkdir(exist_ok=True)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, res in out["results"].items():
        runs = [r.get("without_flood", r) for r in res["closed_loop"]]
        ax.plot([r["labellers"] for r in runs], [r["labels_per_s"] for r in runs], marker="o", label=f"{kind} labels/s")
    ax.axhline(1500, linestyle="--", color="grey", label="goal 1,500/s")
    ax.set_xlabel("closed-loop labellers")
    ax.set_ylabel("labels per second")
    ax.set_xscale("log", base=2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
