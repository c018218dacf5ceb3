"""Hostile input against the web server, on SQLite and PostgreSQL: everything is refused or
rendered inert, and the database is unchanged wherever it should be.

Cases (the CLI's share, names, imports and export paths, is in tests/cli/test_hostile_cli.py):
 1 HTML/script in a post: JSON escaped, the labelling page's script sets text only
 2 HTML/script in tags, user and project names: escaped on the labelling page, admin overview,
   users page and tags page (its audit log too)
 3 SQL fragments in the data browser's search box and filters
 4 SQL fragments in user names (admin form) and project names (URLs), and in a login
 5 LIKE wildcards in a search match themselves
 6 control characters and Unicode direction overrides in posts round-trip as text
 7 NUL characters in URLs (paths, searches, filters): 400
 8 NUL characters in form fields (login, tag rename): refused, nothing stored
 9 ids out of range or negative in URLs: 422 / 400, never a 500
10 path traversal on /static: 404, never a file outside it
11 oversize bodies: 413 (API, fast path and session route, forms)
12 wrong content types: 415 for the JSON API; JSON or a missing token for a form: refused
13 malformed JSON: truncated, wrong shapes, extra fields, bad UTF-8, nested too deep: 4xx
14 unknown methods: 405
15 forged session cookies (garbage, signed with another key): anonymous
16 CSRF tokens missing, forged or from another session: 403, nothing written
17 open redirects after login: only local paths are followed
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import insert, select, text

from labelloop.store import writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest
SCRIPT = '<script>alert("x")</script>'
HOSTILE_PROJECT = '<script>alert("p")<\\script>'  # project names may not contain "/"
IMG = "<img src=x onerror=alert(1)>"
STATIC = Path(__file__).resolve().parents[2] / "src" / "labelloop" / "server" / "static"
# Tables whose content hostile requests must not change (login_failures and meta may change).
TABLES = ["users", "api_tokens", "projects", "tags", "items", "annotations", "assignments", "audit_log"]


def snapshot(engine) -> str:
    """A digest of every row of TABLES (api_tokens.last_used_at aside: using a token sets it)."""
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings().all()
            for row in rows:
                digest.update(repr(sorted((k, v) for k, v in row.items() if k != "last_used_at")).encode())
    return digest.hexdigest()


def add_item(engine, project, external_id: str, title: str, body: str) -> None:
    now = datetime.now(UTC)
    with writing(engine) as conn:
        conn.execute(insert(items).values(
            project_id=project.id, external_id=external_id, display={"title": title, "body": body},
            text=f"{title}\n{body}", rand=rand_key(project.seed, external_id) - 2**62,  # served first
            created_at=now, updated_at=now))


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303
    return csrf_in(client.get("/projects").text)


def browse_ids(page: str) -> list[str]:
    return re.findall(r'<td class="mono small nowrap">([^<]*)<div class="muted">', page)


def no_raw_markup(page: str) -> bool:
    return all(s not in page for s in (SCRIPT, IMG, HOSTILE_PROJECT, "<script>alert", "<img src=x"))


# ---- 1, 2, 6: markup and control characters are text -------------------------------------------
def test_markup_in_posts_tags_and_names_is_inert_on_every_page(client, world, engine):
    add_item(engine, world.project, "x<1>", SCRIPT, f"{IMG}\n\u202eevil\u202c \x1b[31mred\x07")
    with writing(engine) as conn:
        store_projects.add_tags(conn, project_id=world.project.id, names=[IMG])
        store_projects.create_project(conn, name=HOSTILE_PROJECT, labels=[SCRIPT, "ok"])
        store_users.create_user(conn, name="<b>mallory</b>", role="labeller", password=PASSWORD)
    # the post comes back as JSON text: <, > and & escaped, control characters as \u escapes
    got = client.post(f"{API}/next", headers=world.auth("ann"))
    assert got.status_code == 200 and b"<" not in got.content and b"\x1b" not in got.content
    assert got.json()["item"]["display"] == {"title": SCRIPT, "body": f"{IMG}\n\u202eevil\u202c \x1b[31mred\x07"}
    assert client.post(f"{API}/items/{got.json()['item']['id']}/labels", json={"label": IMG},
                       headers=world.auth("ann")).status_code == 201
    # the page's script puts item text on the page as text only
    script = re.sub(r"/\*.*?\*/|//[^\n]*", "", (STATIC / "label.js").read_text(), flags=re.S)  # code only
    assert "textContent" in script
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)
    csrf = login(client, "boss")
    pages = {
        "label page": client.get("/projects/news/label"),
        "hostile project's label page": client.get("/projects/" + quote(HOSTILE_PROJECT, safe="") + "/label"),
        "project list": client.get("/projects"),
        "admin overview": client.get("/admin"),
        "users": client.get("/admin/users"),
        "tags": client.get("/admin/projects/news/tags"),
        "browse": client.get("/admin/projects/news/browse"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert no_raw_markup(page.text) and "<b>mallory" not in page.text, name
    assert "&lt;b&gt;mallory&lt;/b&gt;" in pages["users"].text
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["tags"].text
    assert "&lt;script&gt;" in pages["admin overview"].text
    config = re.search(r'id="label-config">(.*?)</script>', pages["hostile project's label page"].text, re.S).group(1)
    assert "<" not in config and json.loads(config)["tags"] == [SCRIPT, "ok"]
    # a rename to markup, shown in the tags page's audit log, stays text
    renamed = client.post("/admin/projects/news/tags/rename", data={"old": "Tech", "new": SCRIPT, "csrf_token": csrf},
                          follow_redirects=True)
    assert renamed.status_code == 200 and no_raw_markup(renamed.text)
    assert "renamed “Tech” to “&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;”" in renamed.text


# ---- 3, 4, 5: SQL fragments and wildcards are plain strings -----------------------------------------
SQL = ["' OR '1'='1", "'; DROP TABLE items; --", "\" OR 1=1 --", "1; DELETE FROM users", "%' UNION SELECT * FROM users --"]


def test_sql_fragments_in_search_and_filters_match_nothing_and_change_nothing(client, world, engine):
    add_item(engine, world.project, "sale", "50% off", "a_b c")
    login(client, "boss")
    before = snapshot(engine)
    for fragment in SQL:
        found = client.get("/admin/projects/news/browse", params={"ext": fragment})  # id or text contains
        assert found.status_code == 200 and browse_ids(found.text) == [], fragment
        searched = client.get("/admin/projects/news/browse", params={"q": fragment})  # full-text search
        assert searched.status_code in (200, 422) and browse_ids(searched.text) == [], fragment
        for name in ("labeller", "tag", "source", "sort", "after"):
            response = client.get("/admin/projects/news/browse", params={name: fragment})
            assert response.status_code in (200, 400), (name, fragment)
            assert browse_ids(response.text) in ([], browse_ids(client.get("/admin/projects/news/browse").text))
        assert client.get(f"/api/projects/{fragment}/stats", headers=world.auth("ann")).status_code == 404
    assert snapshot(engine) == before
    # LIKE wildcards match themselves
    assert browse_ids(client.get("/admin/projects/news/browse", params={"ext": "%"}).text) == ["sale"]
    assert browse_ids(client.get("/admin/projects/news/browse", params={"ext": "a_b"}).text) == ["sale"]
    assert browse_ids(client.get("/admin/projects/news/browse", params={"ext": "_"}).text) == ["sale"]


def test_sql_fragments_in_user_names_and_logins(client, world, engine):
    csrf = login(client, "boss")
    name = "robert');DROP_TABLE_users;--"
    created = client.post("/admin/users", data={"name": name, "role": "labeller", "password": "password 1234",
                                                "csrf_token": csrf})
    assert created.status_code in (200, 303)
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM users ORDER BY name"))]
    assert names == sorted(["ann", "bob", "boss", name])
    client.cookies.clear()
    before = snapshot(engine)
    for fragment in [*SQL, "boss' --", "boss'/*"]:
        csrf = csrf_in(client.get("/login").text)
        response = client.post("/login", data={"username": fragment, "password": "' OR '1'='1", "csrf_token": csrf},
                               follow_redirects=False)
        assert response.status_code in (401, 429), fragment
        assert client.get("/api/me").status_code == 401
    assert snapshot(engine) == before


# ---- 7, 8, 9: NUL characters and out-of-range ids ---------------------------------------------------
def test_nul_characters_and_out_of_range_ids_are_refused_without_a_server_error(client, world, engine):
    csrf = login(client, "boss")
    before = snapshot(engine)
    for path in ["/api/projects/ne%00ws/stats", "/admin/projects/news/browse?q=a%00b",
                 "/admin/projects/news/browse?labeller=x%00", "/projects/news%00/label"]:
        response = client.get(path)
        assert response.status_code == 400 and "NUL" in response.text, path
    ann = {**world.auth("ann"), "content-type": "application/json"}
    for item_id in ("0", "-1", "9223372036854775808", "99999999999999999999"):
        for action in ("labels", "skip", "renew"):
            response = client.post(f"{API}/items/{item_id}/{action}", content=b'{"label": "Tech"}', headers=ann)
            assert response.status_code in (404, 422), (item_id, action, response.status_code)
    for path in ["/admin/users/99999999999999999999/disable", "/admin/users/2147483648/password",
                 f"/admin/users/{world.ids['ann']}/tokens/99999999999999999999/revoke", "/admin/users/-5/enable"]:
        response = client.post(path, data={"csrf_token": csrf})
        assert response.status_code in (400, 404, 422), path
    renamed = client.post("/admin/projects/news/tags/rename", data={"old": "Tech\x00", "new": "X", "csrf_token": csrf})
    assert renamed.status_code in (400, 404)
    added = client.post("/admin/projects/news/tags", data={"name": "a\x00b", "csrf_token": csrf})
    assert added.status_code == 400
    client.cookies.clear()
    csrf = csrf_in(client.get("/login").text)
    nul_login = client.post("/login", data={"username": "boss\x00", "password": PASSWORD, "csrf_token": csrf})
    assert nul_login.status_code == 401 and "wrong user name or password" in nul_login.text
    assert snapshot(engine) == before


# ---- 10: no file outside /static ----------------------------------------------------------------------
def test_static_files_never_leave_their_folder(client, world):
    assert client.get("/static/label.js").status_code == 200
    for path in ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2fapp.py",
                 "/static/....//app.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
                 "/static/..%5capp.py", "/static/templates/../../app.py"]:
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert b"create_app" not in response.content and b"root:" not in response.content, path


# ---- 11-14: bodies, content types, JSON, methods --------------------------------------------------
def test_oversize_bodies_wrong_types_malformed_json_and_methods(client, world, engine):
    ann = world.auth("ann")
    item = client.post(f"{API}/next", headers=ann).json()["item"]["id"]
    csrf = login(client, "bob")
    bob_item = client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).json()["item"]["id"]
    before = snapshot(engine)
    routes = {  # the bearer fast path and the session route of the same call
        "fast": (f"{API}/items/{item}/labels", ann),
        "session": (f"{API}/items/{bob_item}/labels", {"X-CSRF-Token": csrf}),
    }
    json_type = {"content-type": "application/json"}
    for kind, (url, auth) in routes.items():
        assert client.post(url, content=b"{" + b" " * 70_000 + b"}", headers={**auth, **json_type}).status_code == 413
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
            headers = {**auth, **({"content-type": content_type} if content_type else {})}
            assert client.post(url, content=b'{"label": "Tech"}', headers=headers).status_code == 415, (kind, content_type)
        for body in [b'{"label": ', b"", b"[1]", b'"Tech"', b"null", b'{"label": 3}', b'{"label": "Tech", "x": 1}',
                     b'{"label": "\xff"}', b'{"label": NaN}', b"[" * 30_000 + b"]" * 30_000,
                     b'{"label": "Tech"} trailing', b'{"label": ["Tech"]}']:
            response = client.post(url, content=body, headers={**auth, **json_type})
            assert response.status_code in (400, 422), (kind, body[:30], response.status_code)
        for method in ("PATCH", "DELETE", "BREW"):
            assert client.request(method, url, headers=auth).status_code == 405, (kind, method)
        # PUT changes one's label (My history): refused the same way without a JSON body
        assert client.request("PUT", url, headers=auth).status_code == 415, kind
    assert client.post(f"{API}/next", content=b"x" * 70_000, headers=ann).status_code == 413
    big_form = client.post("/login", content=b"username=" + b"a" * (17 * 1024 * 1024),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert big_form.status_code == 413
    assert snapshot(engine) == before
    # and the items can still be labelled properly afterwards
    assert client.post(routes["fast"][0], json={"label": "Tech"}, headers=ann).status_code == 201


# ---- 15, 16, 17: sessions, CSRF and redirects --------------------------------------------------------
def test_forged_session_cookies_are_anonymous(client, world, engine):
    payload = base64.b64encode(json.dumps({"uid": world.ids["boss"], "csrf": "x"}).encode())
    forged = [
        "garbage",
        payload.decode(),  # unsigned
        TimestampSigner("not-the-key").sign(payload).decode(),  # signed with another key
        TimestampSigner("").sign(payload).decode(),
    ]
    for cookie in forged:
        client.cookies.clear()
        client.cookies.set("labelloop_session", cookie)
        assert client.get("/api/me").status_code == 401, cookie
        page = client.get("/admin", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login"), cookie
        assert client.post(f"{API}/next", headers={"X-CSRF-Token": "x"}).status_code in (401, 403), cookie


def test_csrf_tokens_missing_forged_or_from_another_session_write_nothing(client, world, engine):
    from fastapi.testclient import TestClient

    with TestClient(client.app, base_url="http://127.0.0.1") as other:
        other_token = login(other, "bob")
    login(client, "ann")
    before = snapshot(engine)
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": other_token}, {"X-CSRF-Token": ""}):
        for path in (f"{API}/next", f"{API}/undo", f"{API}/items/1/skip"):
            response = client.post(path, headers=headers)
            assert response.status_code == 403 and "CSRF" in response.json()["detail"], (path, headers)
    assert client.post(f"{API}/next?csrf_token={other_token}").status_code == 403
    assert snapshot(engine) == before


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                                    "/%0d%0aSet-Cookie:x=1", "http:/evil.example"])
def test_login_never_redirects_off_site(client, world, target):
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf, "next": target},
                           follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    assert "set-cookie:x" not in {k.lower() for k in response.headers}


def test_the_hostile_items_were_stored_verbatim(world, engine):
    """The inert rendering above is not bought by mangling data: what was stored is what was sent."""
    add_item(engine, world.project, "x<1>", SCRIPT, "\x1b\u202e")
    with engine.connect() as conn:
        display = conn.execute(select(items.c.display).where(items.c.external_id == "x<1>")).scalar_one()
    assert display == {"title": SCRIPT, "body": "\x1b\u202e"}
