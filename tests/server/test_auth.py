"""Logging in and out: sessions, redirects, CSRF and the failed-login rate limit."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from labelloop.store import reading
from labelloop.store.schema import login_failures


API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest


def csrf_of(client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(client, name: str, password: str = PASSWORD, next_path: str = "/", csrf: str | None = None):
    token = csrf if csrf is not None else csrf_of(client)
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )


def test_login_sets_a_session_and_redirects_by_role(client, world):
    response = login(client, "ann")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/api/me").json()["name"] == "ann"
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/projects"
    client.cookies.clear()
    login(client, "boss")
    assert client.get("/", follow_redirects=False).headers["location"] == "/admin"


def test_pages_redirect_to_login_without_a_session(client, world):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/"


def test_next_is_followed_only_to_local_paths(client, world):
    assert login(client, "ann", next_path="/projects/news").headers["location"] == "/projects/news"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.clear()
        assert login(client, "ann", next_path=evil).headers["location"] == "/", evil


def test_wrong_password_is_refused_with_the_form_again(client, world):
    response = login(client, "ann", password="wrong password")
    assert response.status_code == 401 and "wrong user name or password" in response.text
    assert client.get("/api/me").status_code == 401
    nobody = login(client, "nobody", password="whatever1")
    assert nobody.status_code == 401 and "wrong user name or password" in nobody.text


def test_csrf_is_required_for_cookie_posts_not_for_tokens(client, world):
    # the login form itself
    assert login(client, "ann", csrf="forged").status_code == 403
    csrf = csrf_of(client)
    assert login(client, "ann", csrf=csrf).status_code == 303
    assert csrf_of(client) != csrf  # logging in starts a new session with a new token
    csrf = csrf_of(client)
    # a cookie-authenticated JSON POST without / with the header
    refused = client.post(f"{API}/next")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.post(f"{API}/next", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).status_code == 200
    # reads need no token
    assert client.get(f"{API}/stats").status_code == 200
    # logging out is a form POST too
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/api/me").status_code == 401
    # bearer requests need no CSRF token
    client.cookies.clear()
    assert client.post(f"{API}/next", headers=world.auth("bob")).status_code == 200


def test_failed_logins_are_rate_limited_per_name_and_client(client, world, engine):
    # settings: 3 failures allowed per minute
    for _ in range(3):
        assert login(client, "ann", password="bad password").status_code == 401
    limited = login(client, "ann")  # even the right password is refused now
    assert limited.status_code == 429 and "too many failed logins" in limited.text
    assert client.get("/api/me").status_code == 401
    assert login(client, "bob").status_code == 303  # another name is not affected
    with reading(engine) as conn:
        rows = conn.execute(
            select(func.count()).where(login_failures.c.username == "ann")
        ).scalar_one()
    assert rows == 3  # kept in the database, so every worker sees them


def test_a_successful_login_clears_earlier_failures(client, world, engine):
    assert login(client, "ann", password="bad password").status_code == 401
    assert login(client, "ann").status_code == 303
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar_one() == 0


def test_tampered_session_cookie_is_ignored(client, world):
    login(client, "ann")
    value = client.cookies.get("labelloop_session")
    assert client.get("/api/me").status_code == 200
    payload, stamp, signature = value.split(".")
    for forged in (f"{payload[:-2]}xx.{stamp}.{signature}", f"{payload}.{stamp}.{signature[::-1]}"):
        client.cookies.clear()
        client.cookies.set("labelloop_session", forged)
        assert client.get("/api/me").status_code == 401
