"""What checking a server-side session costs a cookie request, next to a bearer token.

    .venv/bin/python benchmarks/session_check.py [--calls 200000] [--requests 500] [--db sqlite|postgresql]

1. The per-process cache alone: ``AuthCache.by_session`` (cookie: key form, SHA-256, dict,
   expiry) and ``AuthCache.by_token`` (bearer: SHA-256, dict), warm, ``--calls`` each.
2. Whole requests through the app (in process, ``TestClient``): ``POST /api/projects/p/next``
   with the session cookie and CSRF token (FastAPI route) and with a bearer token (the fast
   path of ``server/fastpath.py``), ``--requests`` each, plus how many statements read the
   ``sessions`` table meanwhile (the cache's refresh only: about one a second).
Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, insert, text

from labelloop.config import Settings
from labelloop.server import create_app
from labelloop.server.caches import AuthCache
from labelloop.store import members as store_members
from labelloop.store import open_engine, writing
from labelloop.store import projects as store_projects
from labelloop.store import sessions as store_sessions
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "benchmark password"


def prepare(url: str) -> tuple[str, str]:
    engine = open_engine(url)
    try:
        with writing(engine) as conn:
            project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1,
                                                    settings={"audit_fraction": 0.0})
            user = store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD)
            store_members.add_member(conn, project="p", user="ann", actor_id=None)
            token = store_users.create_token(conn, user_id=user.id)
            key = store_sessions.create_session(conn, user_id=user.id)
            now = datetime.now(UTC)
            conn.execute(insert(items), [
                {"project_id": project.id, "external_id": f"e{i}", "display": {"t": f"text {i}"}, "text": f"text {i}",
                 "rand": rand_key(project.seed, f"e{i}"), "target_labels": 1, "created_at": now, "updated_at": now}
                for i in range(100)])
    finally:
        engine.dispose()
    return token, key


async def cache_costs(url: str, token: str, key: str, calls: int) -> dict[str, float]:
    engine = open_engine(url, create=False)
    cache = AuthCache(engine)
    try:
        await cache.by_session(key)
        await cache.by_token(token)
        result = {}
        for name, check, value in (("by_session_us", cache.by_session, key), ("by_token_us", cache.by_token, token)):
            started = time.perf_counter()
            for _ in range(calls):
                await check(value)
            result[name] = round((time.perf_counter() - started) / calls * 1e6, 2)
        return result
    finally:
        engine.dispose()


def request_costs(url: str, token: str, requests: int) -> dict[str, object]:
    settings = Settings(database_url=url, models_dir=tempfile.mkdtemp(prefix="bench-models-"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/projects").text).group(1)
        cookie = client.cookies.get("labelloop_session")
        reads: list[str] = []
        event.listen(client.app.state.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *a: reads.append(statement) if "sessions" in statement else None)
        result: dict[str, object] = {}
        started_all = time.monotonic()
        for name, headers, cookies in (("cookie", {"X-CSRF-Token": csrf}, True),
                                       ("bearer", {"Authorization": f"Bearer {token}"}, False)):
            times = []
            for _ in range(requests):
                client.cookies.clear()
                if cookies:
                    client.cookies.set("labelloop_session", cookie)
                started = time.perf_counter()
                response = client.post("/api/projects/p/next", headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code in (200, 204), response.text
            times.sort()
            result[f"{name}_median_ms"] = round(statistics.median(times), 2)
            result[f"{name}_p95_ms"] = round(times[int(len(times) * 0.95)], 2)
        result["session_reads"] = len(reads)
        result["seconds"] = round(time.monotonic() - started_all, 1)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-sessions-")
    schema = None
    if args.db == "sqlite":
        url = f"sqlite:///{folder}/bench.db"
    else:
        schema = "bench_sessions_" + uuid.uuid4().hex[:8]
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        token, key = prepare(url)
        out = {"db": args.db, "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                                         f"{platform.python_version()}", "load_average": os.getloadavg()[0]}
        out.update(asyncio.run(cache_costs(url, token, key, args.calls)))
        out.update(request_costs(url, token, args.requests))
        print(json.dumps(out))
    finally:
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
