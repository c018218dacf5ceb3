"""The JSON API over HTTP (in process): the labelling cycle, errors and input limits."""

from __future__ import annotations

import json
import re
import time

from sqlalchemy import func, select, update

from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import annotations, assignments, items, users


API = "/api/projects/news"
TAGS = ["Sport", "Politics", "Tech"]  # as in conftest


def test_healthz_needs_no_auth_and_everything_else_does(client, world):
    assert client.get("/healthz").json() == {"status": "ok"}
    for method, path in [
        ("GET", "/api/me"), ("GET", "/api/projects"), ("GET", f"{API}/stats"), ("POST", f"{API}/next"),
        ("POST", f"{API}/items/1/labels"), ("POST", f"{API}/items/1/skip"), ("POST", f"{API}/undo"),
        ("POST", f"{API}/items/1/renew"), ("GET", "/api/users"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert "not authenticated" in response.json()["detail"]
    bad = client.get("/api/me", headers={"Authorization": "Bearer ll_nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid API token"
    assert client.get("/api/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_openapi_docs_need_a_login(client, world):
    assert client.get("/openapi.json").status_code == 401
    schema = client.get("/openapi.json", headers=world.auth("ann")).json()
    assert {"/api/projects/{project}/next", "/api/projects/{project}/items/{item_id}/labels"} <= set(schema["paths"])
    assert "NextPublic" in schema["components"]["schemas"] and "LabelCreate" in schema["components"]["schemas"]
    page = client.get("/docs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/docs"
    assert "swagger" in client.get("/docs", headers=world.auth("ann")).text.lower()


def test_me_projects_and_admin_only_routes(client, world):
    me = client.get("/api/me", headers=world.auth("ann")).json()
    assert me == {"id": world.ids["ann"], "name": "ann", "role": "labeller"}
    projects = client.get("/api/projects", headers=world.auth("ann")).json()
    assert projects == [{"name": "news", "tags": TAGS, "items": 5, "labelled": 0, "remaining": 5}]
    assert client.get("/api/users", headers=world.auth("ann")).status_code == 403
    users = client.get("/api/users", headers=world.auth("boss")).json()
    assert [u["name"] for u in users] == ["ann", "bob", "boss"]


def test_label_cycle_to_the_end(client, world, engine):
    seen = []
    while True:
        response = client.post(f"{API}/next", headers=world.auth("ann"))
        if response.status_code == 204:
            break
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"item", "lease"} and set(body["item"]) == {"id", "external_id", "display"}
        assert body["item"]["display"]["title"].startswith("title ")
        # asking again while holding the lease gives the same item
        assert client.post(f"{API}/next", headers=world.auth("ann")).json()["item"] == body["item"]
        tag = TAGS[len(seen) % 3]
        created = client.post(f"{API}/items/{body['item']['id']}/labels", json={"label": tag}, headers=world.auth("ann"))
        assert created.status_code == 201 and created.json() == {"item_id": body["item"]["id"], "label": tag}
        seen.append(body["item"]["id"])
    assert len(set(seen)) == 5
    stats = client.get(f"{API}/stats", headers=world.auth("ann")).json()
    assert stats["items"] == 5 and stats["labelled"] == 5 and stats["remaining"] == 0
    assert stats["per_tag"] == {"Sport": 2, "Politics": 2, "Tech": 1}
    assert stats["per_labeller"] == {"ann": 5}
    assert (stats["yours_today"], stats["yours_total"]) == (5, 5)
    assert client.get(f"{API}/stats", headers=world.auth("bob")).json()["yours_total"] == 0
    assert client.post(f"{API}/next", headers=world.auth("bob")).status_code == 204
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 5


def test_errors_409_422_404(client, world, engine):
    item = client.post(f"{API}/next", headers=world.auth("ann")).json()["item"]
    url = f"{API}/items/{item['id']}/labels"
    unknown = client.post(url, json={"label": "Gossip"}, headers=world.auth("ann"))
    assert unknown.status_code == 422 and "unknown tag 'Gossip'" in unknown.json()["detail"]
    other = client.post(url, json={"label": "Tech"}, headers=world.auth("bob"))
    assert other.status_code == 409 and "not leased to you" in other.json()["detail"]
    assert client.post(url, json={}, headers=world.auth("ann")).status_code == 422
    assert client.post(url, json={"label": "Tech", "extra": 1}, headers=world.auth("ann")).status_code == 422
    assert client.post(url, json={"label": ""}, headers=world.auth("ann")).status_code == 422
    assert client.post(url, content=b"{not json", headers={**world.auth("ann"), "content-type": "application/json"}).status_code == 422
    assert client.post(url, content=b"label=Tech", headers={**world.auth("ann"), "content-type": "text/plain"}).status_code == 415
    assert client.post(f"{API}/items/999999/labels", json={"label": "Tech"}, headers=world.auth("ann")).status_code == 404
    assert client.post("/api/projects/nope/next", headers=world.auth("ann")).status_code == 404
    assert client.post(f"{API}/items/abc/labels", json={"label": "Tech"}, headers=world.auth("ann")).status_code == 422
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 0
    assert client.post(url, json={"label": "Tech"}, headers=world.auth("ann")).status_code == 201
    again = client.post(url, json={"label": "Sport"}, headers=world.auth("ann"))
    assert again.status_code == 409 and "already" in again.json()["detail"]


def test_oversize_bodies_are_refused(client, world):
    item = client.post(f"{API}/next", headers=world.auth("ann")).json()["item"]
    big = json.dumps({"label": "x" * 100_000})
    response = client.post(f"{API}/items/{item['id']}/labels", content=big,
                           headers={**world.auth("ann"), "content-type": "application/json"})
    assert response.status_code == 413 and "too large" in response.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(100):
            yield b"x" * 1000

    streamed = client.post(f"{API}/items/{item['id']}/labels", content=chunks(),
                           headers={**world.auth("ann"), "content-type": "application/json"})
    assert streamed.status_code == 413


def test_skip_and_undo(client, world):
    ann = world.auth("ann")
    first = client.post(f"{API}/next", headers=ann).json()["item"]
    assert client.post(f"{API}/items/{first['id']}/skip", headers=ann).status_code == 204
    second = client.post(f"{API}/next", headers=ann).json()["item"]
    assert second["id"] != first["id"]
    assert client.post(f"{API}/items/{first['id']}/labels", json={"label": "Tech"}, headers=ann).status_code == 409
    # bob gets the item ann skipped (it is first in the queue order)
    assert client.post(f"{API}/next", headers=world.auth("bob")).json()["item"]["id"] == first["id"]

    # undo takes ann's skip first, but bob holds that item now: it cannot come back
    gone = client.post(f"{API}/undo", headers=ann)
    assert gone.status_code == 409 and gone.json()["detail"] == (
        "the item you skipped went to another labeller meanwhile and cannot come back now "
        "(your skip is undone: it may come back to you later)")
    assert client.post(f"{API}/next", headers=ann).json()["item"]["id"] == second["id"]  # ann keeps hers
    nothing = client.post(f"{API}/undo", headers=ann)
    assert nothing.status_code == 404 and nothing.json()["detail"] == "you have no label or skip to undo in project 'news'"
    client.post(f"{API}/items/{second['id']}/labels", json={"label": "Sport"}, headers=ann)
    third = client.post(f"{API}/next", headers=ann).json()["item"]
    undone = client.post(f"{API}/undo", headers=ann)
    assert undone.status_code == 200 and undone.json()["item"]["id"] == second["id"]
    assert undone.json()["undone"] == "label"
    assert client.post(f"{API}/next", headers=ann).json()["item"]["id"] == second["id"]
    assert client.post(f"{API}/items/{second['id']}/labels", json={"label": "Tech"}, headers=ann).status_code == 201
    stats = client.get(f"{API}/stats", headers=ann).json()
    assert stats["per_tag"] == {"Sport": 0, "Politics": 0, "Tech": 1} and stats["yours_total"] == 1
    # the lease ann held on `third` before undoing was given back: it goes to the next asker
    assert client.post(f"{API}/next", headers=ann).json()["item"]["id"] == third["id"]


def test_undo_after_a_skip_brings_the_skipped_item_back(client, world):
    """Undo is a stack of your labels and skips, on the cookie path (the page) and with a token."""
    for who, headers in (("ann", world.auth("ann")), ("bob", None)):
        if headers is None:  # bob through a session cookie and the CSRF token, as the page does
            client.cookies.clear()
            page = client.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            client.post("/login", data={"username": who, "password": "correct horse", "csrf_token": csrf})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/projects").text).group(1)
            headers = {"X-CSRF-Token": csrf}
        first = client.post(f"{API}/next", headers=headers).json()["item"]
        client.post(f"{API}/items/{first['id']}/labels", json={"label": "Tech"}, headers=headers)
        skipped = client.post(f"{API}/next", headers=headers).json()["item"]
        assert client.post(f"{API}/items/{skipped['id']}/skip", headers=headers).status_code == 204
        shown = client.post(f"{API}/next", headers=headers).json()["item"]
        assert shown["id"] not in (first["id"], skipped["id"])
        back = client.post(f"{API}/undo", headers=headers)
        assert back.status_code == 200, back.text
        assert back.json()["undone"] == "skip" and back.json()["item"] == skipped
        assert client.post(f"{API}/next", headers=headers).json()["item"]["id"] == skipped["id"]
        label = client.post(f"{API}/items/{skipped['id']}/labels", json={"label": "Sport"}, headers=headers)
        assert label.status_code == 201
        again = client.post(f"{API}/undo", headers=headers).json()  # then the label just made ...
        assert (again["undone"], again["item"]["id"]) == ("label", skipped["id"])
        client.post(f"{API}/items/{skipped['id']}/skip", headers=headers)
        undone = [client.post(f"{API}/undo", headers=headers).json() for _ in range(2)]  # ... and the stack
        assert [(u["undone"], u["item"]["id"]) for u in undone] == [("skip", skipped["id"]), ("label", first["id"])]
        assert client.post(f"{API}/undo", headers=headers).status_code == 404
        client.post(f"{API}/items/{first['id']}/labels", json={"label": "Tech"}, headers=headers)


def test_short_leases_expire_and_renew(world, engine, db_url):
    from datetime import datetime

    from fastapi.testclient import TestClient

    from labelloop.server import create_app

    settings = world.settings.__class__(**{**world.settings.__dict__, "lease_seconds": 2})
    with writing(engine) as conn:  # one item only
        conn.execute(items.delete().where(items.c.external_id != "e0"))

    def expiry(stamp):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    def sleep_until(moment):
        time.sleep(max(0.0, moment - time.time()))

    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        ann, bob = world.auth("ann"), world.auth("bob")
        item = client.post(f"{API}/next", headers=ann).json()
        item_id = item["item"]["id"]
        assert client.post(f"{API}/next", headers=bob).status_code == 204
        time.sleep(1.0)
        renewed = client.post(f"{API}/items/{item_id}/renew", headers=ann)
        assert renewed.status_code == 200
        first, second = expiry(item["lease"]["expires_at"]), expiry(renewed.json()["expires_at"])
        assert second >= first + 0.9
        sleep_until(first + 0.3)  # past the first expiry: the renewal still holds the item
        if time.time() < second - 0.2:  # (skipped only if this machine is very slow)
            assert client.post(f"{API}/next", headers=bob).status_code == 204
        sleep_until(second + 0.2)
        taken = client.post(f"{API}/next", headers=bob)
        assert taken.status_code == 200 and taken.json()["item"]["id"] == item_id
        late = client.post(f"{API}/items/{item_id}/labels", json={"label": "Tech"}, headers=ann)
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        assert client.post(f"{API}/items/{item_id}/renew", headers=ann).status_code == 409


def test_untrusted_text_comes_back_json_escaped(client, world, engine, tools):
    name, tag = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
    with writing(engine) as conn:
        user = store_users.create_user(conn, name=name, role="labeller", password="a long password")
        token = store_users.create_token(conn, user_id=user.id)
        store_projects.add_tags(conn, project_id=world.project.id, names=[tag])
    tools.add_members(engine, world.project, [name])
    auth = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/me", headers=auth)
    assert me.headers["content-type"].startswith("application/json")
    assert b"<script>" not in me.content and me.json()["name"] == name
    item = client.post(f"{API}/next", headers=auth).json()["item"]
    assert client.post(f"{API}/items/{item['id']}/labels", json={"label": tag}, headers=auth).status_code == 201
    stats = client.get(f"{API}/stats", headers=auth)
    assert b"<img" not in stats.content and b"<script>" not in stats.content
    assert stats.json()["per_tag"][tag] == 1 and stats.json()["per_labeller"] == {name: 1}
    missing = client.get("/api/projects/<b>x<b>/stats", headers=auth)
    assert missing.status_code == 404 and b"<b>" not in missing.content and "<b>x<b>" in missing.json()["detail"]


def test_disabled_users_are_refused(client, world, engine):
    for name in ("ann", "bob"):
        assert client.get("/api/me", headers=world.auth(name)).status_code == 200
    with writing(engine) as conn:
        store_users.set_disabled(conn, user_id=world.ids["bob"], disabled=True)  # revokes bob's tokens
        conn.execute(update(users).where(users.c.id == world.ids["ann"]).values(disabled=True))  # only the flag
    for name, words in (("bob", "invalid API token"), ("ann", "disabled")):
        deadline = time.monotonic() + 4  # the per-process user cache is re-checked every second
        while (response := client.get("/api/me", headers=world.auth(name))).status_code == 200:
            assert time.monotonic() < deadline, "a disabled user was still let in after 4 s"
            time.sleep(0.1)
        assert response.status_code == 401 and words in response.json()["detail"], name


def test_assignment_rows_record_who_had_what(client, world, engine):
    got = {name: client.post(f"{API}/next", headers=world.auth(name)).json()["item"]["id"] for name in ("ann", "bob")}
    assert got["ann"] != got["bob"]
    with reading(engine) as conn:
        rows = conn.execute(select(assignments.c.item_id, assignments.c.user_id, assignments.c.state)).all()
    assert sorted(rows) == sorted(
        [(got["ann"], world.ids["ann"], "leased"), (got["bob"], world.ids["bob"], "leased")]
    )


def test_bearer_fast_path_and_session_routes_answer_alike(client, world, engine):
    """Bearer `next`/`labels` calls skip FastAPI's routing (server/fastpath.py); a browser
    session goes through the routes. Both must give the same answers."""
    import re

    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "bob", "password": "correct horse", "csrf_token": csrf, "next": "/"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    via = {"bearer": world.auth("ann"), "session": {"X-CSRF-Token": csrf}}
    cookies = dict(client.cookies)

    def call(kind, path, **kwargs):
        client.cookies.clear()
        if kind == "session":
            for name, value in cookies.items():
                client.cookies.set(name, value)
        return client.post(path, headers={**via[kind], **kwargs.pop("headers", {})}, **kwargs)

    got = {kind: call(kind, f"{API}/next") for kind in via}
    assert {r.status_code for r in got.values()} == {200}
    assert {tuple(r.json()) for r in got.values()} == {("item", "lease")}
    assert {r.json()["lease"]["expires_at"][-1] for r in got.values()} == {"Z"}
    ids = {kind: r.json()["item"]["id"] for kind, r in got.items()}
    other = {"bearer": "session", "session": "bearer"}
    for kind in via:
        url = f"{API}/items/{ids[kind]}/labels"
        cases = [
            (call(kind, url, json={"label": "Gossip"}), 422),
            (call(kind, f"{API}/items/{ids[other[kind]]}/labels", json={"label": "Tech"}), 409),
            (call(kind, url, content=b"x", headers={"content-type": "text/plain"}), 415),
            (call(kind, url, content=b"{", headers={"content-type": "application/json"}), 422),
            (call(kind, url, json={"label": "Tech", "x": 1}), 422),
            (call(kind, "/api/projects/nope/next"), 404),
            (call(kind, url, json={"label": "Tech"}), 201),
        ]
        for response, status in cases:
            assert response.status_code == status, (kind, response.text)
        assert cases[-1][0].json() == {"item_id": ids[kind], "label": "Tech"}
    texts = {
        kind: [
            call(kind, f"{API}/items/{ids[kind]}/labels", json={"label": "Gossip"}).json()["detail"],
            call(kind, "/api/projects/nope/next").json()["detail"],
        ]
        for kind in via
    }
    assert texts["bearer"] == texts["session"]
    bad = client.post(f"{API}/next", headers={"Authorization": "Bearer ll_wrong"})
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid API token"
