"""Server fixtures: an app on a fresh database (SQLite and PostgreSQL), users, tokens, items,
an in-process HTTP client and a real Uvicorn server on a free loopback port."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from labelloop.config import Settings
from labelloop.server import create_app
from labelloop.server.run import settings_environ
from labelloop.store import writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items, project_members

PASSWORD = "correct horse"
TAGS = ["Sport", "Politics", "Tech"]


@dataclasses.dataclass
class World:
    settings: Settings
    project: store_projects.Project
    tokens: dict[str, str]  # user name -> API token
    ids: dict[str, int]  # user name -> user id

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def add_items(engine, project, n: int, *, target: int = 1, prefix: str = "e") -> None:
    now = datetime.now(UTC)
    with writing(engine) as conn:
        for start in range(0, n, 5000):
            conn.execute(
                insert(items),
                [
                    {
                        "project_id": project.id, "external_id": f"{prefix}{i}",
                        "display": {"title": f"title {i}", "body": f"body of {prefix}{i}"},
                        "text": f"title {i} body", "rand": rand_key(project.seed, f"{prefix}{i}"),
                        "target_labels": target, "created_at": now, "updated_at": now,
                    }
                    for i in range(start, min(n, start + 5000))
                ],
            )


def make_users(engine, names_roles: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, int]]:
    tokens, ids = {}, {}
    with writing(engine) as conn:
        for name, role in names_roles:
            user = store_users.create_user(conn, name=name, role=role, password=PASSWORD)
            ids[name] = user.id
            tokens[name] = store_users.create_token(conn, user_id=user.id)
    return tokens, ids


def add_members(engine, project, names: list[str]) -> None:
    """Make the labellers ``names`` members of ``project`` (labellers see only their projects).
    Written directly, as migration 0004 does, so that the audit log stays the tests' own."""
    now = datetime.now(UTC)
    with writing(engine) as conn:
        for name in names:
            user = store_users.get_user(conn, name=name)
            conn.execute(insert(project_members).values(project_id=project.id, user_id=user.id, created_at=now))


@pytest.fixture
def settings(db_url: str, tmp_path) -> Settings:
    return Settings(database_url=db_url, login_max_failures=3, login_window_seconds=60,
                    models_dir=tmp_path / "models")


@pytest.fixture
def world(engine, settings) -> World:
    """Project "news" (5 items) and users boss (admin), ann and bob (labellers, members of
    "news"). No audit draws, so the serving order is deterministic; tests of audit draws set
    ``audit_fraction`` themselves."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=11,
                                                settings={"audit_fraction": 0.0})
    tokens, ids = make_users(engine, [("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")])
    add_members(engine, project, ["ann", "bob"])
    add_items(engine, project, 5)
    return World(settings, project, tokens, ids)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """An httpx client speaking to the app in process (lifespan run)."""
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


class LiveServer:
    """A real Uvicorn server in a subprocess (the worker app factory), on a free 127.0.0.1 port."""

    def __init__(self, settings: Settings):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **settings_environ(settings)}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "labelloop.server.run:app_from_env",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--no-access-log",
             "--no-proxy-headers"],  # as `labelloop serve`: only the app reads proxy headers
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("the server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def live_server(world: World) -> Iterator[LiveServer]:
    with LiveServer(world.settings) as server:
        yield server


@pytest.fixture
def tools():
    """The helpers above, for test modules (test folders are not packages)."""
    import types

    return types.SimpleNamespace(
        add_items=add_items, make_users=make_users, add_members=add_members, LiveServer=LiveServer, TAGS=TAGS,
        PASSWORD=PASSWORD,
    )
