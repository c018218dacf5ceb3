"""Server fixtures: an app on a fresh database (SQLite and PostgreSQL), users, tokens, items,
an in-process HTTP client and a real Uvicorn server on a free loopback port."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import insert

from labelloop.config import Settings
from labelloop.server import create_app
from labelloop.store import writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

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


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, login_max_failures=3, login_window_seconds=60)


@pytest.fixture
def world(engine, settings) -> World:
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=11)
    tokens, ids = make_users(engine, [("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")])
    add_items(engine, project, 5)
    return World(settings, project, tokens, ids)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """An httpx client speaking to the app in process (lifespan run)."""
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


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
def live_server(world: World) -> Iterator[LiveServer]:
    with LiveServer(world.settings) as server:
        yield server


@pytest.fixture
def tools():
    """The helpers above, for test modules (test folders are not packages)."""
    import types

    return types.SimpleNamespace(
        add_items=add_items, make_users=make_users, LiveServer=LiveServer, TAGS=TAGS, PASSWORD=PASSWORD
    )
