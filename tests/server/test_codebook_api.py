"""The codebook over HTTP (server/codebook/): the JSON API, roles and membership, CSRF, the admin
page's forms and the pin forms of the item and review pages, on both databases."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from labelloop.store import projects as store_projects
from labelloop.store import labelling, queue, reading, writing
from labelloop.store.schema import annotations, items

API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest


def item_ids(engine, project="news"):
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        return list(conn.execute(select(items.c.id).where(items.c.project_id == proj.id).order_by(items.c.id)).scalars())


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def test_admins_edit_members_read_and_labels_record_the_version(client, world, engine):
    boss, ann = world.auth("boss"), world.auth("ann")
    empty = client.get(f"{API}/codebook", headers=ann)
    assert empty.status_code == 200
    assert empty.json()["version"] == 0
    assert [t["tag"] for t in empty.json()["tags"]] == ["Sport", "Politics", "Tech"]

    put = client.put(f"{API}/codebook/Sport", json={"definition": "**Games** <script>alert(1)</script>"}, headers=boss)
    assert put.status_code == 200, put.text
    assert put.json() == {"tag": "Sport", "version": 1, "changed": True,
                          "html": "<p><strong>Games</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>"}
    same = client.put(f"{API}/codebook/Sport", json={"definition": "**Games** <script>alert(1)</script>"}, headers=boss)
    assert same.json()["changed"] is False and same.json()["version"] == 1

    book = client.get(f"{API}/codebook", headers=ann).json()
    sport = book["tags"][0]
    assert book["version"] == 1
    assert sport["definition"] == "**Games** <script>alert(1)</script>"
    assert "<script>" not in sport["html"]
    assert (sport["version"], sport["updated_by"]) == (1, "boss")

    # a label made now records version 1
    nxt = client.post(f"{API}/next", headers=ann).json()["item"]
    assert client.post(f"{API}/items/{nxt['id']}/labels", json={"label": "Tech"}, headers=ann).status_code == 201
    with reading(engine) as conn:
        assert conn.execute(select(annotations.c.codebook_version)).scalars().all() == [1]


def test_roles_membership_and_refusals(client, world, engine):
    ids = item_ids(engine)
    ann, boss = world.auth("ann"), world.auth("boss")
    # labellers cannot edit or pin
    assert client.put(f"{API}/codebook/Sport", json={"definition": "x"}, headers=ann).status_code == 403
    assert client.post(f"{API}/codebook/Sport/examples/{ids[0]}", headers=ann).status_code == 403
    assert client.delete(f"{API}/codebook/Sport/examples/{ids[0]}", headers=ann).status_code == 403
    # a non-member sees nothing: the same 404 as for a project that does not exist
    with writing(engine) as conn:
        store_projects.create_project(conn, name="secret", labels=["A"], seed=1)
    hidden = client.get("/api/projects/secret/codebook", headers=ann)
    missing = client.get("/api/projects/nothing/codebook", headers=ann)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("secret", "X") == missing.json()["detail"].replace("nothing", "X")
    # no login: 401 before any lookup
    assert client.get(f"{API}/codebook").status_code == 401
    # refusals, one line each
    bad = client.put(f"{API}/codebook/Nope", json={"definition": "x"}, headers=boss)
    assert bad.status_code == 422 and "unknown tag 'Nope'" in bad.json()["detail"]
    too_long = client.put(f"{API}/codebook/Sport", json={"definition": "x" * 20_001}, headers=boss)
    assert too_long.status_code == 422 and "at most 20,000" in too_long.json()["detail"]
    wrong = client.put(f"{API}/codebook/Sport", json={"definition": 5}, headers=boss)
    assert wrong.status_code == 422
    assert client.put(f"{API}/codebook/Sport", content="x", headers=boss).status_code == 415
    assert client.post(f"{API}/codebook/Sport/examples/99999999", headers=boss).status_code == 404
    with reading(engine) as conn:
        assert conn.execute(select(annotations)).first() is None
    assert client.get(f"{API}/codebook", headers=boss).json()["version"] == 0


def test_pin_and_unpin_examples(client, world, engine):
    ids = item_ids(engine)
    boss, ann = world.auth("boss"), world.auth("ann")
    first = client.post(f"{API}/codebook/Tech/examples/{ids[1]}", headers=boss)
    assert first.status_code == 201 and first.json() == {"tag": "Tech", "item_id": ids[1], "pinned": True}
    assert client.post(f"{API}/codebook/Tech/examples/{ids[1]}", headers=boss).status_code == 200
    # a labeller sees the example's text but not its external id (show_item_ids is off)
    tech = client.get(f"{API}/codebook", headers=ann).json()["tags"][2]
    assert tech["examples"] == [{"item_id": ids[1], "external_id": None, "text": "title 1 body"}]
    assert client.get(f"{API}/codebook", headers=boss).json()["tags"][2]["examples"][0]["external_id"] == "e1"
    assert client.get(f"{API}/codebook", headers=boss).json()["version"] == 0  # no definition changed
    assert client.delete(f"{API}/codebook/Tech/examples/{ids[1]}", headers=boss).json()["pinned"] is False
    gone = client.delete(f"{API}/codebook/Tech/examples/{ids[1]}", headers=boss)
    assert gone.status_code == 404 and "not a pinned example" in gone.json()["detail"]


def test_tags_with_slashes_and_spaces(client, world, engine):
    with writing(engine) as conn:
        store_projects.add_tags(conn, project_id=world.project.id, names=["Art / Culture"])
    boss = world.auth("boss")
    put = client.put(f"{API}/codebook/Art%20%2F%20Culture", json={"definition": "museums"}, headers=boss)
    assert put.status_code == 200, put.text
    ids = item_ids(engine)
    assert client.post(f"{API}/codebook/Art%20%2F%20Culture/examples/{ids[0]}", headers=boss).status_code == 201
    tag = client.get(f"{API}/codebook", headers=boss).json()["tags"][3]
    assert (tag["tag"], tag["definition"], [x["item_id"] for x in tag["examples"]]) == \
        ("Art / Culture", "museums", [ids[0]])


def test_cookie_writes_need_the_csrf_token(client, world, engine):
    login(client, "boss")
    refused = client.put(f"{API}/codebook/Sport", json={"definition": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    page = client.get("/admin/projects/news/codebook").text
    ok = client.put(f"{API}/codebook/Sport", json={"definition": "x"}, headers={"X-CSRF-Token": csrf_in(page)})
    assert ok.status_code == 200


def test_the_admin_page_edits_definitions_and_unpins(client, world, engine):
    ids = item_ids(engine)
    csrf = login(client, "boss")
    page = client.get("/admin/projects/news/codebook")
    assert page.status_code == 200 and "Codebook version <strong id=\"codebook-version\">0</strong>" in page.text
    saved = client.post("/admin/projects/news/codebook", data={
        "csrf_token": csrf, "tag": "Politics", "definition": "Elections, [parties](javascript:alert(1)), <b onclick=x>laws</b>"},
        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved#tag-2")
    page = client.get(saved.headers["location"]).text
    assert "Definition saved" in page
    assert '<strong id="codebook-version">1</strong>' in page
    assert "onclick=x&gt;" in page and "<b onclick" not in page  # raw HTML shows as text
    assert 'href="javascript' not in page
    # without the token nothing is saved
    refused = client.post("/admin/projects/news/codebook", data={"tag": "Sport", "definition": "y"})
    assert refused.status_code == 403
    # an unknown tag re-renders the page with the error
    bad = client.post("/admin/projects/news/codebook", data={"csrf_token": csrf, "tag": "Nope", "definition": "draft"})
    assert bad.status_code == 400 and "unknown tag &#39;Nope&#39;" in bad.text
    # pin from the item page (the form is there), then unpin from the codebook page
    item_page = client.get(f"/admin/projects/news/items/{ids[2]}").text
    assert 'action="/admin/projects/news/codebook/pin"' in item_page
    pinned = client.post("/admin/projects/news/codebook/pin",
                         data={"csrf_token": csrf, "tag": "Sport", "item_id": str(ids[2]), "back": "item"},
                         follow_redirects=False)
    assert pinned.status_code == 303 and pinned.headers["location"] == f"/admin/projects/news/items/{ids[2]}?done=pinned"
    assert "pinned example of" in unescape(client.get(pinned.headers["location"]).text)
    page = client.get("/admin/projects/news/codebook").text
    assert f"#{ids[2]} e2" in page
    unpinned = client.post("/admin/projects/news/codebook/unpin",
                           data={"csrf_token": csrf, "tag": "Sport", "item_id": str(ids[2])}, follow_redirects=False)
    assert unpinned.status_code == 303
    assert f"#{ids[2]} e2" not in client.get("/admin/projects/news/codebook").text
    # labellers get 403 on the page and the forms
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, "ann")
    assert client.get("/admin/projects/news/codebook").status_code == 403
    assert client.post("/admin/projects/news/codebook/pin",
                       data={"csrf_token": csrf, "tag": "Sport", "item_id": str(ids[2])}).status_code == 403


def test_the_review_page_shows_the_codebook_and_pins(client, world, engine):
    ids = item_ids(engine)
    boss = world.auth("boss")
    client.put(f"{API}/codebook/Sport", json={"definition": "Matches *and* games"}, headers=boss)
    with writing(engine) as conn:
        conn.execute(items.update().where(items.c.project_id == world.project.id).values(target_labels=2))
    for who, tag in (("ann", "Sport"), ("bob", "Tech")):
        with writing(engine) as conn:
            assert isinstance(queue.try_claim(conn, project=world.project, user_id=world.ids[who], item_id=ids[0],
                                              lease_seconds=600), queue.Lease)
            labelling.label_item(conn, project=world.project, user_id=world.ids[who], item_id=ids[0], tag=tag)
    csrf = login(client, "boss")
    page = client.get("/admin/projects/news/review").text
    assert "Matches <em>and</em> games" in page
    item = re.search(r'id="item-(\d+)"', page).group(1)
    assert 'action="/admin/projects/news/codebook/pin"' in page
    pinned = client.post("/admin/projects/news/codebook/pin",
                         data={"csrf_token": csrf, "tag": "Tech", "item_id": item, "back": "review"},
                         follow_redirects=False)
    assert pinned.status_code == 303 and pinned.headers["location"] == f"/admin/projects/news/review#item-{item}"
    assert [x["item_id"] for x in client.get(f"{API}/codebook", headers=boss).json()["tags"][2]["examples"]] == [int(item)]


def test_the_dashboard_shows_agreement_per_codebook_version(client, world, engine):
    ids = item_ids(engine)
    with writing(engine) as conn:
        conn.execute(items.update().where(items.c.project_id == world.project.id).values(target_labels=2))

    def give(who, item, tag):
        with writing(engine) as conn:
            assert isinstance(queue.try_claim(conn, project=world.project, user_id=world.ids[who], item_id=item,
                                              lease_seconds=600), queue.Lease)
            labelling.label_item(conn, project=world.project, user_id=world.ids[who], item_id=item, tag=tag)

    login(client, "boss")
    give("ann", ids[0], "Sport"), give("bob", ids[0], "Tech")
    assert 'id="agreement-by-version"' not in client.get("/admin/projects/news/dashboard").text  # no codebook yet
    client.put(f"{API}/codebook/Sport", json={"definition": "games"}, headers=world.auth("boss"))
    give("ann", ids[1], "Sport"), give("bob", ids[1], "Sport")
    page = client.get("/admin/projects/news/dashboard").text
    table = page[page.index('id="agreement-by-version"'):]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table[: table.index("</table>")])
    assert cells[:3] == ["none (before the codebook)", "2", "1"] and cells[6:9] == ["1", "2", "1"]
    assert cells[4] == "0.0%" and cells[10] == "100.0%"
