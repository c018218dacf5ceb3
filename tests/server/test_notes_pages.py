"""The flags page, its forms and the data browser's notes filter (issue 14), on both databases,
through an in-process HTTP client."""

from __future__ import annotations

import re

from sqlalchemy import select

from labelloop.store import reading
from labelloop.store.schema import item_notes, items

PASSWORD = "correct horse"  # as in conftest
API = "/api/projects/news"
FLAGS = "/admin/projects/news/flags"


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                follow_redirects=False)
    return csrf_in(client.get("/projects").text)


def noted(client, world, who: str, **body) -> int:
    item = client.post(f"{API}/next", headers=world.auth(who)).json()["item"]["id"]
    if "reason" in body:
        response = client.post(f"{API}/items/{item}/skip", headers=world.auth(who), json=body)
        assert response.status_code == 204, response.text
    else:
        response = client.post(f"{API}/items/{item}/labels", headers=world.auth(who), json={"label": "Sport", **body})
        assert response.status_code == 201, response.text
    return item


def open_notes(engine):
    with reading(engine) as conn:
        return conn.execute(select(item_notes.c.item_id, item_notes.c.kind)
                            .where(item_notes.c.resolved_at.is_(None)).order_by(item_notes.c.id)).all()


def test_the_flags_page_shows_who_what_when_escaped(client, world, engine):
    flagged = noted(client, world, "ann", unsure=True, comment="<script>alert(1)</script> is it sport?")
    skipped = noted(client, world, "bob", reason="needs-context", comment="which team?")
    login(client, "boss")
    page = client.get(FLAGS)
    assert page.status_code == 200
    html = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is it sport?" in html and "<script>alert(1)" not in html
    assert html.index(f'data-item="{skipped}"') < html.index(f'data-item="{flagged}"')  # newest first
    assert "skipped: needs context" in html and "which team?" in html and ">unsure<" in html
    assert 'href="/admin/projects/news/codebook"' in html
    assert re.search(r"<strong>1</strong>\s*unsure", html)
    only_skips = client.get(FLAGS + "?kind=skip").text
    assert f'data-item="{skipped}"' in only_skips and f'data-item="{flagged}"' not in only_skips
    bad = client.get(FLAGS + "?state=nope")
    assert bad.status_code == 422 and "unknown state &#39;nope&#39;: use open, resolved or all" in bad.text


def test_deciding_from_the_flags_page_resolves_the_items_notes(client, world, engine):
    item = noted(client, world, "ann", unsure=True)
    other = noted(client, world, "bob", comment="fine")
    csrf = login(client, "boss")
    answer = client.post(f"{FLAGS}/{item}/decide", data={"label": "Tech", "csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and "decided=" in answer.headers["location"]
    with reading(engine) as conn:
        row = conn.execute(select(items.c.label_source, items.c.adjudicated_tag_id).where(items.c.id == item)).one()
    assert row.label_source == "human" and row.adjudicated_tag_id == world.project.tags[2].id
    assert open_notes(engine) == [(other, "comment")]
    unknown = client.post(f"{FLAGS}/{other}/decide", data={"label": "Nope", "csrf_token": csrf})
    assert unknown.status_code == 400 and "Nope" in unknown.text


def test_resolving_needs_an_admin_and_the_csrf_token(client, world, engine):
    item = noted(client, world, "ann", comment="typo")
    with reading(engine) as conn:
        note_id = conn.execute(select(item_notes.c.id)).scalar_one()
    csrf = login(client, "ann")
    assert client.get(FLAGS).status_code == 403
    assert client.post(f"{FLAGS}/notes/{note_id}/resolve", data={"csrf_token": csrf}).status_code == 403
    assert client.post(f"{FLAGS}/{item}/decide", data={"label": "Tech", "csrf_token": csrf}).status_code == 403
    csrf = login(client, "boss")
    assert client.post(f"{FLAGS}/notes/{note_id}/resolve", data={}).status_code == 403  # no CSRF token
    assert open_notes(engine) == [(item, "comment")]
    done = client.post(f"{FLAGS}/notes/{note_id}/resolve", data={"csrf_token": csrf})
    assert done.status_code == 200 and "Note marked resolved." in done.text  # after the 303
    assert open_notes(engine) == []
    assert "No open notes" in client.get(FLAGS).text
    assert "resolved by boss" in client.get(FLAGS + "?state=resolved").text
    assert client.post(f"{FLAGS}/notes/999999/resolve", data={"csrf_token": csrf}).status_code == 404


def test_the_data_browser_filters_flagged_and_commented_items(client, world, engine):
    flagged = noted(client, world, "ann", unsure=True)
    commented = noted(client, world, "ann", comment="see body")
    plain = noted(client, world, "ann")
    login(client, "boss")

    def shown(query: str) -> set[int]:
        page = client.get(f"/admin/projects/news/browse?{query}")
        assert page.status_code == 200, page.text
        return {int(i) for i in re.findall(r'href="/admin/projects/news/items/(\d+)"', page.text)}

    assert shown("notes=flagged") == {flagged}
    assert shown("notes=commented") == {commented}
    assert shown("notes=open") == {flagged, commented}
    assert plain in shown("")
    assert client.get("/admin/projects/news/browse?notes=bogus").status_code == 400
    item_page = client.get(f"/admin/projects/news/items/{commented}").text
    assert "see body" in item_page and "Notes" in item_page


def test_a_multi_label_item_commented_then_decided_as_a_set(client, world, engine, tools):
    from labelloop.store import projects as store_projects
    from labelloop.store import writing

    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=5, multi_label=True,
                                                settings={"audit_fraction": 0.0})
    tools.add_items(engine, project, 3, prefix="m")
    tools.add_members(engine, project, ["ann"])
    item = client.post("/api/projects/ml/next", headers=world.auth("ann")).json()["item"]["id"]
    answer = client.post(f"/api/projects/ml/items/{item}/labels", headers=world.auth("ann"),
                         json={"labels": ["A", "B"], "comment": "B only if it runs on a server", "unsure": True})
    assert answer.status_code == 201
    assert answer.json() == {"item_id": item, "labels": ["A", "B"], "comment": "B only if it runs on a server",
                             "unsure": True}
    csrf = login(client, "boss")
    page = client.get("/admin/projects/ml/flags").text
    assert "B only if it runs on a server" in page and "label: A, B" in page
    assert page.count('name="labels"') == 3  # the set's checkboxes
    done = client.post(f"/admin/projects/ml/flags/{item}/decide", data={"labels": ["C"], "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    with reading(engine) as conn:
        row = conn.execute(select(items.c.adjudicated_mask, items.c.label_mask).where(items.c.id == item)).one()
    assert row.adjudicated_mask == row.label_mask == 1 << 2
    assert open_notes(engine) == []
