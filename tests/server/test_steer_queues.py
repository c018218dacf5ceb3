"""Steered queues on POST /api/projects/{p}/next (issue 13): parameters, refusals, leases,
overlap, the audit flag, the steering setting, multi-label projects (both databases)."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from labelloop.server import create_app
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.schema import assignments, items

API = "/api/projects/news"


def set_setting(engine, world, **values):
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=world.project.id, values=values)


@pytest.fixture
def app_client(world, engine):
    set_setting(engine, world, audit_fraction=1.0)  # every default claim would be an audit draw
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        yield client


def rows(engine):
    with reading(engine) as conn:
        return conn.execute(select(assignments.c.item_id, assignments.c.user_id, assignments.c.state,
                                   assignments.c.is_audit, assignments.c.steered).order_by(assignments.c.id)).all()


def test_random_queue_serves_steered_never_audit_and_renews(app_client, world, engine):
    first = app_client.post(f"{API}/next?queue=random", headers=world.auth("ann"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["queue"] == {"name": "random", "label": "random"}
    assert first.headers["X-Labelloop-Queue"] == "random"
    again = app_client.post(f"{API}/next?queue=random", headers=world.auth("ann"))
    assert again.json()["item"]["id"] == body["item"]["id"]  # the same item while the lease lives
    (row,) = rows(engine)
    assert row.steered and not row.is_audit and row.state == "leased"
    item_id = body["item"]["id"]
    assert app_client.post(f"{API}/items/{item_id}/labels", json={"label": "Tech"},
                           headers=world.auth("ann")).status_code == 201
    seen = {item_id}
    while True:
        got = app_client.post(f"{API}/next?queue=random", headers=world.auth("ann"))
        if got.status_code == 204:
            assert got.headers["X-Labelloop-Queue"] == "random"  # says which queue is empty
            break
        assert got.status_code == 200
        new = got.json()["item"]["id"]
        assert new not in seen  # never the same item twice
        seen.add(new)
        assert app_client.post(f"{API}/items/{new}/labels", json={"label": "Sport"},
                               headers=world.auth("ann")).status_code == 201
    assert len(seen) == 5
    assert all(r.steered and not r.is_audit and r.state == "labelled" for r in rows(engine))


def test_random_queue_follows_the_seeded_random_order(app_client, world, engine):
    with reading(engine) as conn:
        order = conn.execute(select(items.c.id).order_by(items.c.rand, items.c.id)).scalars().all()
    got = app_client.post(f"{API}/next?queue=random", headers=world.auth("ann")).json()["item"]["id"]
    other = app_client.post(f"{API}/next?queue=random", headers=world.auth("bob")).json()["item"]["id"]
    assert [got, other] == order[:2]


@pytest.mark.parametrize("query, message", [
    ("queue=nope", "unknown queue 'nope'"),
    ("queue=search", "queue=search needs q"),
    ("queue=search&q=%20", "queue=search needs q"),
    ("queue=similar", "queue=similar needs item"),
    ("queue=similar&item=abc", "item must be an item's id"),
    ("queue=similar&item=999999", "item 999999 is not an item of project 'news'"),
    ("queue=likely", "queue=likely needs tag"),
    ("queue=unsure&tag=Nope", "unknown tag 'Nope' in project 'news'"),
    ("q=hello", "q needs a queue"),
    ("queue=random&tag=Tech", "tag does not apply to queue=random"),
    ("queue=search&q=x&tag=Tech", "tag does not apply to queue=search"),
])
def test_bad_steering_parameters_are_422(app_client, world, engine, query, message):
    response = app_client.post(f"{API}/next?{query}", headers=world.auth("ann"))
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert rows(engine) == []  # nothing leased


def test_steering_off_is_403_for_labellers_but_admins_may_steer(world, engine):
    set_setting(engine, world, steering=False)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        refused = client.post(f"{API}/next?queue=random", headers=world.auth("ann"))
        assert refused.status_code == 403
        assert "steering is off in project 'news'" in refused.json()["detail"]
        assert "--steering on" in refused.json()["detail"]
        assert client.post(f"{API}/next", headers=world.auth("ann")).status_code == 200  # the default queue
        assert client.post(f"{API}/next?queue=random", headers=world.auth("boss")).status_code == 200
    set_setting(engine, world, steering=True)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        assert client.post(f"{API}/next?queue=random", headers=world.auth("bob")).status_code == 200


def test_switching_queues_gives_the_held_lease_back(app_client, world, engine):
    assert app_client.post(f"{API}/next", headers=world.auth("ann")).status_code == 200
    (row,) = rows(engine)
    assert row.is_audit and not row.steered  # the default queue's audit draw
    steered = app_client.post(f"{API}/next?queue=random", headers=world.auth("ann")).json()["item"]["id"]
    mine = [r for r in rows(engine) if r.state == "leased"]
    assert len(mine) == 1 and mine[0].item_id == steered and mine[0].steered and not mine[0].is_audit
    # Without parameters: exactly today's next (the lease held is renewed, steered or not).
    assert app_client.post(f"{API}/next", headers=world.auth("ann")).json()["item"]["id"] == steered
    # queue=default gives a steered lease back and serves from the default queue.
    back = app_client.post(f"{API}/next?queue=default", headers=world.auth("ann"))
    assert back.status_code == 200 and back.json()["queue"]["name"] == "default"
    leased = [r for r in rows(engine) if r.state == "leased"]
    assert len(leased) == 1 and not leased[0].steered


def test_overlap_holds_in_a_steered_queue(world, engine):
    with writing(engine) as conn:
        conn.execute(update(items).values(target_labels=2))
    set_setting(engine, world, audit_fraction=0.0)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        held = {name: client.post(f"{API}/next?queue=random", headers=world.auth(name)).json()["item"]["id"]
                for name in ("ann", "bob", "boss")}
        with reading(engine) as conn:
            holders = Counter(conn.execute(select(assignments.c.item_id)).scalars())
        assert max(holders.values()) <= 2  # never more labellers at once than the item needs
        for name in ("ann", "bob", "boss"):  # each labels everything the queue gives them
            item_id = held[name]
            while True:
                assert client.post(f"{API}/items/{item_id}/labels", json={"label": "Tech"},
                                   headers=world.auth(name)).status_code == 201
                got = client.post(f"{API}/next?queue=random", headers=world.auth(name))
                if got.status_code == 204:
                    break
                item_id = got.json()["item"]["id"]
    with reading(engine) as conn:
        done = conn.execute(select(items.c.n_labels)).scalars().all()
        pairs = conn.execute(select(assignments.c.item_id, assignments.c.user_id)).all()
    assert done == [2] * 5  # every item got exactly its two labels
    assert len(pairs) == len(set(pairs)) == 10  # by two different people


def test_a_session_user_steers_with_csrf(world, engine, app_client):
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', app_client.get("/login").text).group(1)
    app_client.post("/login", data={"username": "bob", "password": "correct horse", "csrf_token": csrf, "next": "/"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', app_client.get("/login").text).group(1)
    assert app_client.post(f"{API}/next?queue=random").status_code == 403  # no CSRF token
    got = app_client.post(f"{API}/next?queue=random", headers={"X-CSRF-Token": csrf})
    assert got.status_code == 200 and got.json()["queue"]["name"] == "random"


def test_multi_label_project_in_a_steered_queue(engine, settings, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="sets", labels=["a", "b", "c"], seed=4, multi_label=True,
                                                settings={"audit_fraction": 1.0})
    tools.add_items(engine, project, 3)
    tokens, _ids = tools.make_users(engine, [("lab", "labeller")])
    tools.add_members(engine, project, ["lab"])
    auth = {"Authorization": f"Bearer {tokens['lab']}"}
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        got = client.post("/api/projects/sets/next?queue=random", headers=auth)
        assert got.status_code == 200 and got.json()["multi_label"] is True
        item_id = got.json()["item"]["id"]
        assert client.post(f"/api/projects/sets/items/{item_id}/labels", json={"labels": ["a", "c"]},
                           headers=auth).status_code == 201
        assert client.post("/api/projects/sets/next?queue=likely&tag=zz", headers=auth).status_code == 422
    assert all(r.steered and not r.is_audit for r in rows(engine))


def test_16_labellers_in_one_random_queue_never_share_an_item(engine, settings, tools):
    run_concurrent(engine, settings, tools, "queue=random")


def run_concurrent(engine, settings, tools, query: str, n_items: int = 300, n_clients: int = 16,
                   prefix: str = "e") -> None:
    """16 labellers over real HTTP in the same steered queue: no item handed out twice."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="big", labels=tools.TAGS, seed=3,
                                                settings={"audit_fraction": 0.5})
    tools.add_items(engine, project, n_items, prefix=prefix)
    tokens, _ids = tools.make_users(engine, [(f"l{i:02d}", "labeller") for i in range(n_clients)])
    tools.add_members(engine, project, list(tokens))
    served: dict[str, list[int]] = {name: [] for name in tokens}
    errors: list[str] = []
    start = threading.Barrier(n_clients)

    def labeller(name: str, base: str) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=60) as http:
            start.wait()
            while True:
                response = http.post(f"/api/projects/big/next?{query}")
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    errors.append(f"{name} next: {response.status_code} {response.text}")
                    return
                item_id = response.json()["item"]["id"]
                served[name].append(item_id)
                labelled = http.post(f"/api/projects/big/items/{item_id}/labels", json={"label": "Tech"})
                if labelled.status_code != 201:
                    errors.append(f"{name} label {item_id}: {labelled.status_code} {labelled.text}")
                    return

    with tools.LiveServer(settings) as server:
        threads = [threading.Thread(target=labeller, args=(name, server.url)) for name in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert not errors, errors[:5]
    every = [i for got in served.values() for i in got]
    assert every and len(every) == len(set(every))  # nobody got an item somebody else got
    assert sum(1 for got in served.values() if got) > 1
    history = rows(engine)
    assert Counter(r.item_id for r in history).most_common(1)[0][1] == 1
    assert all(r.steered and not r.is_audit and r.state == "labelled" for r in history)
    return every


def test_16_labellers_in_one_search_queue_never_share_an_item(engine, settings, tools):
    every = run_concurrent(engine, settings, tools, "queue=search&q=body", n_items=300)
    assert len(every) == 300  # every match served once (all 300 items match "body")


def add_texts(engine, project, texts: list[str]) -> list[int]:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from labelloop.store.items import rand_key

    now = datetime.now(UTC)
    with writing(engine) as conn:
        for i, text in enumerate(texts):
            conn.execute(insert(items).values(
                project_id=project.id, external_id=f"t{i}", display={"text": text}, text=text,
                rand=rand_key(project.seed, f"t{i}"), target_labels=1, created_at=now, updated_at=now))
        return conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                            .order_by(items.c.id)).scalars().all()


def test_search_queue_serves_only_matches_and_says_so(engine, settings, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="s", labels=tools.TAGS, seed=2,
                                                settings={"audit_fraction": 1.0})
    texts = ["refund my money", "the weather today", "refund refund please", "cats and dogs", "a refund?"]
    ids = add_texts(engine, project, texts)
    tokens, _ = tools.make_users(engine, [("lab", "labeller")])
    tools.add_members(engine, project, ["lab"])
    auth = {"Authorization": f"Bearer {tokens['lab']}"}
    matches = {ids[0], ids[2], ids[4]}
    got = []
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        assert client.post("/api/projects/s/next?queue=search&q=%22refund", headers=auth).status_code == 422
        while True:
            answer = client.post("/api/projects/s/next?queue=search&q=refund", headers=auth)
            if answer.status_code == 204:
                assert answer.headers["X-Labelloop-Queue"] == "search"
                break
            assert answer.json()["queue"] == {"name": "search", "label": 'search "refund"'}
            got.append(answer.json()["item"]["id"])
            assert client.post(f"/api/projects/s/items/{got[-1]}/labels", json={"label": "Tech"},
                               headers=auth).status_code == 201
        assert set(got) == matches and len(got) == 3
        # The default queue still serves the rest, as audit draws (fraction 1): untouched by steering.
        rest = client.post("/api/projects/s/next", headers=auth).json()["item"]["id"]
        assert rest not in matches
    flags = {r.item_id: (r.steered, r.is_audit) for r in rows(engine)}
    assert all(flags[i] == (True, False) for i in matches) and flags[rest] == (False, True)


def test_steered_leases_expire_back_to_the_queue_and_renew(world, engine):
    from datetime import timedelta

    from labelloop.store import labelling as store_labelling
    from labelloop.store import steerqueue as steer
    from labelloop.store.schema import utcnow

    project, ann, bob = world.project, world.ids["ann"], world.ids["bob"]
    t0 = utcnow()
    with writing(engine) as conn:
        order = steer.random_order(conn, project=project, limit=10, now=t0)
        first = steer.claim_steered(conn, project=project, user_id=ann, item_ids=order, lease_seconds=30, now=t0)
    assert first.lease is not None and first.lease.item_id == order[0]
    with writing(engine) as conn:  # held: bob gets the next one
        other = steer.claim_steered(conn, project=project, user_id=bob, item_ids=order, lease_seconds=30,
                                    now=t0 + timedelta(seconds=10))
    assert other.lease.item_id == order[1]
    with writing(engine) as conn:  # ann renews hers: still held past its first expiry
        store_labelling.renew_lease(conn, project=project, user_id=ann, item_id=order[0], lease_seconds=30,
                                    now=t0 + timedelta(seconds=20))
        held = steer.claim_steered(conn, project=project, user_id=bob, item_ids=[order[0]], lease_seconds=30,
                                   now=t0 + timedelta(seconds=40))
    assert held.lease is None
    with writing(engine) as conn:  # expired: the item goes to someone else, steered, not audit
        boss = world.ids["boss"]
        late = steer.claim_steered(conn, project=project, user_id=boss, item_ids=[order[0]], lease_seconds=30,
                                   now=t0 + timedelta(seconds=60))
    assert late.lease is not None and late.lease.item_id == order[0]
    assert {(r.item_id, r.user_id): (r.steered, r.is_audit) for r in rows(engine)}[(order[0], boss)] == (True, False)
