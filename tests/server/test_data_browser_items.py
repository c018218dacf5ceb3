"""The data browser cuts long fields and links each item to its own page, which shows the item
whole; on SQLite and PostgreSQL through the real app."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import insert, select

from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.items import rand_key
from labelloop.store.schema import items

PASSWORD = "correct horse"  # as in conftest
BIG = 1_000_000
BROWSE = "/admin/projects/news/browse"


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> None:
    client.cookies.clear()
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf},
                           follow_redirects=False)
    assert response.status_code == 303


def add_big_item(engine, world) -> int:
    """An item with a 3,000-character title, a 1 MB body of one character and markup, labelled by ann."""
    now = datetime.now(UTC)
    display = {"title": "T" * 3000, "body": "y" * BIG, "note": "<script>alert(1)</script> & <b>x</b>"}
    with writing(engine) as conn:
        store_projects.set_import_columns(conn, project_id=world.project.id, id_column="id",
                                          display_columns=["title", "body", "note"])
        item_id = conn.execute(insert(items).values(
            project_id=world.project.id, external_id="big-1", display=display, text="big", target_labels=2,
            rand=rand_key(world.project.seed, "big-1"), created_at=now, updated_at=now,
        )).inserted_primary_key[0]
    with writing(engine) as conn:  # ann labels it
        project = store_projects.get_project(conn, name="news")
        lease = queue.try_claim(conn, project=project, user_id=world.ids["ann"], item_id=item_id, lease_seconds=60)
        assert lease.item_id == item_id
        labelling.label_item(conn, project=project, user_id=world.ids["ann"], item_id=item_id, tag="Tech")
    return item_id


def test_the_browser_cuts_long_fields_and_links_the_full_item(client, world, engine):
    item_id = add_big_item(engine, world)
    login(client, "boss")
    page = client.get(BROWSE)
    assert page.status_code == 200
    assert len(page.content) < 60_000  # six items, one of them over 1 MB
    body = page.text
    assert "y" * 2000 + '<span class="cut"' in body and "y" * 2001 not in body
    assert "T" * 2000 + '<span class="cut"' in body and "T" * 2001 not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in body and "<script>alert" not in body
    assert f'<a class="item-link" href="/admin/projects/news/items/{item_id}">open</a>' in body
    assert f'href="/admin/projects/news/items/{item_id}">Long fields are cut here' in body
    short = [i for i in re.findall(r'href="/admin/projects/news/items/(\d+)">Long fields', body)]
    assert short == [str(item_id)]  # only the item with long fields says so

    full = client.get(f"/admin/projects/news/items/{item_id}")
    assert full.status_code == 200 and full.headers["cache-control"] == "no-store"
    text = full.text
    assert "y" * BIG in text and "T" * 3000 in text  # whole
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text  # escaped
    assert "big-1" in text and f"#{item_id}" in text
    assert re.search(r"<span>ann</span>: <span class=\"badge tag\">Tech</span>", text)
    assert "1 of 2 labels" in text
    # the fields in the project's column order
    assert text.index(">title</h2>") < text.index(">body</h2>") < text.index(">note</h2>")


def test_the_item_page_refuses_what_it_should(client, world, engine):
    with writing(engine) as conn:
        other = store_projects.create_project(conn, name="other", labels=["A"], seed=2)
        now = datetime.now(UTC)
        foreign = conn.execute(insert(items).values(
            project_id=other.id, external_id="x", display={"t": "x"}, text="x", rand=1, created_at=now,
            updated_at=now)).inserted_primary_key[0]
    anonymous = client.get("/admin/projects/news/items/1", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    login(client, "ann")
    assert client.get("/admin/projects/news/items/1").status_code == 403  # labellers: no admin pages
    login(client, "boss")
    assert client.get("/admin/projects/news/items/1").status_code == 200
    cases = {
        f"/admin/projects/news/items/{foreign}": (404, f"no item {foreign} in project &#39;news&#39;"),
        "/admin/projects/news/items/999999": (404, "no item 999999 in project"),
        "/admin/projects/nope/items/1": (404, "no project named"),
        "/admin/projects/news/items/0": (400, "invalid form or query"),
        "/admin/projects/news/items/-3": (400, "invalid form or query"),
        "/admin/projects/news/items/abc": (400, "invalid form or query"),
        "/admin/projects/news/items/99999999999999999999999": (400, "invalid form or query"),
    }
    for path, (status, words) in cases.items():
        response = client.get(path)
        assert response.status_code == status and words in response.text, (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
