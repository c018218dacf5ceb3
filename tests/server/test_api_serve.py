"""`labelloop serve` as a real process: workers share the session secret; clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from labelloop.cli import main

LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [LABELLOOP, "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "LABELLOOP_SECRET_KEY": "", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start: " + (proc.stdout.read() if proc.stdout else ""))


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_serve_help_binds_loopback_by_default():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert re.search(r"--host TEXT\s+Address to bind \(loopback by default\).\s+\[default:\s+127\.0\.0\.1\]", result.output)
    for option in ("--port", "--workers", "--orchestrate", "--db"):
        assert option in result.output


@pytest.mark.slow
def test_two_workers_share_sessions_and_stop_cleanly(world, db_url):
    proc, url = start(["--workers", "2", "--db", db_url])
    try:
        with httpx.Client(base_url=url) as browser:
            page = browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            response = browser.post("/login", data={"username": "ann", "password": "correct horse",
                                                    "csrf_token": csrf, "next": "/"}, follow_redirects=False)
            assert response.status_code == 303
            cookies = dict(browser.cookies)
        # fresh connections land on either worker: both accept the session
        for _ in range(12):
            with httpx.Client(base_url=url, cookies=cookies) as fresh:
                assert fresh.get("/api/me").json()["name"] == "ann"
        with httpx.Client(base_url=url, headers=world.auth("bob")) as api:
            item = api.post("/api/projects/news/next")
            assert item.status_code == 200
            labelled = api.post(f"/api/projects/news/items/{item.json()['item']['id']}/labels", json={"label": "Tech"})
            assert labelled.status_code == 201
    finally:
        out = stop(proc)
    assert "with 2 worker(s)" in out


@pytest.mark.slow
def test_orchestrate_runs_the_orchestrator_in_process(world, db_url, tmp_path):
    proc, url = start(["--orchestrate", "--db", db_url],
                      env={"LABELLOOP_ORCHESTRATE_INTERVAL": "3600", "LABELLOOP_MODELS_DIR": str(tmp_path / "models")})
    try:
        assert httpx.get(url + "/api/me", headers=world.auth("ann")).status_code == 200
    finally:
        out = stop(proc)
    assert "orchestrator not available yet" not in out
