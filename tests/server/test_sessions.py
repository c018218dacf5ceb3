"""Server-side sessions over real HTTP, on SQLite and PostgreSQL: logout, a password reset and
disabling an account end sessions (and tokens) at once in this process and within about a
second in another worker; expired and pre-upgrade cookies are logged out; odd cookie values
are never a 500; CSRF is skipped only for a valid bearer token; anonymous requests reach no
route but the login, static files and health."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import event, update

from labelloop.server import create_app
from labelloop.store import writing
from labelloop.store import users as store_users
from labelloop.store.schema import sessions, utcnow

PASSWORD = "correct horse"  # as in conftest
COOKIE = "labelloop_session"
API = "/api/projects/news"


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str, password: str = PASSWORD) -> str:
    """Log ``name`` in; returns the new session's CSRF token."""
    client.cookies.clear()
    csrf = csrf_in(client.get("/login").text)
    done = client.post("/login", data={"username": name, "password": password, "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    return csrf_in(client.get("/projects").text)


def logged_out(client, cookie: str, *, settling: bool = False) -> bool:
    """Whether ``cookie`` no longer logs in: 401 on the API and the login redirect on pages.
    ``settling``: the session is being ended elsewhere, so the cache may drop it between the
    two requests (API 200, then the page's redirect): that counts as not logged out yet."""
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    api = client.get("/api/me").status_code
    client.cookies.set(COOKIE, cookie)
    page = client.get("/projects", follow_redirects=False)
    if api == 200:
        assert page.status_code in ((200, 303) if settling else (200,)), page.status_code
        return False
    assert api == 401 and page.status_code == 303 and page.headers["location"].startswith("/login"), (api, page)
    return True


def signed(client, data: object) -> str:
    """A cookie holding ``data``, signed with the app's own secret (as a leaked key would allow)."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(str(client.app.state.session_secret)).sign(payload).decode()


def contents(cookie: str) -> dict:
    return json.loads(base64.b64decode(cookie.split(".")[0]))


@pytest.fixture
def other_worker(world):
    """A second app on the same database: another worker process, with caches of its own."""
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as other:
        yield other


# "About a second" (the caches refresh every second); 10 s allowed for a loaded CI machine.
def wait_until(check, seconds: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "no effect within the time allowed"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_cookie_replayed_after_logout_is_refused_here_and_on_another_worker(client, world, other_worker):
    csrf = login(client, "ann")
    saved = client.cookies.get(COOKIE)
    assert "uid" not in contents(saved) and len(contents(saved)["sid"]) == 43
    assert not logged_out(other_worker, saved)  # the other worker has the session cached now
    client.cookies.set(COOKIE, saved)
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert logged_out(client, saved)  # at once in the process that logged out
    assert wait_until(lambda: logged_out(other_worker, saved, settling=True)) < 10.0  # about a second elsewhere
    again = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/login"  # nothing left to end


def test_logging_in_again_ends_the_cookies_earlier_session(client, world):
    login(client, "ann")
    first = client.cookies.get(COOKIE)
    csrf = csrf_in(client.get("/login").text)
    client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf})
    assert contents(client.cookies.get(COOKIE))["sid"] != contents(first)["sid"]
    assert logged_out(client, first)


def test_a_password_reset_ends_sessions_and_tokens_at_once(client, world, other_worker):
    ann, bob = world.ids["ann"], world.ids["bob"]
    login(client, "ann")
    anns = client.cookies.get(COOKIE)
    assert not logged_out(other_worker, anns)
    for name in ("ann", "bob"):
        assert client.get(f"{API}/stats", headers=world.auth(name)).status_code == 200
        assert other_worker.get(f"{API}/stats", headers=world.auth(name)).status_code == 200
    csrf = login(client, "boss")
    reset = client.post(f"/admin/users/{ann}/password", data={"csrf_token": csrf})
    assert reset.status_code == 200 and "ended 1 session and revoked 1 API token" in reset.text
    assert logged_out(client, anns)
    assert client.get(f"{API}/stats", headers=world.auth("ann")).status_code == 401
    wait_until(lambda: logged_out(other_worker, anns, settling=True))
    wait_until(lambda: other_worker.get(f"{API}/stats", headers=world.auth("ann")).status_code == 401)
    # keeping the tokens, as the admin may ask
    login(client, "bob")
    bobs = client.cookies.get(COOKIE)
    csrf = login(client, "boss")
    kept = client.post(f"/admin/users/{bob}/password", data={"csrf_token": csrf, "keep_tokens": "1"})
    assert kept.status_code == 200 and "ended 1 session and revoked 0 API tokens" in kept.text
    assert logged_out(client, bobs)
    assert client.get(f"{API}/stats", headers=world.auth("bob")).status_code == 200
    time.sleep(1.2)  # a refresh of the other worker's cache: the token stays valid there too
    assert other_worker.get(f"{API}/stats", headers=world.auth("bob")).status_code == 200


def test_disabling_ends_sessions_and_tokens_at_once(client, world, other_worker):
    login(client, "ann")
    anns = client.cookies.get(COOKIE)
    assert not logged_out(other_worker, anns)
    assert other_worker.post(f"{API}/next", headers=world.auth("ann")).status_code == 200  # the fast path
    csrf = login(client, "boss")
    boss = client.cookies.get(COOKIE)
    done = client.post(f"/admin/users/{world.ids['ann']}/disable", data={"csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    assert logged_out(client, anns)
    assert client.post(f"{API}/next", headers=world.auth("ann")).status_code == 401
    wait_until(lambda: logged_out(other_worker, anns, settling=True))
    wait_until(lambda: other_worker.post(f"{API}/next", headers=world.auth("ann")).status_code == 401)
    client.cookies.clear()
    client.cookies.set(COOKIE, boss)
    assert client.post(f"/admin/users/{world.ids['ann']}/enable", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    assert logged_out(client, anns)  # enabling the account again brings back neither
    assert client.post(f"{API}/next", headers=world.auth("ann")).status_code == 401
    assert not logged_out(client, boss)


def test_a_reset_elsewhere_reaches_the_server_within_about_a_second(client, world, engine):
    """`labelloop user passwd` runs in another process: the server notices on its next refresh."""
    login(client, "ann")
    anns = client.cookies.get(COOKIE)
    assert not logged_out(client, anns)
    with writing(engine) as conn:
        store_users.set_password(conn, user_id=world.ids["ann"], password="a brand new passphrase")
    assert wait_until(lambda: logged_out(client, anns, settling=True)) < 10.0


def test_an_expired_session_is_refused(client, world, engine, other_worker):
    login(client, "ann")
    anns = client.cookies.get(COOKIE)
    assert not logged_out(client, anns)
    with writing(engine) as conn:
        conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert logged_out(other_worker, anns)  # read from the database: expired
    assert wait_until(lambda: logged_out(client, anns, settling=True)) < 10.0  # cached: dropped by the refresh


def test_cookies_from_before_server_side_sessions_are_logged_out(client, world):
    csrf = login(client, "boss")
    for data in ({"uid": world.ids["boss"]}, {"uid": world.ids["boss"], "csrf": csrf}):
        assert logged_out(client, signed(client, data))
        client.cookies.set(COOKIE, signed(client, data))
        assert client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).status_code == 401


ODD = [7, -1, 2**64, 10**400, 1.5, None, True, "", "abc", "9" * 43, "x" * 42 + "\u00e9", "x" * 3000,
       "\ud800" * 43, ["x"], {"a": 1}, [[[[[]]]]]]


def test_odd_cookie_values_are_never_a_500_and_answer_as_a_bad_bearer_token(client, world):
    csrf = login(client, "ann")
    real = contents(client.cookies.get(COOKIE))
    statuses: dict[str, tuple[int, int]] = {}
    for odd in ODD:
        for data in ({"sid": odd}, {"uid": odd}, {"sid": odd, "uid": odd, "csrf": odd},
                     {"sid": real["sid"], "csrf": odd}, {"sid": real["sid"], "uid": odd}):
            cookie = signed(client, data)
            answers = []
            for method, path, headers in (("GET", "/api/me", {}), ("GET", "/admin", {}),
                                          ("POST", f"{API}/next", {"X-CSRF-Token": csrf}),
                                          ("POST", f"{API}/next", {"X-CSRF-Token": ascii(odd)[:50]}),
                                          ("GET", "/projects/news/label", {}), ("GET", "/login", {}),
                                          ("POST", "/logout", {"X-CSRF-Token": csrf})):
                client.cookies.clear()
                client.cookies.set(COOKIE, cookie)
                response = client.request(method, path, headers=headers, follow_redirects=False)
                answers.append(response.status_code)
                assert response.status_code < 500, (data, method, path, response.text)
            statuses[repr(data)[:80]] = answers[0], answers[2]
    # a bad session key gets the 401 of a bad bearer token; a real one with an odd CSRF value is a 403
    bearer = client.get("/api/me", headers={"Authorization": "Bearer 7"}).status_code
    assert bearer == 401
    for data, (me, post) in statuses.items():
        if real["sid"] in data:
            assert me == 200 and post in (200, 403), data
        else:
            assert me == bearer and post == 401, data


def test_only_a_valid_bearer_token_skips_the_csrf_check(client, world):
    csrf = login(client, "ann")
    saved = client.cookies.get(COOKIE)
    for header in ("Basic x", "Basic " + base64.b64encode(b"ann:correct horse").decode(), "Token abc", "x",
                   "Bearer", "Bearer ll_wrong", "Bearer " + world.tokens["ann"] + "x"):
        client.cookies.set(COOKIE, saved)
        logout = client.post("/logout", headers={"Authorization": header}, follow_redirects=False)
        assert logout.status_code in (401, 403), (header, logout.status_code)
        client.cookies.set(COOKIE, saved)
        assert client.get("/api/me").status_code == 200, header  # still logged in
        for path in (f"{API}/next", f"{API}/undo"):
            client.cookies.set(COOKIE, saved)
            response = client.post(path, headers={"Authorization": header})
            assert response.status_code in (401, 403), (header, path, response.status_code)
        client.cookies.set(COOKIE, saved)
        form = client.post(f"/admin/users/{world.ids['bob']}/disable", headers={"Authorization": header},
                           follow_redirects=False)
        assert form.status_code in (303, 401, 403), (header, form.status_code)
    # a valid token needs no CSRF token, with or without a cookie
    client.cookies.set(COOKIE, saved)
    assert client.post(f"{API}/next", headers=world.auth("bob")).status_code == 200
    client.cookies.clear()
    assert client.post(f"{API}/next", headers=world.auth("bob")).status_code == 200
    client.cookies.set(COOKIE, saved)
    assert client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).status_code == 200


def _routes(app):
    """(methods, path) of every route of the app, through included routers."""
    found = []

    def walk(routes, prefix=""):
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's included router
                walk(route.original_router.routes, prefix + (route.include_context.prefix or ""))
            elif hasattr(route, "methods") and route.methods:
                found.append((sorted(route.methods - {"HEAD"}), prefix + route.path))
            elif hasattr(route, "routes") and not hasattr(route, "app"):
                walk(route.routes, prefix + getattr(route, "path", ""))
    walk(app.routes)
    return found


OPEN = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/favicon.ico"),
        ("POST", "/logout")}


def test_anonymous_requests_reach_only_the_login_static_files_and_health(client, world, engine):
    queries: list[str] = []
    routes = _routes(client.app)
    assert len(routes) > 40 and ("GET", "/admin") in [(m[0], p) for m, p in routes]
    looked_up = lambda conn, cursor, statement, *args: queries.append(statement)
    event.listen(client.app.state.engine, "before_cursor_execute", looked_up)
    try:
        for methods, template in routes:
            for method in methods:
                if (method, template) in OPEN:
                    continue
                for project in ("news", "nope"):
                    path = (template.replace("{project}", project).replace("{item_id}", "1")
                            .replace("{user_id}", "1").replace("{token_id}", "1"))
                    response = client.request(method, path, follow_redirects=False)
                    if path.startswith("/api/") or path == "/openapi.json":
                        assert response.status_code == 401, (method, path, response.status_code)
                        assert response.json()["detail"].startswith("not authenticated"), (method, path)
                    else:
                        assert response.status_code == 303, (method, path, response.status_code)
                        assert response.headers["location"].startswith("/login?next="), (method, path)
    finally:
        event.remove(client.app.state.engine, "before_cursor_execute", looked_up)
    assert [q for q in queries if "projects" in q or "items" in q] == []  # no project was looked up
    for path in ("/login", "/healthz", "/readyz", "/favicon.ico", "/static/app.css", "/static/label.js",
                 "/static/favicon.svg", "/static/swagger-ui/swagger-ui.css"):
        assert client.get(path).status_code == 200, path
    out = client.post("/logout", follow_redirects=False)  # no session: nothing to end, no CSRF needed
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.post("/login", data={"username": "ann", "password": PASSWORD}).status_code == 403  # no CSRF


def test_cookie_requests_cost_the_hot_path_no_session_query(client, world):
    csrf = login(client, "ann")
    app_engine = client.app.state.engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if "sessions" in statement:
            seen.append(statement)

    assert client.get(f"{API}/stats").status_code == 200  # warm
    event.listen(app_engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for _ in range(20):
            assert client.get(f"{API}/stats").status_code == 200
            assert client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).status_code == 200
        ticks = time.monotonic() - started
    finally:
        event.remove(app_engine, "before_cursor_execute", count)
    assert len(seen) <= ticks / client.app.state.auth_cache.refresh_every + 1, seen
