"""Gold items through the HTTP API (server/gold.py): served at about ``gold_fraction``, never
twice to a user, indistinguishable from other items, answered apart from labels; both the
bearer fast path and the session routes; both databases."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from labelloop.store import gold as store_gold
from labelloop.store.browse import label_totals_of_user
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.configure import configure_project
from labelloop.store.schema import annotations, gold_answers, items

API = "/api/projects/news"


@pytest.fixture
def gold_world(world, engine, tools):
    """"news" with 200 more items, 30 of them gold (answer "Tech"), ``gold_fraction`` 0.25."""
    tools.add_items(engine, world.project, 200, prefix="g")
    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="news")
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id))
                   .scalars())
        gold_ids = ids[-30:]
        store_gold.mark_gold(conn, project=project, values=dict.fromkeys(gold_ids, project.tag_id("Tech")),
                             user_id=None)
        configure_project(conn, project=project, values={"gold_fraction": 0.25})
    return set(gold_ids)


def _session_headers(client, who):
    client.cookies.clear()
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": who, "password": "correct horse", "csrf_token": csrf})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/projects").text).group(1)
    return {"X-CSRF-Token": csrf}


def test_gold_is_served_at_about_the_fraction_never_twice_and_looks_like_any_item(gold_world, client, world, engine):
    gold_ids = gold_world
    served = {"ann": [], "bob": []}
    shapes = set()
    for who in ("ann", "bob"):  # ann with a token (fast path), bob with a session (the routes)
        headers = world.auth(who) if who == "ann" else _session_headers(client, who)
        for _ in range(60):
            answer = client.post(f"{API}/next", headers=headers)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            item = body["item"]
            shapes.add((tuple(body), tuple(item), tuple(body["lease"]), tuple(item["display"])))
            served[who].append(item["id"])
            got = client.post(f"{API}/items/{item['id']}/labels", json={"label": "Sport"}, headers=headers)
            assert got.status_code == 201, got.text
            assert got.json() == {"item_id": item["id"], "label": "Sport"}
    assert len(shapes) == 1  # the same keys for gold and ordinary items
    for who, ids in served.items():
        assert len(ids) == len(set(ids)), f"{who} got an item twice"
        n_gold = len(set(ids) & gold_ids)
        assert 5 <= n_gold <= 27, (who, n_gold)  # 0.25 of 60 = 15; binomial sd 3.4
    with reading(engine) as conn:
        # gold answers are not labels: no annotation, n_labels 0, the gold answer stays the label
        gold_served = (set(served["ann"]) | set(served["bob"])) & gold_ids
        n_annotations = conn.execute(select(func.count()).select_from(annotations)).scalar_one()
        assert n_annotations == 120 - sum(len(set(ids) & gold_ids) for ids in served.values())
        rows = conn.execute(select(items.c.n_labels, items.c.label_tag_id).where(items.c.id.in_(gold_served))).all()
        assert {tuple(r) for r in rows} == {(0, world.project.tag_id("Tech"))}
        answers = conn.execute(select(func.count()).select_from(gold_answers)
                               .where(gold_answers.c.correct.is_(False))).scalar_one()
        assert answers == len(gold_served & set(served["ann"])) + len(gold_served & set(served["bob"]))
    # a labeller's own counts include their gold answers: nothing tells them which were gold
    mine = client.get(f"{API}/stats", headers=world.auth("ann")).json()
    assert (mine["yours_total"], mine["yours_today"]) == (60, 60)
    assert mine["per_labeller"] == {"ann": 60, "bob": 60}
    with reading(engine) as conn:
        assert label_totals_of_user(conn, user_id=world.ids["bob"]) == {"news": 60}


def test_with_no_gold_fraction_no_gold_item_is_served(world, engine, tools):
    from fastapi.testclient import TestClient

    from labelloop.server import create_app

    tools.add_items(engine, world.project, 40, prefix="g")
    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="news")
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)).scalars())
        store_gold.mark_gold(conn, project=project, values=dict.fromkeys(ids[:40], project.tag_id("Tech")),
                             user_id=None)
    gold_ids = set(ids[:40])
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        seen = []
        while (answer := client.post(f"{API}/next", headers=world.auth("ann"))).status_code == 200:
            item_id = answer.json()["item"]["id"]
            seen.append(item_id)
            client.post(f"{API}/items/{item_id}/labels", json={"label": "Sport"}, headers=world.auth("ann"))
        assert answer.status_code == 204
        assert len(seen) == 5 and not set(seen) & gold_ids  # the five ordinary items only


def test_skip_undo_and_renew_of_a_gold_item(world, engine, tools):
    from fastapi.testclient import TestClient

    from labelloop.server import create_app

    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="news")
        first = conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id)).first()[0]
        store_gold.mark_gold(conn, project=project, values={first: project.tag_id("Tech")}, user_id=None)
        configure_project(conn, project=project, values={"gold_fraction": 0.5})
    ann = world.auth("ann")
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        client.app.state.gold.rng.random = lambda: 0.0  # every draw a gold draw
        item = client.post(f"{API}/next", headers=ann).json()["item"]
        assert item["id"] == first
        assert client.post(f"{API}/items/{first}/renew", headers=ann).status_code == 200
        assert client.post(f"{API}/items/{first}/skip", headers=ann).status_code == 204
        back = client.post(f"{API}/undo", headers=ann)
        assert back.status_code == 200 and back.json()["undone"] == "skip" and back.json()["item"]["id"] == first
        assert client.post(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann).status_code == 201
        again = client.post(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann)
        assert again.status_code == 409 and "labelled item" in again.json()["detail"]
        back = client.post(f"{API}/undo", headers=ann)
        assert back.status_code == 200 and back.json()["undone"] == "label" and back.json()["item"]["id"] == first
        assert client.post(f"{API}/items/{first}/labels", json={"label": "Sport"}, headers=ann).status_code == 201
        nxt = client.post(f"{API}/next", headers=ann).json()["item"]  # seen every gold item: an ordinary one
        assert nxt["id"] != first
    with reading(engine) as conn:
        assert [(c.answered, c.correct) for c in store_gold.answer_counts(conn, project_id=project.id)] == [(1, 0)]
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 0


def test_without_gold_a_plain_next_and_label_do_not_query_for_it(world, engine, tools):
    """gold_fraction 0: ``next`` never looks at gold; a label looks up the per-process cache,
    which the app re-reads about once a second (not once per request)."""
    import time

    from sqlalchemy import event

    from fastapi.testclient import TestClient

    from labelloop.server import create_app

    tools.add_items(engine, world.project, 40, prefix="x")
    client = TestClient(create_app(world.settings), base_url="http://127.0.0.1").__enter__()
    app_engine = client.app.state.engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "gold_items" in statement:
            seen.append(statement)

    ann = world.auth("ann")
    first = client.post(f"{API}/next", headers=ann).json()["item"]["id"]
    client.post(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann)  # warm
    event.listen(app_engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for _ in range(30):
            item = client.post(f"{API}/next", headers=ann).json()["item"]["id"]
            assert client.post(f"{API}/items/{item}/labels", json={"label": "Tech"}, headers=ann).status_code == 201
        ticks = time.monotonic() - started
    finally:
        event.remove(app_engine, "before_cursor_execute", count)
        client.__exit__(None, None, None)
    assert len(seen) <= ticks / client.app.state.gold.cache.refresh_every + 1 < 30, (seen, ticks)


def test_an_item_marked_gold_elsewhere_is_known_within_about_a_second(client, world, engine):
    """Marked by the CLI (another process) while ann holds it: once the cache has caught up, her
    label on it is a gold answer, not a label."""
    import time

    ann = world.auth("ann")
    first = client.post(f"{API}/next", headers=ann).json()["item"]["id"]
    client.post(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann)  # the cache has the project
    item = client.post(f"{API}/next", headers=ann).json()["item"]["id"]
    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="news")
        store_gold.mark_gold(conn, project=project, values={item: project.tag_id("Sport")}, user_id=None)
    marked = time.monotonic()
    while item not in client.app.state.gold.cache._projects.get(project.id, [frozenset()])[0]:
        assert time.monotonic() - marked < 3.0, "the mark did not reach the server's cache"
        time.sleep(0.05)
    assert client.post(f"{API}/items/{item}/labels", json={"label": "Sport"}, headers=ann).status_code == 201
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 1  # the first only
        assert [(c.answered, c.correct) for c in store_gold.answer_counts(conn, project_id=project.id)] == [(1, 1)]
