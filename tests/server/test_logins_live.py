"""Logins against a real `labelloop serve` (two worker processes): guesses sent all at once are
limited before any password is hashed, and the proxy headers are believed from trusted proxies
only (Uvicorn itself must not believe them)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from labelloop.server.run import settings_environ
from labelloop.store import reading
from labelloop.store import logins as store_logins

LABELLOOP = str(Path(sys.executable).parent / "labelloop")
PASSWORD = "correct horse"  # as in conftest


@contextmanager
def serving(settings, **env: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [LABELLOOP, "serve", "--port", str(port), "--workers", "2"],
        env={**os.environ, **settings_environ(settings), "LABELLOOP_LOG_LEVEL": "WARNING", **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def login_form(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> tuple[str, httpx.Response]:
    page = client.get(url + "/login", headers=headers)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1), page


def failures(engine, name: str, client: str | None = None) -> int:
    with reading(engine) as conn:
        return store_logins.count_failures(conn, name=name, client=client)


def test_guesses_sent_all_at_once_check_at_most_the_limit(world, engine):
    """100 wrong passwords for one name from one address, sent at once over 100 connections
    to two workers: at most ``login_max_failures`` (3) are checked, the others get 429."""
    guesses = 100
    with serving(world.settings) as url:
        with httpx.Client(timeout=30) as first:
            token, _ = login_form(first, url)
            cookie = first.cookies["labelloop_session"]
        clients = [httpx.Client(cookies={"labelloop_session": cookie}, timeout=60) for _ in range(guesses)]
        for client in clients:  # connected beforehand, so the guesses leave together
            assert client.get(url + "/healthz").status_code == 200
        start = threading.Barrier(guesses)
        statuses: list[int] = []

        def guess(client: httpx.Client, i: int) -> None:
            start.wait()
            response = client.post(url + "/login", data={"username": "ann", "password": f"guess {i:03d}",
                                                         "csrf_token": token})
            statuses.append(response.status_code)

        threads = [threading.Thread(target=guess, args=(c, i)) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for client in clients:
            client.close()
    counted = Counter(statuses)
    assert sum(counted.values()) == guesses
    assert counted[401] <= 3 and counted[401] + counted[429] == guesses, counted  # 401: a password was checked
    assert failures(engine, "ann") == counted[401] == 3  # every check left its failure, and only those


def test_proxy_headers_are_believed_from_trusted_proxies_only(world, engine):
    """The server runs with LABELLOOP_TRUSTED_PROXIES=127.0.0.1; a second loopback address,
    127.0.0.2, is a peer that is no proxy of ours."""
    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    with serving(world.settings, LABELLOOP_TRUSTED_PROXIES="127.0.0.1") as url:
        stranger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
        proxy = httpx.Client(timeout=30)
        with stranger, proxy:
            token, page = login_form(stranger, url, forwarded)
            assert "secure" not in page.headers["set-cookie"].lower()
            answer = stranger.post(url + "/login", headers=forwarded,
                                   data={"username": "ann", "password": "bad password", "csrf_token": token})
            assert answer.status_code == 401
            assert failures(engine, "ann", "127.0.0.2") == 1 and failures(engine, "ann", "198.51.100.7") == 0

            token, page = login_form(proxy, url, forwarded)
            assert "; secure" in page.headers["set-cookie"].lower()
            session = {"Cookie": page.headers["set-cookie"].split(";")[0]}  # the jar keeps it for https
            answer = proxy.post(url + "/login", headers={**forwarded, **session},
                                data={"username": "ann", "password": "bad password", "csrf_token": token})
            assert answer.status_code == 401
            assert failures(engine, "ann", "198.51.100.7") == 1 and failures(engine, "ann", "127.0.0.1") == 0
            # plain HTTP from the proxy's own address (a health check, a tunnel): not Secure
            _, page = login_form(proxy, url)
            assert "secure" not in page.headers["set-cookie"].lower()
