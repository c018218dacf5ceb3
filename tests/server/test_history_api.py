"""My history over HTTP (server/history/): the JSON API and the page's forms, through a real
in-process client on both databases: changes within the rules, refusals (adjudicated, other
people's labels, unknown items, non-members, CSRF), leases untouched, multi-label sets."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from labelloop.store import projects as store_projects
from labelloop.store import reading, review, writing
from labelloop.store.schema import assignments, items, label_history

API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def label_next(client, auth, body, api=API) -> int:
    got = client.post(f"{api}/next", headers=auth)
    assert got.status_code == 200, got.text
    item_id = got.json()["item"]["id"]
    done = client.post(f"{api}/items/{item_id}/labels", json=body, headers=auth)
    assert done.status_code == 201, done.text
    return item_id


def leases(engine):
    with reading(engine) as conn:
        return sorted(tuple(r) for r in conn.execute(
            select(assignments.c.item_id, assignments.c.user_id, assignments.c.state, assignments.c.expires_at)))


def final(engine, item_id):
    with reading(engine) as conn:
        return tuple(conn.execute(select(items.c.n_labels, items.c.label_tag_id, items.c.label_mask,
                                         items.c.label_source).where(items.c.id == item_id)).one())


def n_changes(engine):
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(label_history)).scalar_one()


def test_change_a_label_keeps_the_leases_and_the_history(client, world, engine):
    ann, bob = world.auth("ann"), world.auth("bob")
    first = label_next(client, ann, {"label": "Sport"})
    second = label_next(client, ann, {"label": "Politics"})
    held = client.post(f"{API}/next", headers=ann).json()["item"]["id"]  # ann's current item
    client.post(f"{API}/next", headers=bob)
    before = leases(engine)

    listed = client.get(f"{API}/history", headers=ann)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [(r["item_id"], r["label"], r["changes"], r["changeable"], r["final"]) for r in rows] == [
        (second, "Politics", 0, True, "Politics"), (first, "Sport", 0, True, "Sport")]
    assert rows[0]["external_id"] is None and rows[0]["snippet"].startswith("title ")  # ids hidden by default
    assert [r["item_id"] for r in client.get(f"{API}/history?limit=1", headers=ann).json()] == [second]

    changed = client.put(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"item_id": first, "label": "Tech", "changed": True, "final": "Tech",
                              "final_source": "human"}
    assert final(engine, first) == (1, world.project.tag_id("Tech"), None, "human")
    assert leases(engine) == before  # nobody's lease moved, ann's included
    again = client.post(f"{API}/next", headers=ann)  # ann still gets the item she was on
    assert again.json()["item"]["id"] == held
    same = client.put(f"{API}/items/{first}/labels", json={"label": "Tech"}, headers=ann)
    assert same.status_code == 200 and same.json()["changed"] is False
    assert n_changes(engine) == 1
    top = client.get(f"{API}/history", headers=ann).json()
    assert [(r["item_id"], r["label"], r["changes"]) for r in top] == [(second, "Politics", 0), (first, "Tech", 1)]
    assert top[1]["changed_at"] is not None

    # the data browser's item page shows admins the label's history
    login(client, "boss")
    item_page = unescape(client.get(f"/admin/projects/news/items/{first}").text)
    assert re.search(r"<h2>Changes</h2>\s*<ol class=\"item-labels item-changes\">\s*<li><span>ann</span>:\s*"
                     r"<span class=\"badge tag\">Sport</span> → <span class=\"badge tag\">Tech</span>", item_page)
    assert "<h2>Changes</h2>" not in client.get(f"/admin/projects/news/items/{second}").text


def test_refusals_are_one_line_4xx_and_change_nothing(client, world, engine, tools):
    ann, bob = world.auth("ann"), world.auth("bob")
    mine = label_next(client, ann, {"label": "Sport"})
    with writing(engine) as conn:
        other = store_projects.create_project(conn, name="other", labels=["Sport"], seed=1)
    tools.add_items(engine, other, 1, prefix="o")
    carl = {"Authorization": "Bearer " + tools.make_users(engine, [("carl", "labeller")])[0]["carl"]}
    with reading(engine) as conn:
        foreign = conn.execute(select(items.c.id).where(items.c.project_id == other.id)).scalar_one()

    def put(item_id, body, auth=ann, **kw):
        return client.put(f"{API}/items/{item_id}/labels", json=body, headers=auth, **kw)

    cases = [
        (put(mine, {"label": "Tech"}, bob), 409, f"you have no label on item {mine} to change"),
        (put(999999, {"label": "Tech"}), 404, "no item 999999 in project 'news'"),
        (put(foreign, {"label": "Tech"}), 404, f"no item {foreign} in project 'news'"),
        (put(mine, {"labels": ["Tech"]}), 422, "is single-label"),
        (put(mine, {"label": "Weather"}), 422, "unknown tag 'Weather'"),
        (put(mine, {"label": "Tech"}, carl), 404, "no project named 'news' is open to you"),
        (client.get(f"{API}/history", headers=carl), 404, "no project named 'news' is open to you"),
        (client.put(f"{API}/items/{mine}/labels", json={"label": "Tech"}), 401, "not authenticated"),
        (client.get(f"{API}/history"), 401, "not authenticated"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.status_code, response.text)
        detail = response.json()["detail"]
        assert words in detail and "\n" not in detail, detail
    assert client.get(f"{API}/history?limit=0", headers=ann).status_code == 422
    assert client.get(f"{API}/history?limit=201", headers=ann).status_code == 422

    # a cookie session needs the CSRF header
    csrf = login(client, "ann")
    no_csrf = client.put(f"{API}/items/{mine}/labels", json={"label": "Tech"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    ok = client.put(f"{API}/items/{mine}/labels", json={"label": "Politics"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text

    # once an admin decided the item, the label is not hers any more
    with writing(engine) as conn:
        review.adjudicate(conn, project=world.project, item_id=mine, tag="Sport", user_id=world.ids["boss"])
    late = put(mine, {"label": "Tech"})
    assert late.status_code == 409
    assert late.json()["detail"] == (f"your label on item {mine} can no longer be changed: "
                                     "an admin has decided this item in the review")
    row = client.get(f"{API}/history", headers=ann).json()[0]
    assert (row["changeable"], row["reason"], row["label"]) == (False, "an admin has decided this item in the review",
                                                                "Politics")
    assert n_changes(engine) == 1 and final(engine, mine)[1] == world.project.tag_id("Sport")


def test_multi_label_sets_change_and_the_final_set_follows(client, world, engine, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=5, multi_label=True,
                                                settings={"audit_fraction": 0.0, "show_item_ids": True})
    tools.add_items(engine, project, 1, target=2, prefix="m")
    tools.add_members(engine, project, ["ann", "bob"])
    api = "/api/projects/ml"
    ann, bob = world.auth("ann"), world.auth("bob")
    item = label_next(client, ann, {"labels": ["A", "B"]}, api)
    got = client.post(f"{api}/next", headers=bob).json()["item"]["id"]
    assert got == item
    client.post(f"{api}/items/{item}/labels", json={"labels": ["A", "B"]}, headers=bob)
    assert final(engine, item) == (2, None, 0b011, "human")
    changed = client.put(f"{api}/items/{item}/labels", json={"labels": ["C", "A"]}, headers=ann)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"item_id": item, "labels": ["A", "C"], "changed": True, "final": None,
                              "final_source": "conflict"}  # B and C now 1 of 2: ties
    assert final(engine, item) == (2, None, None, "conflict")
    back = client.put(f"{api}/items/{item}/labels", json={"labels": ["B", "A"]}, headers=ann)
    assert back.json()["final"] == "A, B" and final(engine, item) == (2, None, 0b011, "human")
    wrong = client.put(f"{api}/items/{item}/labels", json={"label": "A"}, headers=ann)
    assert wrong.status_code == 422 and "multi-label" in wrong.json()["detail"]
    row = client.get(f"{api}/history", headers=ann).json()[0]
    assert (row["labels"], row["label"], row["changes"]) == (["A", "B"], None, 2)
    assert row["external_id"] == "m0"  # the project shows ids


def test_the_page_changes_a_label_with_a_form(client, world, engine):
    ann = world.auth("ann")
    first = label_next(client, ann, {"label": "Sport"})
    csrf = login(client, "ann")
    label_page = client.get("/projects/news/label")
    assert 'href="/projects/news/history"' in label_page.text and 'data-history-key="y"' in label_page.text
    page = client.get("/projects/news/history")
    assert page.status_code == 200 and 'id="row-%d"' % first in page.text
    assert re.search(r'<button type="submit" class="hist-tag current" name="label" value="Sport" aria-current="true" '
                     r'disabled>Sport</button>', page.text)
    done = client.post(f"/projects/news/history/{first}", data={"label": "Politics", "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/projects/news/history?changed={first}#row-{first}"
    shown = client.get(done.headers["location"])
    assert "Your label is now “Politics”." in unescape(shown.text)
    assert final(engine, first)[1] == world.project.tag_id("Politics")
    forged = client.post(f"/projects/news/history/{first}", data={"label": "Tech", "csrf_token": "nope"})
    assert forged.status_code == 403
    missing = client.post("/projects/news/history/424242", data={"label": "Tech", "csrf_token": csrf})
    assert missing.status_code == 404 and "no item 424242 in project" in missing.text
    with writing(engine) as conn:
        review.adjudicate(conn, project=world.project, item_id=first, tag="Tech", user_id=None)
    refused = client.post(f"/projects/news/history/{first}", data={"label": "Sport", "csrf_token": csrf})
    assert refused.status_code == 409 and "an admin has decided this item" in refused.text
    assert "Can no longer be changed" in refused.text
    assert final(engine, first)[1] == world.project.tag_id("Tech") and n_changes(engine) == 1


def test_a_non_member_gets_the_projects_404_page(client, world, engine, tools):
    tools.make_users(engine, [("carl", "labeller")])
    login(client, "carl")
    page = client.get("/projects/news/history")
    assert page.status_code == 404 and "no project named" in unescape(page.text)
