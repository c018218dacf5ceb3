"""The data browser's full-text search: matches, highlight (escaped), count and cap, 422; both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import insert

from labelloop.store import writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items

PASSWORD = "correct horse"
BROWSE = "/admin/projects/news/browse"


def login(client, name):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303


def add(engine, project, rows):
    now = datetime.now(UTC)
    with writing(engine) as conn:
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": ext, "display": {"body": body}, "text": body,
             "rand": rand_key(project.seed, ext), "created_at": now, "updated_at": now} for ext, body in rows])


def shown(page):
    return re.findall(r'<td class="mono small nowrap">([^<]+)<', page.text)


def test_search_highlights_counts_and_refuses_bad_syntax(client, world, engine):
    add(engine, world.project, [
        ("s1", "Cheap <b>flights</b> to Bali & back"), ("s2", "flight delays again"),
        ("s3", "new york flights"), ("s4", "nothing to see")])
    login(client, "boss")
    page = client.get(BROWSE, params={"q": "flight*"})
    assert page.status_code == 200
    assert sorted(shown(page)) == ["s1", "s2", "s3"]
    assert "<mark>flights</mark>" in page.text and "<mark>flight</mark>" in page.text
    assert "&lt;b&gt;" in page.text and "<b>flights" not in page.text  # the item's own HTML is escaped
    assert "3 items match" in page.text
    assert shown(client.get(BROWSE, params={"q": '"new york" OR bali'})) == ["s1", "s3"]
    assert shown(client.get(BROWSE, params={"q": "flights -bali"})) == ["s3"]
    assert "1 item matches" in client.get(BROWSE, params={"q": "delays"}).text
    bad = client.get(BROWSE, params={"q": '"unclosed'})
    assert bad.status_code == 422 and "unclosed quote" in bad.text
    assert client.get(BROWSE, params={"q": "-only"}).status_code == 422
    api_like = client.get(BROWSE, params={"q": "<script>alert(1)</script>"})
    assert api_like.status_code == 200 and "<script>alert" not in api_like.text


def test_more_than_ten_thousand_matches_say_so(client, world, engine, tools):
    tools.add_items(engine, world.project, 10_005, prefix="m")  # text "title N body"
    login(client, "boss")
    page = client.get(BROWSE, params={"q": "body", "size": 25})
    assert page.status_code == 200 and "more than 10,000 items match" in page.text
    assert len(shown(page)) == 25
