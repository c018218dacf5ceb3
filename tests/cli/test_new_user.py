"""What a new user meets first, on both databases: `serve` on a database without users says
how to create one; `configure` shows the effective value of a setting left to the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from labelloop.cli import main

LABELLOOP = str(Path(sys.executable).parent / "labelloop")
HINT = ("no users yet, so no one can log in: create an admin with `labelloop user add NAME --role admin` "
        "(it prints a password once)")


def run(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args], catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_output(db_url: str) -> str:
    """Start `labelloop serve`, wait until it answers, stop it; its stderr until then."""
    port = free_port()
    proc = subprocess.Popen([LABELLOOP, "serve", "--port", str(port), "--db", db_url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "LABELLOOP_LOG_LEVEL": "WARNING"})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    return out


def test_serve_without_users_says_how_to_create_one(db_url):
    first = serve_output(db_url).splitlines()
    assert first[0] == HINT, first
    assert first[1].startswith("serving on http://127.0.0.1:")
    assert run("user", "add", "admin", "--role", "admin", "--db", db_url).exit_code == 0
    assert HINT not in serve_output(db_url)


def test_configure_shows_where_an_effective_value_comes_from(db_url):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    shown = run("configure", "p", "--db", db_url, env={"LABELLOOP_LEASE_SECONDS": "900"})
    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[0] == "lease_seconds: 900 (from LABELLOOP_LEASE_SECONDS)"
    default = run("configure", "p", "--db", db_url, env={"LABELLOOP_LEASE_SECONDS": None})
    assert default.stdout.splitlines()[0] == "lease_seconds: 600 (from LABELLOOP_LEASE_SECONDS)"
    changed = run("configure", "p", "--lease-seconds", "120", "--db", db_url, env={"LABELLOOP_LEASE_SECONDS": "900"})
    assert changed.stdout == "lease_seconds: 900 (from LABELLOOP_LEASE_SECONDS) -> 120\n"
    assert run("configure", "p", "--db", db_url).stdout.splitlines()[0] == "lease_seconds: 120"
