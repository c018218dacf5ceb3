"""Labelling-page latency: from a number key to the next item on screen, in a real Chromium.

    .venv/bin/python benchmarks/label_latency.py [--labels 100] [--db sqlite|postgresql|both]

Starts a Uvicorn server on a free 127.0.0.1 port with a fresh database of 2,000 items, logs a
labeller in with Debian's /usr/bin/chromium (Playwright, headless) and labels ``--labels``
items with number keys. In the page, the time from the keydown to the moment the next item is
on screen is measured (``performance.now()`` and a MutationObserver on the card's ``data-item``,
set when the item's text is in place; the page shows no ids unless the project asks it to). The page posts the
label and asks for the next item right behind it (see the note at the top of static/label.js).
Prints JSON (median, p95, max in ms); goal: median < 100 ms on the local machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import uvicorn
from sqlalchemy import create_engine, insert, text

from labelloop.config import Settings
from labelloop.server import create_app
from labelloop.store import open_engine, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

PG_URL = os.environ.get("LABELLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "benchmark password"
GOAL_MS = 100.0
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

MEASURE_JS = """
() => new Promise((resolve) => {
  const card = document.getElementById('item-card');
  const before = card.dataset.item;
  const started = performance.now();
  const obs = new MutationObserver(() => {
    if (card.dataset.item && card.dataset.item !== before) { obs.disconnect(); resolve(performance.now() - started); }
  });
  obs.observe(card, {attributes: true, attributeFilter: ['data-item']});
  document.dispatchEvent(new KeyboardEvent('keydown', {key: String(1 + Math.floor(Math.random() * 3)), bubbles: true}));
})
"""


def seed(url: str) -> None:
    engine = open_engine(url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="bench", labels=["A", "B", "C"], seed=5)
        store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD)
        store_members.add_member(conn, project="bench", user="ann", actor_id=None)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"x{i}", "display": {"title": f"Post {i}", "body": "text " * 80},
             "text": f"Post {i}", "rand": rand_key(5, f"x{i}"), "created_at": now, "updated_at": now}
            for i in range(2000)
        ])
    engine.dispose()


def serve(url: str) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=url)), log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def measure(url: str, labels: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    seed(url)
    server, thread, base = serve(url)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = browser.new_page()
            page.goto(base + "/projects/bench/label")
            page.fill('input[name="username"]', "ann")
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_function("() => document.getElementById('item-card').dataset.item")
            times = [page.evaluate(MEASURE_JS) for _ in range(labels)]
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    times.sort()
    return {"labels": labels, "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "max_ms": round(times[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "label_latency", "goal_median_ms": GOAL_MS,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            result["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.labels)
    if args.db in ("postgresql", "both"):
        schema = "bench_latency_" + uuid.uuid4().hex[:8]
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            result["postgresql"] = measure(f"{PG_URL}?options={quote(f'-csearch_path={schema}')}", args.labels)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
