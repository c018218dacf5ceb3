"""Browser-test fixtures: Debian's Chromium through Playwright, and a real Uvicorn server.

Never ``playwright install``: the tests use ``/usr/bin/chromium``. Without it they skip with a
loud reason locally and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from labelloop.config import Settings
from labelloop.server import create_app

CHROMIUM = Path(os.environ.get("LABELLOOP_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def _missing(reason: str) -> None:
    message = f"SKIPPING BROWSER TESTS: {reason}. Install Debian's chromium (`make browser`)."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true requires the browser tests: " + message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium shared by the session's browser tests (each test opens its own contexts)."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class LiveServer:
    """A real Uvicorn server in a thread, on a free 127.0.0.1 port."""

    def __init__(self, settings: Settings):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        assert httpx.get(self.url + "/healthz").status_code == 200
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture
def live_server_class() -> type[LiveServer]:
    """:class:`LiveServer`, for test modules (test folders are not packages)."""
    return LiveServer
