"""The steered lists' cache (server/steering.py): an old list keeps serving while a new one is
built in the background, and a list with nothing left for the user is built again before the
queue says it is empty (both databases)."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import insert

from labelloop.server import create_app
from labelloop.server import steering
from labelloop.store import projects as store_projects
from labelloop.store import steerqueue, writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items


def add(engine, project, texts, prefix):
    now = datetime.now(UTC)
    with writing(engine) as conn:
        return [conn.execute(insert(items).values(
            project_id=project.id, external_id=f"{prefix}{i}", display={"text": t}, text=t,
            rand=rand_key(project.seed, f"{prefix}{i}"), target_labels=1, created_at=now, updated_at=now,
        ).returning(items.c.id)).scalar_one() for i, t in enumerate(texts)]


def test_an_exhausted_list_is_built_again_before_the_queue_says_empty(engine, settings, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="c", labels=tools.TAGS, seed=3)
    first = add(engine, project, ["refund one", "weather"], "a")
    tokens, _ = tools.make_users(engine, [("lab", "labeller")])
    tools.add_members(engine, project, ["lab"])
    auth = {"Authorization": f"Bearer {tokens['lab']}"}
    url = "/api/projects/c/next?queue=search&q=refund"
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        served = client.post(url, headers=auth).json()["item"]["id"]
        assert served == first[0]
        assert client.post(f"/api/projects/c/items/{served}/labels", json={"label": "Tech"},
                           headers=auth).status_code == 201
        later = add(engine, project, ["refund two"], "b")  # after the list was built (fresh < 5 s)
        answer = client.post(url, headers=auth)
        assert answer.status_code == 200 and answer.json()["item"]["id"] == later[0]
        assert client.post(f"/api/projects/c/items/{later[0]}/labels", json={"label": "Tech"},
                           headers=auth).status_code == 201
        assert client.post(url, headers=auth).status_code == 204


def test_a_due_list_keeps_serving_while_the_new_one_is_built(engine, settings, tools, monkeypatch):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="d", labels=tools.TAGS, seed=3)
    ids = add(engine, project, [f"refund {i}" for i in range(4)], "a")
    tokens, _ = tools.make_users(engine, [("x", "labeller"), ("y", "labeller")])
    tools.add_members(engine, project, ["x", "y"])
    url = "/api/projects/d/next?queue=search&q=refund"
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        first = client.post(url, headers={"Authorization": f"Bearer {tokens['x']}"}).json()["item"]["id"]
        lists = client.app.state.steer_lists
        (key, entry), = lists._lists.items()
        built = []
        real_build = steering.build_order

        def slow_build(conn, **kw):  # the background build, made slow and counted
            built.append(time.monotonic())
            time.sleep(0.5)
            return real_build(conn, **kw)

        monkeypatch.setattr(steering, "build_order", slow_build)
        entry.built_at -= steering.CACHE_SECONDS + 1  # due
        started = time.monotonic()
        second = client.post(url, headers={"Authorization": f"Bearer {tokens['y']}"}).json()["item"]["id"]
        assert time.monotonic() - started < 0.5  # served from the old list, not after the build
        assert {first, second} <= set(ids) and first != second
        deadline = time.monotonic() + 10
        while lists._lists[key] is entry and time.monotonic() < deadline:
            client.get("/healthz")  # let the event loop finish the background build
            time.sleep(0.05)
        assert len(built) == 1 and lists._lists[key] is not entry


def test_due_rules():
    source = steerqueue.Source([1, 2], [1, 2], {})
    fresh = steering._List(source, 7, deque([1, 2]), more=False)
    assert not fresh.due(7)
    assert fresh.due(8)  # a newer run
    low = steering._List(source, 7, deque([1]), more=True)
    assert not low.due(7)  # low, but built less than half a second ago
    low.built_at -= 2
    assert low.due(7)
    low.more = False  # nothing more to find: no rebuild for running low
    assert not low.due(7)
    fresh.built_at -= steering.CACHE_SECONDS + 1
    assert fresh.due(7)


def test_a_list_whose_head_is_all_labelled_reads_further(engine, settings, tools, monkeypatch):
    """The list keeps labelled items (the audit rule needs every rank): when its first
    SOURCE_LIMIT ids are all done, the queue reads further instead of saying it is empty."""
    monkeypatch.setattr(steering, "SOURCE_LIMIT", 2)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="e", labels=tools.TAGS, seed=3)
    ids = add(engine, project, [f"refund {i}" for i in range(7)], "a")
    tokens, _ = tools.make_users(engine, [("lab", "labeller")])
    tools.add_members(engine, project, ["lab"])
    auth = {"Authorization": f"Bearer {tokens['lab']}"}
    got = []
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        while (answer := client.post("/api/projects/e/next?queue=search&q=refund", headers=auth)).status_code == 200:
            got.append(answer.json()["item"]["id"])
            assert client.post(f"/api/projects/e/items/{got[-1]}/labels", json={"label": "Tech"},
                               headers=auth).status_code == 201
    assert answer.status_code == 204 and sorted(got) == ids
