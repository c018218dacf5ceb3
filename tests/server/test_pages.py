"""The labeller-facing HTML pages, through a real in-process HTTP client, on both databases."""

from __future__ import annotations

from markupsafe import escape
import json
import re
from datetime import UTC, datetime

from sqlalchemy import insert

from labelloop.store import writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items

PASSWORD = "correct horse"  # as in conftest
HOSTILE_TITLE = '<script>alert("t")</script> **bold** & <b>x</b>'
HOSTILE_BODY = "para one\n\n<img src=x onerror=alert(1)>\n\n# heading\n</script><script>alert(2)</script>"


def csrf_of(client) -> str:
    return csrf_in(client.get("/login").text)


def login(client, name: str) -> str:
    csrf = csrf_of(client)
    response = client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    # logging in starts a fresh session with a new token: every page's forms carry it
    return csrf_in(client.get("/projects").text)


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def add_hostile_item(engine, project) -> None:
    now = datetime.now(UTC)
    with writing(engine) as conn:
        conn.execute(
            insert(items).values(
                project_id=project.id, external_id="evil<1>", display={"title": HOSTILE_TITLE, "body": HOSTILE_BODY},
                text=HOSTILE_TITLE + "\n" + HOSTILE_BODY, rand=rand_key(project.seed, "evil"),
                created_at=now, updated_at=now,
            )
        )


def test_pages_require_login(client, world):
    for path in ("/projects", "/projects/news/label", "/admin", "/admin/users",
                 "/admin/projects/news/browse", "/admin/projects/news/tags",
                 "/admin/projects/news/charts/balance.png"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=" + path), path


def test_project_list_shows_progress_and_own_count(client, world):
    csrf = login(client, "ann")
    api = "/api/projects/news"
    for _ in range(2):
        item = client.post(f"{api}/next", headers={"X-CSRF-Token": csrf}).json()["item"]
        assert client.post(
            f"{api}/items/{item['id']}/labels", json={"label": "Tech"}, headers={"X-CSRF-Token": csrf}
        ).status_code == 201
    page = client.get("/projects")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = re.sub(r"\s+", " ", page.text)
    assert "2 of 5 labelled (40%)" in text
    assert "you: 2" in text
    assert 'href="/projects/news/label"' in text


def test_label_page_shell_config_and_keyboard_hints(client, world):
    csrf = login(client, "bob")
    page = client.get("/projects/news/label")
    assert page.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    config = json.loads(re.search(r'<script type="application/json" id="label-config">(.*?)</script>',
                                  page.text, re.S).group(1))
    assert config["tags"] == ["Sport", "Politics", "Tech"]
    assert config["api"] == "/api/projects/news"
    assert config["csrf"] == csrf
    assert config["lease_seconds"] == world.settings.lease_seconds
    assert config["stats"] == {"items": 5, "labelled": 0, "yours_today": 0, "yours_total": 0}
    # one button per tag with its number key, in tag order
    buttons = re.findall(r'data-tag="([^"]+)" data-key="(\d)"', page.text)
    assert buttons == [("Sport", "1"), ("Politics", "2"), ("Tech", "3")]
    assert '<script src="/static/label.js" defer></script>' in page.text
    assert client.get("/static/label.js").status_code == 200
    assert client.get("/static/label.css").status_code == 200
    assert client.get("/projects/nope/label").status_code == 404


def test_hostile_names_and_texts_are_escaped(client, world, engine, tools):
    hostile_tag = '<img src=x onerror="alert(3)">'
    with writing(engine) as conn:
        from labelloop.store import projects as store_projects

        store_projects.create_project(conn, name="<script>p", labels=[hostile_tag, "ok"])
    add_hostile_item(engine, world.project)
    login(client, "boss")
    listing = client.get("/projects")
    assert "<script>p" not in listing.text
    assert "&lt;script&gt;p" in listing.text
    label = client.get("/projects/%3Cscript%3Ep/label")
    assert label.status_code == 200
    assert "<script>p" not in label.text and hostile_tag not in label.text
    assert str(escape(hostile_tag)) in label.text  # the Jinja2 (markupsafe) escaping
    # the JSON config cannot close its <script> element
    blob = re.search(r'id="label-config">(.*?)</script>', label.text, re.S).group(1)
    assert "<" not in blob and json.loads(blob)["project"] == "<script>p"
    # the data browser shows the hostile item's text escaped, paragraphs kept as text
    page = client.get("/admin/projects/news/browse", params={"ext": "alert"})  # "id or text contains"
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "evil&lt;1&gt;" in page.text
    # a full-text search marks the matches in the escaped text, and only there
    page = client.get("/admin/projects/news/browse", params={"q": "alert"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;<mark>alert</mark>(&#34;t&#34;)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=<mark>alert</mark>(1)&gt;" in page.text


def test_login_page_renders_the_form(client, world):
    page = client.get("/login?next=/projects")
    assert page.status_code == 200
    assert 'action="/login"' in page.text and 'name="next" value="/projects"' in page.text
    assert 'name="username"' in page.text and 'type="password"' in page.text
