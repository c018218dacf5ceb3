"""Bulk labelling over HTTP (server/bulk/): the JSON API and the admin page's forms, through a
real in-process client on both databases: apply and undo, roles and membership, CSRF, refusals,
multi-label add/remove, the data browser and the audit log."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.schema import items

API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest


def item_ids(engine, project="news"):
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        return list(conn.execute(select(items.c.id).where(items.c.project_id == proj.id).order_by(items.c.id)).scalars())


def states(engine, ids):
    with reading(engine) as conn:
        rows = conn.execute(select(items.c.id, items.c.label_tag_id, items.c.label_mask, items.c.label_source,
                                   items.c.n_labels).where(items.c.id.in_(ids)).order_by(items.c.id)).all()
    return [tuple(r[1:]) for r in rows]


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def test_apply_and_undo_through_the_api(client, world, engine):
    ids = item_ids(engine)
    boss = world.auth("boss")
    made = client.post(f"{API}/bulk", json={"tag": "Tech", "item_ids": ids}, headers=boss)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body == {"bulk_id": body["bulk_id"], "tag": "Tech", "action": "add", "items": 5, "changed": 5, "human": 0}
    tech, sport = world.project.tag_id("Tech"), world.project.tag_id("Sport")
    assert states(engine, ids) == [(tech, None, "bulk", 0)] * 5

    listed = client.get(f"{API}/bulk", headers=boss).json()
    assert [(o["bulk_id"], o["tag"], o["items"], o["user"], o["undone_at"]) for o in listed] == [
        (body["bulk_id"], "Tech", 5, "boss", None)]

    # the labellers are still served the items (never as audit items); a labeller's label wins
    nxt = client.post(f"{API}/next", headers=world.auth("ann"))
    assert nxt.status_code == 200, nxt.text
    got = nxt.json()["item"]["id"]
    labelled = client.post(f"{API}/items/{got}/labels", json={"label": "Sport"}, headers=world.auth("ann"))
    assert labelled.status_code == 201, labelled.text
    assert states(engine, [got]) == [(sport, None, "human", 1)]

    undone = client.delete(f"{API}/bulk/{body['bulk_id']}", headers=boss)
    assert undone.status_code == 200 and undone.json() == {"bulk_id": body["bulk_id"], "items": 5, "changed": 4}
    assert states(engine, ids) == [(sport, None, "human", 1) if i == got else (None, None, None, 0) for i in ids]
    again = client.delete(f"{API}/bulk/{body['bulk_id']}", headers=boss)
    assert again.status_code == 409 and "undone already" in again.json()["detail"]
    missing = client.delete(f"{API}/bulk/4242", headers=boss)
    assert missing.status_code == 404 and "no bulk operation 4242 in project 'news'" in missing.json()["detail"]


def test_refusals_are_clear_4xx_and_change_nothing(client, world, engine, tools):
    ids = item_ids(engine)
    boss = world.auth("boss")
    with writing(engine) as conn:
        other = store_projects.create_project(conn, name="other", labels=["X"], seed=1)
    tools.add_items(engine, other, 2, prefix="o")
    foreign = item_ids(engine, "other")
    cases = [
        ({"tag": "Nope", "item_ids": ids[:1]}, 422, "unknown tag 'Nope' in project 'news'"),
        ({"tag": "Tech", "item_ids": []}, 422, "give at least one item id"),
        ({"tag": "Tech", "item_ids": [ids[0], foreign[0]]}, 422, "are not items of project 'news'"),
        ({"tag": "Tech", "item_ids": list(range(1, 10_002))}, 422, "too many items: 10001"),
        ({"tag": "Tech", "item_ids": ["1"]}, 422, "integer"),
        ({"tag": "Tech", "item_ids": ids[:1], "action": "remove"}, 422, "'remove' is for multi-label projects only"),
        ({"tag": "Tech", "item_ids": ids[:1], "action": "zap"}, 422, "add"),
        ({"item_ids": ids[:1]}, 422, "tag"),
    ]
    for body, status, words in cases:
        response = client.post(f"{API}/bulk", json=body, headers=boss)
        assert response.status_code == status, (body, response.text)
        assert words in str(response.json()["detail"]), (body, response.text)
    big = client.post(f"{API}/bulk", content=b'{"tag": "Tech", "item_ids": [' + b"1," * 600_000 + b"1]}",
                      headers={**boss, "Content-Type": "application/json"})
    assert big.status_code == 413
    assert client.get(f"{API}/bulk", headers=boss).json() == []
    assert all(s == (None, None, None, 0) for s in states(engine, ids))


def test_roles_membership_and_csrf(client, world, engine, tools):
    ids = item_ids(engine)
    tokens, _ = tools.make_users(engine, [("cid", "labeller")])  # not a member of news
    member = client.post(f"{API}/bulk", json={"tag": "Tech", "item_ids": ids[:1]}, headers=world.auth("ann"))
    assert member.status_code == 403
    stranger = client.post(f"{API}/bulk", json={"tag": "Tech", "item_ids": ids[:1]},
                           headers={"Authorization": f"Bearer {tokens['cid']}"})
    assert stranger.status_code == 404
    assert client.delete(f"{API}/bulk/1", headers=world.auth("ann")).status_code == 403
    assert client.get(f"{API}/bulk", headers={"Authorization": f"Bearer {tokens['cid']}"}).status_code == 404
    assert client.post(f"{API}/bulk", json={"tag": "Tech", "item_ids": ids[:1]}).status_code == 401
    login(client, "boss")  # a session without the CSRF header is refused
    assert client.post(f"{API}/bulk", json={"tag": "Tech", "item_ids": ids[:1]}).status_code == 403
    assert client.get("/admin/projects/news/bulk").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_in(client.get("/projects").text)})
    login(client, "ann")
    assert client.get("/admin/projects/news/bulk").status_code == 403
    assert all(s == (None, None, None, 0) for s in states(engine, ids))


def test_multi_label_add_and_remove(client, world, engine, tools):
    with writing(engine) as conn:
        ml = store_projects.create_project(conn, name="sets", labels=["A", "B", "C"], seed=2, multi_label=True)
    tools.add_items(engine, ml, 3, prefix="s")
    ids = item_ids(engine, "sets")
    boss = world.auth("boss")
    assert client.post("/api/projects/sets/bulk", json={"tag": "A", "item_ids": ids}, headers=boss).status_code == 201
    assert client.post("/api/projects/sets/bulk", json={"tag": "C", "item_ids": ids[:2]}, headers=boss).status_code == 201
    removed = client.post("/api/projects/sets/bulk", json={"tag": "A", "item_ids": ids[:1], "action": "remove"},
                          headers=boss)
    assert removed.status_code == 201 and removed.json()["action"] == "remove"
    assert states(engine, ids) == [(None, 4, "bulk", 0), (None, 5, "bulk", 0), (None, 1, "bulk", 0)]
    assert client.delete(f"/api/projects/sets/bulk/{removed.json()['bulk_id']}", headers=boss).status_code == 200
    assert states(engine, ids)[0] == (None, 5, "bulk", 0)


def test_the_page_previews_applies_and_undoes(client, world, engine):
    ids = item_ids(engine)
    csrf = login(client, "boss")
    page = client.get("/admin/projects/news/bulk", params={"ids": f"{ids[0]}, {ids[1]} {ids[2]}"})
    assert page.status_code == 200
    assert page.text.count('name="item_ids"') == 3 and "title 0" in page.text
    bad = client.get("/admin/projects/news/bulk", params={"ids": "1, x"})
    assert bad.status_code == 400 and "not an item id: &#39;x&#39;" in bad.text
    done = client.post("/admin/projects/news/bulk", data={
        "csrf_token": csrf, "tag": "Politics", "action": "add", "item_ids": [str(ids[0]), str(ids[2])],
        "ids": f"{ids[0]},{ids[1]},{ids[2]}", "limit": "50"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    shown = client.get(done.headers["location"])
    text = unescape(shown.text)
    assert "Bulk operation #1: “Politics” applied to 2 items" in text
    assert text.count("bulk #1") == 2  # the two items' current labels name the operation
    politics = world.project.tag_id("Politics")
    assert states(engine, ids[:3]) == [(politics, None, "bulk", 0), (None, None, None, 0), (politics, None, "bulk", 0)]

    browser = unescape(client.get("/admin/projects/news/browse", params={"source": "bulk"}).text)
    assert browser.count("bulk #1") == 2 and "e1<" not in browser
    item = unescape(client.get(f"/admin/projects/news/items/{ids[0]}").text)
    assert "bulk #1" in item
    log = unescape(client.get("/admin/projects/news/tags").text)
    assert "bulk #1: applied “Politics” (2 items)" in log

    none = client.post("/admin/projects/news/bulk", data={"csrf_token": csrf, "tag": "Politics"})
    assert none.status_code == 400 and "no item is checked" in none.text
    no_csrf = client.post("/admin/projects/news/bulk", data={"tag": "Politics", "item_ids": [str(ids[1])]})
    assert no_csrf.status_code == 403

    undone = client.post("/admin/projects/news/bulk/1/undo", data={"csrf_token": csrf}, follow_redirects=False)
    assert undone.status_code == 303
    assert "Bulk operation #1 undone" in unescape(client.get(undone.headers["location"]).text)
    assert states(engine, ids[:3]) == [(None, None, None, 0)] * 3
    twice = client.post("/admin/projects/news/bulk/1/undo", data={"csrf_token": csrf})
    assert twice.status_code == 409 and "undone already" in twice.text
    assert "undid bulk #1 (2 items)" in unescape(client.get("/admin/projects/news/tags").text)


def test_the_page_lists_search_likely_and_similar_sources(client, world, engine):
    ids = item_ids(engine)
    login(client, "boss")
    found = unescape(client.get("/admin/projects/news/bulk", params={"q": "title"}).text)
    assert "Search “title”: 5 shown of 5 matches" in found and found.count('name="item_ids"') == 5
    bad = client.get("/admin/projects/news/bulk", params={"q": '"unclosed'})
    assert bad.status_code == 400 and "item_ids" not in bad.text
    likely = unescape(client.get("/admin/projects/news/bulk", params={"tag": "Tech"}).text)
    assert "the likely and similar lists come from the model's latest round" in likely  # no round yet
    assert client.get("/admin/projects/news/bulk", params={"tag": "Nope"}).status_code == 400
    similar = client.get("/admin/projects/news/bulk", params={"item": str(ids[0])})
    assert similar.status_code == 200 and "Items most like item #" in unescape(similar.text)
    assert client.get("/admin/projects/news/bulk", params={"item": "999999"}).status_code == 404
