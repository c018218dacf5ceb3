"""Odd values in every query parameter and path id of the pages and the API, on SQLite and
PostgreSQL: huge, negative, non-numeric, non-finite, non-ASCII digits, invalid percent-escapes.
Never a 500; the same status on the cookie and the Bearer paths; the data browser's odd cursors
are a 400 page that says what to do."""

from __future__ import annotations

import re

import pytest

PASSWORD = "correct horse"  # as in conftest
ODD = ["99999999999999999999999", "9223372036854775808", "-1", "-99999999999999999999", "0", "abc", "1.5",
       "1e400", "nan", "inf", "\u0663", "%FF%FE", "x" * 3000, ""]
CURSORS = ["i99999999999999999999999", "i-5", "snan:1", "sinf:1", "s1e400:1", "s1:99999999999999999999",
           "u99999999999999999999", "s1:2:3", "i\u0663", "zz"]


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    client.cookies.clear()
    csrf = csrf_in(client.get("/login").text)
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf})
    return csrf_in(client.get("/projects").text)


@pytest.mark.parametrize("sort", ["id", "priority", "confidence"])
def test_odd_cursors_are_a_400_page_with_a_message(client, world, sort):
    login(client, "boss")
    for cursor in CURSORS + (["s99999999999:1"] if sort == "priority" else []):  # ranks are 32-bit
        page = client.get("/admin/projects/news/browse", params={"sort": sort, "after": cursor})
        assert page.status_code == 400, (sort, cursor, page.status_code)
        assert page.headers["content-type"].startswith("text/html")
        assert "invalid page cursor" in page.text and "start again from the first page" in page.text, cursor


def test_odd_query_values_and_path_ids_never_answer_500(client, world):
    csrf = login(client, "boss")
    base = "/admin/projects/news"
    answers: dict[str, int] = {}
    for value in ODD:
        gets = [f"{base}/browse?{p}={value}" for p in ("after", "size", "page", "q", "tag", "source", "labelled",
                                                      "labeller", "sort")]
        gets += [f"/login?next={value}", f"{base}/models?done={value}", f"{base}/review?decided={value}",
                 f"{base}/tags?done={value}", f"{base}/items/{value}", f"/admin/projects/{value}/browse",
                 f"/projects/{value}/label", f"/api/projects/{value}/stats", f"/docs?{value}", f"/static/{value}"]
        for path in gets:
            answers[path] = client.get(path).status_code
        for path in (f"/admin/users/{value}/disable", f"/admin/users/{value}/password",
                     f"/admin/users/1/tokens/{value}/revoke", f"{base}/review/{value}"):
            answers["POST " + path] = client.post(path, data={"csrf_token": csrf, "label": "Tech"}).status_code
    assert {path: status for path, status in answers.items() if status >= 500} == {}


def test_odd_item_ids_get_the_same_status_on_the_cookie_and_bearer_paths(client, world):
    csrf = login(client, "ann")
    for value in ODD[:-1] + ["1"]:
        for action in ("labels", "skip", "renew"):
            path = f"/api/projects/news/items/{value}/{action}"
            cookie = client.post(path, json={"label": "Tech"}, headers={"X-CSRF-Token": csrf})
            bearer = client.post(path, json={"label": "Tech"}, headers=world.auth("ann"))
            assert cookie.status_code == bearer.status_code < 500, (value, action, cookie.status_code,
                                                                    bearer.status_code)
