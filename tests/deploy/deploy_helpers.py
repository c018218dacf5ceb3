"""Helpers of the deployment tests: real `labelloop serve` / `labelloop orchestrate` processes
that can be stopped (SIGTERM) or killed (SIGKILL, the whole process group, as a container
kill would), simulated labellers on threads (httpx, bearer tokens) that record every answer,
and the database checks the fault tests share.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select

from labelloop.store import reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items

LABELLOOP = str(Path(sys.executable).parent / "labelloop")
TAGS = ["World", "Sport", "Tech"]
WORDS = ("market election match vote goal shares phone team minister growth chip league court "
         "bank player software union price final policy").split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], *, timeout: float, every: float = 0.1, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# ---- the project ------------------------------------------------------------------------------
@dataclasses.dataclass
class Team:
    engine: Engine
    project: store_projects.Project
    tokens: list[str]
    user_ids: list[int]


def make_team(engine: Engine, *, n_items: int, n_labellers: int, settings: dict[str, Any] | None = None,
              name: str = "news") -> Team:
    """A project of ``n_items`` short texts (random words) and ``n_labellers`` labellers (its
    members) with tokens."""
    now = datetime.now(UTC)
    rng = random.Random(3)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name=name, labels=TAGS, seed=5,
                                                settings={"audit_fraction": 0.0, **(settings or {})})
        for start in range(0, n_items, 5000):
            rows = []
            for i in range(start, min(n_items, start + 5000)):
                title = " ".join(rng.choices(WORDS, k=4))
                body = " ".join(rng.choices(WORDS, k=20))
                rows.append({"project_id": project.id, "external_id": f"e{i}", "display": {"title": title, "body": body},
                             "text": f"{title}\n{body}", "rand": rand_key(project.seed, f"e{i}"),
                             "created_at": now, "updated_at": now})
            conn.execute(insert(items), rows)
        tokens, ids = [], []
        for i in range(n_labellers):
            user = store_users.create_user(conn, name=f"labeller{i:02d}", role="labeller", password="a long password")
            store_members.add_member(conn, project=name, user=user.name, actor_id=None)  # else they see nothing
            ids.append(user.id)
            tokens.append(store_users.create_token(conn, user_id=user.id))
    return Team(engine, project, tokens, ids)


# ---- processes --------------------------------------------------------------------------------
class Proc:
    """A labelloop command in its own process group, its output in a log file."""

    def __init__(self, args: list[str], *, log: Path, env: dict[str, str] | None = None):
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in wait)
        self.proc = subprocess.Popen([LABELLOOP, *args], stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (a multi-worker server's workers too), as a container kill would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait(30)

    def terminate(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(db_url: str, log: Path, *, workers: int = 2, port: int | None = None,
                 env: dict[str, str] | None = None, args: list[str] | None = None) -> tuple[Proc, str]:
    port = port or free_port()
    proc = Proc(["serve", "--port", str(port), "--workers", str(workers), *(args or []), "--db", db_url], log=log,
                env={"LABELLOOP_SECRET_KEY": "", **(env or {})})
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.alive(), "the server ended: " + proc.output()[-3000:]
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=90, what="the server to answer /healthz")
    return proc, url


def start_orchestrator(db_url: str, log: Path, models: Path, *args: str) -> Proc:
    return Proc(["orchestrate", "news", *args, "--db", db_url], log=log, env={"LABELLOOP_MODELS_DIR": str(models)})


# ---- labellers --------------------------------------------------------------------------------
@dataclasses.dataclass
class Answer:
    kind: str  # "next" or "label"
    status: int
    item_id: int | None
    valid: bool  # the body is what that status promises
    at: float  # time.monotonic() when it arrived


class Labeller(threading.Thread):
    """Asks for the next item and labels it (tag chosen from the item id), until ``stop`` is set
    or, with ``until_down``, until the server stops answering. Records every answer; a request
    that got no answer (connection refused or dropped) is counted in ``unanswered``."""

    def __init__(self, url: str, token: str, user_id: int, stop: threading.Event, *, until_down: bool = False,
                 pause: float = 0.0):
        super().__init__(daemon=True)
        self.url, self.token, self.user_id, self.stop_event = url, token, user_id, stop
        self.until_down = until_down
        self.pause = pause
        self.answers: list[Answer] = []
        self.acked: list[tuple[int, str]] = []  # (item id, tag) answered 201
        self.unanswered = 0
        self.errors: list[str] = []

    def run(self) -> None:
        prefix = "/api/projects/news"
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120) as c:
            while not self.stop_event.is_set():
                try:
                    got = c.post(prefix + "/next")
                    item = self._record("next", got)
                    if got.status_code == 204:
                        time.sleep(0.2)
                        continue
                    if item is None:
                        continue
                    tag = TAGS[item % len(TAGS)]
                    done = c.post(f"{prefix}/items/{item}/labels", json={"label": tag})
                    self._record("label", done, item)
                    if done.status_code == 201:
                        self.acked.append((item, tag))
                except httpx.TransportError as exc:
                    self.unanswered += 1
                    if self.until_down:
                        return
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.2)
                if self.pause:
                    time.sleep(self.pause)

    def _record(self, kind: str, response: httpx.Response, item: int | None = None) -> int | None:
        valid = False
        try:
            body = response.json() if response.content else None
            if kind == "next" and response.status_code == 200:
                item = int(body["item"]["id"])
                valid = isinstance(body["item"]["display"], dict) and bool(body["lease"]["expires_at"])
            elif kind == "next" and response.status_code == 204:
                valid = not response.content
            elif kind == "label" and response.status_code == 201:
                valid = body == {"item_id": item, "label": TAGS[item % len(TAGS)]}
            else:
                valid = isinstance(body, dict) and "detail" in body
        except (ValueError, KeyError, TypeError):
            valid = False
        self.answers.append(Answer(kind, response.status_code, item, valid, time.monotonic()))
        return item if kind == "next" and response.status_code == 200 and valid else None


def run_labellers(labellers: list[Labeller]) -> None:
    for labeller in labellers:
        labeller.start()


def join_labellers(labellers: list[Labeller], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for labeller in labellers:
        labeller.join(max(0.1, deadline - time.monotonic()))
        assert not labeller.is_alive(), "a labeller hung"


# ---- database checks --------------------------------------------------------------------------
def missing_acks(engine: Engine, project_id: int, labellers: list[Labeller]) -> list[tuple[int, int, str]]:
    """(user, item, tag) of every 201 answer that has no such annotation in the database."""
    with reading(engine) as conn:
        tag_ids = {t.name: t.id for t in store_projects.get_project_by_id(conn, project_id=project_id).tags}
        stored = {tuple(row) for row in conn.execute(
            select(annotations.c.user_id, annotations.c.item_id, annotations.c.tag_id)
            .where(annotations.c.project_id == project_id)
        )}
    return [(lb.user_id, item, tag) for lb in labellers for item, tag in lb.acked
            if (lb.user_id, item, tag_ids[tag]) not in stored]


def overlapping_leases(engine: Engine, project_id: int) -> list[tuple[int, int, int]]:
    """(item, user a, user b) wherever two labellers held one item at the same time.

    A lease runs from ``leased_at`` to ``finished_at`` (labelled or skipped) or, while still
    leased, to ``expires_at``."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(assignments.c.item_id, assignments.c.user_id, assignments.c.state, assignments.c.leased_at,
                   assignments.c.expires_at, assignments.c.finished_at)
            .where(assignments.c.project_id == project_id).order_by(assignments.c.item_id, assignments.c.leased_at)
        ).all()
    by_item: dict[int, list[tuple[Any, Any, int]]] = {}
    for item, user, state, leased, expires, finished in rows:
        end = expires if state == "leased" else finished
        by_item.setdefault(item, []).append((leased, end, user))
    clashes = []
    for item, spans in by_item.items():
        for i, (start_a, end_a, user_a) in enumerate(spans):
            for start_b, end_b, user_b in spans[i + 1:]:
                if user_a != user_b and start_b < end_a and start_a < end_b:
                    clashes.append((item, user_a, user_b))
    return clashes


def bad_answers(labellers: list[Labeller], allowed: set[int]) -> list[tuple[str, int, bool]]:
    return [(a.kind, a.status, a.valid) for lb in labellers for a in lb.answers
            if a.status not in allowed or not a.valid]
