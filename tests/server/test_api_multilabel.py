"""The JSON API on a multi-label project (both databases): sets stored exactly as sent, the
empty set as "none applies", the wrong body shape refused with the same words on the cookie
routes and on the bearer fast path, unknown tags, undo, stats per tag, and 16 labellers at once
against a real Uvicorn server."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.schema import annotations, assignments, items

ML = "/api/projects/debtags"
TAGS = ["Games", "Science", "Audio", "Video", "Network"]
BIT = {t: i for i, t in enumerate(TAGS)}  # bits are given in order at creation


def mask(names) -> int:
    return sum(1 << BIT[n] for n in set(names))


@pytest.fixture
def ml(world, engine, tools):
    """World's users, and project "debtags" (multi-label, 6 items) with ann and bob as members."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="debtags", labels=TAGS, seed=5, multi_label=True,
                                                settings={"audit_fraction": 0.0})
    tools.add_items(engine, project, 6, prefix="d")
    tools.add_members(engine, project, ["ann", "bob"])
    return project


def stored(engine, project_id: int, user_id: int | None = None) -> dict[int, int]:
    """item id -> tag_mask of the human annotations (of ``user_id``)."""
    query = select(annotations.c.item_id, annotations.c.tag_mask, annotations.c.tag_id).where(
        annotations.c.project_id == project_id)
    if user_id is not None:
        query = query.where(annotations.c.user_id == user_id)
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    assert all(r.tag_id is None for r in rows)
    return {r.item_id: r.tag_mask for r in rows}


def test_sets_are_stored_exactly_as_sent_and_empty_is_none(client, world, ml, engine):
    auth = world.auth("ann")
    sent = [["Science", "Games"], [], ["Network"], ["Audio", "Video", "Games", "Science", "Network"]]
    got = {}
    for labels in sent:
        nxt = client.post(f"{ML}/next", headers=auth)
        assert nxt.status_code == 200 and nxt.json()["multi_label"] is True
        item_id = nxt.json()["item"]["id"]
        created = client.post(f"{ML}/items/{item_id}/labels", json={"labels": labels}, headers=auth)
        assert created.status_code == 201, created.text
        assert created.json() == {"item_id": item_id, "labels": labels}
        got[item_id] = labels
    assert stored(engine, ml.id) == {i: mask(labels) for i, labels in got.items()}
    with reading(engine) as conn:
        final = dict(conn.execute(select(items.c.id, items.c.label_mask).where(items.c.id.in_(got))).all())
    assert final == {i: mask(labels) for i, labels in got.items()}  # one labeller: the set is final
    stats = client.get(f"{ML}/stats", headers=auth).json()
    assert stats["labelled"] == 4 and stats["remaining"] == 2 and stats["yours_total"] == 4
    assert stats["per_tag"] == {"Games": 2, "Science": 2, "Audio": 1, "Video": 1, "Network": 2}
    overview = {p["name"]: p for p in client.get("/api/projects", headers=auth).json()}
    assert overview["debtags"] == {"name": "debtags", "tags": TAGS, "items": 6, "labelled": 4, "remaining": 2}
    # single-label answers are unchanged: no multi_label key
    assert set(client.post("/api/projects/news/next", headers=auth).json()) == {"item", "lease"}


def test_undo_a_set(client, world, ml, engine):
    auth = world.auth("bob")
    item_id = client.post(f"{ML}/next", headers=auth).json()["item"]["id"]
    assert client.post(f"{ML}/items/{item_id}/labels", json={"labels": ["Audio"]}, headers=auth).status_code == 201
    undone = client.post(f"{ML}/undo", headers=auth)
    assert undone.status_code == 200 and undone.json()["undone"] == "label"
    assert undone.json()["item"]["id"] == item_id and undone.json()["multi_label"] is True
    assert stored(engine, ml.id) == {}
    assert client.post(f"{ML}/items/{item_id}/labels", json={"labels": []}, headers=auth).status_code == 201
    assert stored(engine, ml.id) == {item_id: 0}


def _log_in(client, name: str) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": name, "password": "correct horse", "csrf_token": csrf, "next": "/"})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


MULTI_WORDS = "project 'debtags' is multi-label: send {\"labels\": [...]} (an empty list: none applies)"
SINGLE_WORDS = "project 'news' is single-label: send {\"label\": \"<one of its tags>\"}"


def test_wrong_shapes_422_alike_on_cookie_and_bearer_paths(client, world, ml, engine):
    csrf = _log_in(client, "bob")
    cookies = dict(client.cookies)
    via = {"bearer": world.auth("ann"), "session": {"X-CSRF-Token": csrf}}

    def call(kind, path, **kwargs):
        client.cookies.clear()
        if kind == "session":
            for name, value in cookies.items():
                client.cookies.set(name, value)
        return client.post(path, headers={**via[kind], **kwargs.pop("headers", {})}, **kwargs)

    answers: dict[str, list] = {}
    for kind in via:
        before = stored(engine, ml.id)
        ml_item = call(kind, f"{ML}/next").json()["item"]["id"]
        news_item = call(kind, "/api/projects/news/next").json()["item"]["id"]
        url, news_url = f"{ML}/items/{ml_item}/labels", f"/api/projects/news/items/{news_item}/labels"
        cases = [
            (url, {"label": "Games"}, MULTI_WORDS),
            (url, {}, MULTI_WORDS),
            (url, {"labels": None}, MULTI_WORDS),
            (url, {"label": "Games", "labels": ["Games"]}, MULTI_WORDS),
            (url, {"labels": ["Games", "Nope"]}, "unknown tag 'Nope'"),
            (url, {"labels": "Games"}, None),  # not a list: pydantic's words
            (url, {"labels": ["Games", ""]}, None),
            (url, {"labels": ["Games"], "x": 1}, None),
            (news_url, {"labels": ["Sport"]}, SINGLE_WORDS),
            (news_url, {"labels": []}, SINGLE_WORDS),
            (news_url, {}, SINGLE_WORDS),
            (news_url, {"label": "Sport", "labels": []}, SINGLE_WORDS),
        ]
        answers[kind] = []
        for path, body, words in cases:
            response = call(kind, path, json=body)
            assert response.status_code == 422, (kind, body, response.text)
            detail = response.json()["detail"]
            if words is not None:
                assert words in detail, (kind, body, detail)
            answers[kind].append(detail)
        assert stored(engine, ml.id) == before  # nothing written
        ok = call(kind, url, json={"labels": ["Video", "Audio"]})
        assert ok.status_code == 201 and ok.json() == {"item_id": ml_item, "labels": ["Video", "Audio"]}
        assert call(kind, news_url, json={"label": "Sport"}).json() == {"item_id": news_item, "label": "Sport"}
        again = call(kind, url, json={"labels": ["Video"]})
        assert again.status_code == 409 and "already" in again.json()["detail"]
    assert answers["bearer"] == answers["session"]


N_ITEMS = 480
N_CLIENTS = 16


def expected_set(item_id: int) -> list[str]:
    """The set a labeller sends for an item: 0 to 5 tags (about one in six empty), in a scrambled order."""
    rng = random.Random(item_id)
    return rng.sample(TAGS, rng.randint(0, len(TAGS)))


@pytest.mark.slow
def test_16_labellers_on_a_multi_label_project(engine, settings, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="debtags", labels=TAGS, seed=9, multi_label=True)
    tools.add_items(engine, project, N_ITEMS)
    tokens, ids = tools.make_users(engine, [(f"m{i:02d}", "labeller") for i in range(N_CLIENTS)])
    tools.add_members(engine, project, list(tokens))
    served: dict[str, list[int]] = {name: [] for name in tokens}
    errors: list[str] = []
    start = threading.Barrier(N_CLIENTS)

    def labeller(name: str, base: str) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=30) as http:
            start.wait()
            while True:
                response = http.post(f"{ML}/next")
                if response.status_code == 204:
                    return
                if response.status_code != 200 or response.json().get("multi_label") is not True:
                    errors.append(f"{name} next: {response.status_code} {response.text}")
                    return
                item_id = response.json()["item"]["id"]
                served[name].append(item_id)
                labels = expected_set(item_id)
                done = http.post(f"{ML}/items/{item_id}/labels", json={"labels": labels})
                if done.status_code != 201 or done.json() != {"item_id": item_id, "labels": labels}:
                    errors.append(f"{name} label {item_id}: {done.status_code} {done.text}")
                    return

    with tools.LiveServer(settings) as server:
        threads = [threading.Thread(target=labeller, args=(name, server.url)) for name in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors[:5]
    assert not any(thread.is_alive() for thread in threads)
    all_served = [i for got in served.values() for i in got]
    assert len(all_served) == N_ITEMS and len(set(all_served)) == N_ITEMS  # nobody got an item twice
    assert sum(1 for got in served.values() if got) > N_CLIENTS // 2
    masks = stored(engine, project.id)
    assert masks == {i: mask(expected_set(i)) for i in all_served}  # every set exactly as sent
    assert Counter(m == 0 for m in masks.values())[True] > 0  # "none applies" among them
    with reading(engine) as conn:
        history = conn.execute(select(assignments.c.item_id, assignments.c.user_id, assignments.c.state)).all()
        final = dict(conn.execute(select(items.c.id, items.c.label_mask)).all())
    assert Counter(r.item_id for r in history) == Counter(set(all_served))  # one hand-out per item
    assert {r.state for r in history} == {"labelled"}
    owner = {r.item_id: r.user_id for r in history}
    assert all(owner[i] == ids[name] for name, got in served.items() for i in got)
    assert final == masks
