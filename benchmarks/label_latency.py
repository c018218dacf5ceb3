"""Labelling-page latency: from a number key to the next item on screen, in a real Chromium.

    .venv/bin/python benchmarks/label_latency.py [--labels 100] [--db sqlite|postgresql|both]

Starts a Uvicorn server on a free 127.0.0.1 port with a fresh database of 2,000 items, logs a
labeller in with Debian's /usr/bin/chromium (Playwright, headless) and labels ``--labels``
items with number keys. In the page, the time from the keydown to the moment the next item is
on screen is measured (``performance.now()`` and a MutationObserver on the card's ``data-item``,
set when the item's text is in place; the page shows no ids unless the project asks it to). The page posts the
label and asks for the next item right behind it (see the note at the top of static/label.js).
Prints JSON (median, p95, max in ms); goal: median < 100 ms on the local machine.

    .venv/bin/python benchmarks/label_latency.py --suggestions [--labels 100] [--db ...]

Model suggestions (issue 14), A/B in the same run: three projects of the same 2,000 items, each
with the same model run (scores and predictions for every item), with ``suggestions`` off,
``order`` and ``preselect``, open in three tabs of one browser; the measurements alternate
between the tabs (off, order, preselect, off, ...), so that all three see the same machine load.
Goal: the median with suggestions on within 10 ms of the median with them off.
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
from sqlalchemy import create_engine, insert, select, text, update

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
SUGGEST_GOAL_MS = 10.0
MODES = ("off", "order", "preselect")
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


def seed(url: str, *, suggestions: bool = False) -> None:
    """Project ``bench``; with ``suggestions`` instead projects ``bench-off``, ``bench-order`` and
    ``bench-preselect`` (that setting), each with a current model run scoring every item."""
    engine = open_engine(url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD)
        for mode in MODES if suggestions else (None,):
            name = "bench" if mode is None else f"bench-{mode}"
            settings = {} if mode is None else {"suggestions": mode, "audit_fraction": 0.0}
            project = store_projects.create_project(conn, name=name, labels=["A", "B", "C"], seed=5, settings=settings)
            store_members.add_member(conn, project=name, user="ann", actor_id=None)
            conn.execute(insert(items), [
                {"project_id": project.id, "external_id": f"x{i}", "text": f"Post {i}", "rand": rand_key(5, f"x{i}"),
                 "display": {"title": f"Post {i}", "body": "text " * 80}, "created_at": now, "updated_at": now}
                for i in range(2000)
            ])
            if mode is not None:
                _model_run(conn, project)
    engine.dispose()


def _model_run(conn, project) -> None:
    """A complete run predicting a tag (and its probability) for every item, made the current one."""
    from labelloop.store import scores as store_scores
    from labelloop.store.schema import model_runs, projects, utcnow

    ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id)).scalars())
    run_id = conn.execute(insert(model_runs).values(
        project_id=project.id, version=1, status="complete", model_name="tfidf-logreg", strategy="margin",
        labels_used=10, created_at=utcnow(), metrics={"state": "model"})).inserted_primary_key[0]
    tags = [t.id for t in project.tags]
    store_scores.insert_scores(conn, run_id=run_id, item_ids=ids,
                               priorities=[1.0 - k / len(ids) for k in range(len(ids))],
                               predicted_tag_ids=[tags[k % 3] for k in range(len(ids))],
                               confidences=[0.5 + (k % 50) / 100 for k in range(len(ids))])
    conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))


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


def measure_suggestions(url: str, labels: int) -> dict[str, object]:
    """``labels`` key presses per mode, alternating between the three tabs (see the module's notes)."""
    from playwright.sync_api import sync_playwright

    seed(url, suggestions=True)
    server, thread, base = serve(url)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            context = browser.new_context()
            pages = {}
            for mode in MODES:
                page = pages[mode] = context.new_page()
                page.goto(base + f"/projects/bench-{mode}/label")
                if "/login" in page.url:
                    page.fill('input[name="username"]', "ann")
                    page.fill('input[name="password"]', PASSWORD)
                    page.click('button[type="submit"]')
                    page.wait_for_url(base + f"/projects/bench-{mode}/label")
                page.wait_for_function("() => document.getElementById('item-card').dataset.item")
            assert pages["preselect"].locator(".tag-btn.suggested").count() == 1  # suggestions are on
            for _round in range(labels):
                for mode in MODES:
                    pages[mode].bring_to_front()
                    times[mode].append(pages[mode].evaluate(MEASURE_JS))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    out: dict[str, object] = {}
    for mode in MODES:
        ts = sorted(times[mode])
        out[mode] = {"labels": len(ts), "median_ms": round(statistics.median(ts), 1),
                     "p95_ms": round(ts[int(0.95 * (len(ts) - 1))], 1), "max_ms": round(ts[-1], 1)}
    off = statistics.median(times["off"])
    out["median_delta_ms"] = {mode: round(statistics.median(times[mode]) - off, 1) for mode in MODES[1:]}
    out["goal_met"] = all(d <= SUGGEST_GOAL_MS for d in out["median_delta_ms"].values())  # type: ignore[union-attr]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--suggestions", action="store_true",
                        help="A/B: suggestions off, order and preselect, alternated in one run")
    args = parser.parse_args()
    run = measure_suggestions if args.suggestions else measure
    result: dict[str, object] = {
        "benchmark": "label_latency" + (" (suggestions A/B)" if args.suggestions else ""),
        "goal_median_ms": GOAL_MS, **({"goal_suggestions_within_ms": SUGGEST_GOAL_MS} if args.suggestions else {}),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            result["sqlite"] = run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.labels)
    if args.db in ("postgresql", "both"):
        schema = "bench_latency_" + uuid.uuid4().hex[:8]
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            result["postgresql"] = run(f"{PG_URL}?options={quote(f'-csearch_path={schema}')}", args.labels)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
