"""Whether an orchestrator works on a project: every check of a project is recorded (mode
``project``, ``server`` or ``all``), and the model page and the retrain API say "checked N s ago
(in the server)" between rounds, "none" only when no check is fresh. On SQLite and PostgreSQL,
with the orchestrator loops in a thread and as real processes (``serve --orchestrate``,
``orchestrate --all``)."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from labelloop.orchestrator import ProjectLock, orchestrate, run_forever
from labelloop.server import create_app
from labelloop.store import heartbeats, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store import users as store_users
from labelloop.store.schema import orchestrator_heartbeats, utcnow

PASSWORD = "a long password"
PAGE = "/admin/projects/{}/models"
HOST = socket.gethostname()


@pytest.fixture
def site(bbc):
    """bbc plus an empty project, an admin, and settings with a 0.2 s check interval."""
    with writing(bbc.engine) as conn:
        store_projects.create_project(conn, name="empty", labels=["a", "b"], seed=1)
        store_users.create_user(conn, name="boss", role="admin", password=PASSWORD)
    return dataclasses.replace(bbc.settings, orchestrate_interval=0.2)


@pytest.fixture
def client(site) -> Iterator[TestClient]:
    with TestClient(create_app(site), base_url="http://127.0.0.1") as test_client:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', test_client.get("/login").text).group(1)
        test_client.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": csrf, "next": "/"})
        yield test_client


def state_line(html: str) -> str:
    found = re.search(r'<p id="orchestrator-state"[^>]*>(.*?)</p>', html, re.S)
    assert found, html
    return re.sub(r"<[^>]+>", "", found.group(1))


def last_check(engine, name: str) -> heartbeats.Check | None:
    with reading(engine) as conn:
        return heartbeats.last_check(conn, project_id=store_projects.get_project(conn, name=name).id)


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def age_checks(engine, seconds: float) -> None:
    with writing(engine) as conn:
        conn.execute(update(orchestrator_heartbeats).values(checked_at=utcnow() - timedelta(seconds=seconds)))


def test_the_servers_loop_records_every_check_and_the_page_says_so(bbc, site, client):
    assert state_line(client.get(PAGE.format("bbc")).text) == "Orchestrator: none (no check of this project recorded)."
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(site, stop), kwargs={"engine": bbc.engine}, daemon=True)
    thread.start()
    try:
        # bbc gets its first round; the empty project fails its round: both checks are recorded
        first = wait_for(lambda: last_check(bbc.engine, "bbc"), what="a check of bbc")
        empty = wait_for(lambda: last_check(bbc.engine, "empty"), what="a check of the empty project")
        assert (first.mode, empty.mode) == ("server", "server") and first.holder == empty.holder
        assert first.holder.startswith(f"{HOST}:{os.getpid()}:")
        # between rounds (nothing due, no lock held) every pass records a new check
        later = wait_for(lambda: (c := last_check(bbc.engine, "bbc")) and c.checked_at > first.checked_at and c,
                         what="a second check")
        with reading(bbc.engine) as conn:
            assert store_runs.current_run(conn, project_id=bbc.project().id) is not None
        for name in ("bbc", "empty"):
            line = state_line(client.get(PAGE.format(name)).text)
            assert re.fullmatch(r"Orchestrator: checked \d+ s ago \(in the server\)\.", line), line
        body = client.post("/api/projects/bbc/retrain", headers={"X-CSRF-Token": csrf_of(client)}).json()
        assert body["orchestrator"]["alive"] and body["orchestrator"]["mode"] == "server"
        assert body["orchestrator"]["holder"] == later.holder
        assert body["message"] == "a round starts at the orchestrator's next check"
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    # Stopped: once the last check is older than 3 intervals (here the 30 s floor), "none".
    age_checks(bbc.engine, 31)
    line = state_line(client.get(PAGE.format("bbc")).text)
    assert re.fullmatch(r"Orchestrator: none \(last check 3\d s ago, in the server\)\.", line), line
    body = client.post("/api/projects/bbc/retrain", headers={"X-CSRF-Token": csrf_of(client)}).json()
    assert not body["orchestrator"]["alive"] and body["message"].startswith("no orchestrator is running")


def csrf_of(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(PAGE.format("bbc")).text).group(1)


def test_orchestrate_project_records_its_checks_as_mode_project(bbc, site, client):
    stop = threading.Event()
    thread = threading.Thread(target=orchestrate, args=(bbc.engine, site), kwargs={"project": "bbc", "stop": stop},
                              daemon=True)
    thread.start()
    try:
        first = wait_for(lambda: last_check(bbc.engine, "bbc"), what="a check of bbc")
        assert first.mode == "project"
        wait_for(lambda: last_check(bbc.engine, "bbc").checked_at > first.checked_at, what="a second check")
        line = state_line(client.get(PAGE.format("bbc")).text)
        assert re.fullmatch(rf"Orchestrator: checked \d+ s ago \(orchestrate bbc on {re.escape(HOST)}\)\.", line)
        assert last_check(bbc.engine, "empty") is None  # it only checks its own project
    finally:
        stop.set()
        thread.join(timeout=60)
    # `orchestrate PROJECT` holds the lock throughout, so an old check (a long back-off after
    # failed rounds) is not "none" while the lock is held.
    holder = f"{HOST}:1:abc"
    with writing(bbc.engine) as conn:
        heartbeats.record_check(conn, project_id=bbc.project().id, holder=holder, mode="project",
                                now=utcnow() - timedelta(seconds=300))
    with ProjectLock(bbc.engine, project_id=bbc.project().id, project_name="bbc", holder=holder):
        line = state_line(client.get(PAGE.format("bbc")).text)
    assert line == f"Orchestrator: working on this project now (orchestrate bbc on {HOST}); last check 5 min ago."
    assert state_line(client.get(PAGE.format("bbc")).text) == (
        f"Orchestrator: none (last check 5 min ago, orchestrate bbc on {HOST}).")


def test_busy_with_another_projects_round_is_not_none(bbc, site, client):
    """A pass over every project checks a project after the other projects' rounds: while the
    same orchestrator holds another project's lock, an old check is still a working one."""
    holder = f"{HOST}:1:abc"
    with writing(bbc.engine) as conn:
        empty = store_projects.get_project(conn, name="empty").id
        heartbeats.record_check(conn, project_id=empty, holder=holder, mode="all",
                                now=utcnow() - timedelta(seconds=100))
        assert store_runs.claim_lock_row(conn, project_id=bbc.project().id, holder=holder, stale_after=30) is None
    line = state_line(client.get(PAGE.format("empty")).text)
    assert re.fullmatch(rf"Orchestrator: checked 10\d s ago \(orchestrate --all on {re.escape(HOST)}\); "
                        r"busy with a round of another project, back after it\.", line), line
    with writing(bbc.engine) as conn:
        store_runs.release_lock_row(conn, project_id=bbc.project().id, holder=holder)
    line = state_line(client.get(PAGE.format("empty")).text)
    assert re.fullmatch(rf"Orchestrator: none \(last check 10\d s ago, orchestrate --all on {re.escape(HOST)}\)\.",
                        line), line


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], db_url: str, site) -> subprocess.Popen:
    env = dict(os.environ, LABELLOOP_MODELS_DIR=str(site.models_dir), LABELLOOP_ORCHESTRATE_INTERVAL="0.5",
               LABELLOOP_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "labelloop", *args, "--db", db_url], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_real_serve_orchestrate_shows_checked_in_the_server(bbc, site, db_url):
    port = _port()
    proc = _run(["serve", "--orchestrate", "--port", str(port)], db_url, site)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            wait_for(lambda: _up(http, proc), what="the server")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text).group(1)
            http.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": csrf, "next": "/"})
            line = wait_for(lambda: (s := state_line(http.get(PAGE.format("bbc")).text)).startswith(
                "Orchestrator: checked") and s, what="a check on the page")
            assert re.fullmatch(r"Orchestrator: checked \d+ s ago \(in the server\)\.", line), line
            check = last_check(bbc.engine, "bbc")
            assert check.mode == "server" and check.holder.startswith(f"{HOST}:{proc.pid}:")
    finally:
        _stop(proc)
    assert proc.returncode == 0, proc.stderr.read()


def _up(http: httpx.Client, proc: subprocess.Popen) -> bool:
    assert proc.poll() is None, proc.stderr.read()
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_a_real_orchestrate_all_records_mode_all(bbc, site, db_url, client):
    proc = _run(["orchestrate", "--all"], db_url, site)
    try:
        checks = wait_for(lambda: (a := last_check(bbc.engine, "bbc")) and (b := last_check(bbc.engine, "empty"))
                          and (a, b), what="checks of both projects")
        assert {c.mode for c in checks} == {"all"} and checks[0].holder.startswith(f"{HOST}:{proc.pid}:")
        line = state_line(client.get(PAGE.format("empty")).text)
        assert re.fullmatch(rf"Orchestrator: checked \d+ s ago \(orchestrate --all on {re.escape(HOST)}\)\.", line)
    finally:
        _stop(proc)
    assert proc.returncode == 0, proc.stderr.read()
