"""The admin forms that create or rename names (tags, users) refuse control and
bidirectional-control characters and '.'/'..' with the store's message, on both databases."""

from __future__ import annotations

import html
import re

from labelloop.store import reading
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users

PASSWORD = "correct horse"  # as in conftest


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def test_tag_and_user_forms_refuse_bad_names(client, world, engine):
    csrf = login(client, "boss")
    cases = [
        ("/admin/projects/news/tags", {"name": "Tech\u202eхэт"},
         "invalid tag name 'Tech\\u202eхэт': bidirectional control characters are not allowed (it has U+202E"),
        ("/admin/projects/news/tags", {"name": ".."}, "invalid tag name '..': '.' and '..' are not allowed as names"),
        ("/admin/projects/news/tags/rename", {"old": "Sport", "new": "Sp\x85ort"},
         "invalid tag name 'Sp\\x85ort': control characters are not allowed (it has U+0085)"),
        ("/admin/users", {"name": "boss\u2066", "role": "admin"},
         "invalid user name 'boss\\u2066': bidirectional control characters are not allowed (it has U+2066"),
        ("/admin/users", {"name": ".", "role": "labeller"}, "invalid user name '.': '.' and '..' are not allowed"),
    ]
    for path, data, message in cases:
        response = client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert response.status_code == 400, (path, data, response.status_code)
        assert message in html.unescape(response.text), (path, data)
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="news").tag_names == ["Sport", "Politics", "Tech"]
        assert [u.name for u in store_users.list_users(conn)] == ["ann", "bob", "boss"]
