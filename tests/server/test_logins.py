"""Logins behind proxies and under load (in process): the client address from trusted proxies
only, failures counted per (user name, client address), the password pool's 503, the
``Secure`` cookie flag and the user name kept in the form."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from labelloop.server import create_app
from labelloop.server.logins import PasswordPool
from labelloop.server.logins.limits import Logins
from labelloop.store import reading
from labelloop.store import logins as store_logins

PASSWORD = "correct horse"  # as in conftest
PROXY = ("10.0.0.2", 40000)  # inside trusted_proxies below
STRANGER = ("203.0.113.9", 40000)  # a peer that is no proxy of ours


@contextmanager
def app_client(settings, *, peer=("198.51.100.1", 50000), base_url="http://127.0.0.1", **changes) -> Iterator[TestClient]:
    app = create_app(dataclasses.replace(settings, **changes))
    with TestClient(app, base_url=base_url, client=peer) as client:
        yield client


def csrf_of(client, headers=None) -> str:
    page = client.get("/login", headers=headers)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def login(client, name: str, password: str = PASSWORD, headers: dict[str, str] | None = None):
    token = csrf_of(client, headers)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/"},
                       headers=headers, follow_redirects=False)


def failures(engine, name: str, client: str | None = None) -> int:
    with reading(engine) as conn:
        return store_logins.count_failures(conn, name=name, client=client)


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


# ---- client addresses behind proxies -------------------------------------------------------------
def test_forwarded_for_is_believed_from_a_trusted_proxy_only(world, engine):
    # settings: 3 failures allowed per minute
    with app_client(world.settings, peer=PROXY, trusted_proxies="10.0.0.0/8, 192.0.2.1") as client:
        for _ in range(3):
            assert login(client, "ann", "bad password", via("198.51.100.7")).status_code == 401
        assert failures(engine, "ann", "198.51.100.7") == 3 and failures(engine, "ann", PROXY[0]) == 0
        assert login(client, "ann", headers=via("198.51.100.7")).status_code == 429
        # a client cannot escape by prepending addresses: the proxy appended the real one last
        assert login(client, "ann", headers=via("1.2.3.4, 198.51.100.7")).status_code == 429
        # through two trusted proxies: the right-most untrusted address is the client
        assert login(client, "ann", headers=via("198.51.100.7, 10.0.0.3")).status_code == 429
        assert login(client, "ann", headers={"X-Forwarded-For": "198.51.100.7", "x-forwarded-for": "192.0.2.1"}
                     ).status_code == 429  # several headers are one list
        # another client behind the same proxy logs in with the right password
        assert login(client, "ann", headers=via("198.51.100.8")).status_code == 303
    with app_client(world.settings, peer=STRANGER, trusted_proxies="10.0.0.0/8") as client:
        for i in range(3):  # made-up headers from a stranger change nothing: all count for its address
            assert login(client, "bob", "bad password", via(f"198.51.100.{20 + i}")).status_code == 401
        assert login(client, "bob", headers=via("198.51.100.99")).status_code == 429
        assert failures(engine, "bob", STRANGER[0]) == 3 and failures(engine, "bob") == 3


def test_without_trusted_proxies_forwarded_for_is_ignored(world, engine):
    with app_client(world.settings, peer=PROXY) as client:  # trusted_proxies empty (the default)
        for i in range(3):
            assert login(client, "ann", "bad password", via(f"198.51.100.{i}")).status_code == 401
        assert login(client, "ann", headers=via("198.51.100.50")).status_code == 429
    assert failures(engine, "ann", PROXY[0]) == 3


def test_guesses_from_elsewhere_never_lock_out_the_right_password(world, engine):
    """Failures count per (name, client): an attacker behind the proxy does not lock ann out."""
    with app_client(world.settings, peer=PROXY, trusted_proxies="10.0.0.2") as client:
        for _ in range(5):
            assert login(client, "ann", "guess guess", via("198.51.100.66")).status_code in (401, 429)
        assert login(client, "ann", headers=via("198.51.100.66")).status_code == 429  # the attacker's address
        assert failures(engine, "ann", "198.51.100.66") == 3  # never more than the limit
        response = login(client, "ann", headers=via("198.51.100.5"))  # ann, from her own address
        assert response.status_code == 303
        assert client.get("/api/me").json()["name"] == "ann"
    assert failures(engine, "ann", "198.51.100.66") == 3 and failures(engine, "ann", "198.51.100.5") == 0


# ---- the password pool ----------------------------------------------------------------------
@contextmanager
def blocked(pool: PasswordPool) -> Iterator[None]:
    """Fill ``pool`` with tasks that wait until the block ends."""
    release = threading.Event()
    futures = [pool.submit(release.wait, 30) for _ in range(pool.capacity)]
    try:
        yield
    finally:
        release.set()
        for future in futures:
            future.result(timeout=30)


def test_a_full_password_pool_answers_503_at_once(world, engine):
    with app_client(world.settings) as client:
        pool = client.app.state.logins.pool
        with blocked(pool):
            assert pool.busy
            busy = login(client, "ann")
            assert busy.status_code == 503 and busy.headers["Retry-After"].isdigit()
            assert "too many logins at once: try again in a moment" in busy.text
            assert "default-src 'self'" in busy.headers["Content-Security-Policy"]
            assert failures(engine, "ann") == 0  # nothing was reserved, nothing counts
            client.cookies.clear()
            assert login(client, "boss").status_code == 503
        assert login(client, "boss").status_code == 303
        # the admin's user page hashes on the same pool
        with blocked(pool):
            made = client.post("/admin/users", data={"name": "carl", "role": "labeller", "password": "long enough",
                                                     "csrf_token": csrf_of(client)}, follow_redirects=False)
            assert made.status_code == 503 and "too many logins at once" in made.text
            reset = client.post(f"/admin/users/{world.ids['ann']}/password", data={"csrf_token": csrf_of(client)})
            assert reset.status_code == 503
        made = client.post("/admin/users", data={"name": "carl", "role": "labeller", "password": "long enough",
                                                 "csrf_token": csrf_of(client)}, follow_redirects=False)
        assert made.status_code == 303
        client.cookies.clear()
        assert login(client, "carl", "long enough").status_code == 303


class _LateFullPool(PasswordPool):
    """Says it has room, then is full: the race between the check and the submission."""

    @property
    def busy(self) -> bool:
        return False


def test_a_reservation_is_given_back_when_the_pool_fills_meanwhile(world, engine):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def run(coro):  # a loop of its own: a browser test's Playwright may hold this thread's loop
        with ThreadPoolExecutor(1) as one:
            return one.submit(asyncio.run, coro).result()

    pool = _LateFullPool(threads=1, capacity=1)
    logins = Logins(engine, world.settings, pool)
    try:
        with blocked(pool):
            refusal = run(logins.check(name="ann", password=PASSWORD, client="198.51.100.1"))
        assert refusal.status == 503 and refusal.retry_after
        assert failures(engine, "ann") == 0
        assert run(logins.check(name="ann", password=PASSWORD, client="198.51.100.1")).name == "ann"
    finally:
        logins.close()


def test_passwords_are_hashed_on_low_priority_threads_of_their_own(world):
    pool = PasswordPool()
    try:
        name, nice = pool.call(
            lambda: (threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        )
    finally:
        pool.shutdown()
    assert name.startswith("labelloop-passwords")
    assert nice == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # the other threads keep theirs


# ---- Secure cookies -------------------------------------------------------------------------
def session_cookie(response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("labelloop_session=")]
    assert cookies, response.headers
    return cookies[-1]


def is_secure(cookie: str) -> bool:
    return "secure" in [part.strip().lower() for part in cookie.split(";")[1:]]


@pytest.mark.parametrize("how", ["https", "trusted proxy", "forced"])
def test_the_session_cookie_is_secure_over_https(world, how):
    changes, headers, base_url = {}, {}, "http://127.0.0.1"
    if how == "https":
        base_url = "https://127.0.0.1"
    elif how == "trusted proxy":
        changes, headers = {"trusted_proxies": "10.0.0.0/8"}, {"X-Forwarded-Proto": "https", **via("198.51.100.1")}
    else:
        changes = {"force_secure_cookies": True}
    with app_client(world.settings, peer=PROXY, base_url=base_url, **changes) as client:
        page = client.get("/login", headers=headers)
        first = session_cookie(page)
        assert is_secure(first)
        # The client's jar keeps Secure cookies to https: send it by hand, as the proxy would.
        headers["Cookie"] = first.split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token},
                               headers=headers, follow_redirects=False)
        assert response.status_code == 303
        cookie = session_cookie(response)
        assert is_secure(cookie) and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        headers["Cookie"] = cookie.split(";")[0]
        assert client.get("/api/me", headers=headers).json()["name"] == "ann"


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"])
def test_the_session_cookie_is_not_secure_over_plain_http(world, trusted):
    """Plain HTTP, and an X-Forwarded-Proto from a peer that is not a trusted proxy."""
    with app_client(world.settings, peer=STRANGER, trusted_proxies=trusted) as client:
        response = login(client, "ann", headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 303
        assert not is_secure(session_cookie(response))
        assert client.get("/api/me").json()["name"] == "ann"


# ---- the form -------------------------------------------------------------------------------
def test_a_failed_login_keeps_the_user_name_in_the_form(world):
    with app_client(world.settings) as client:
        response = login(client, "ann", "bad password")
        assert response.status_code == 401
        assert re.search(r'<input type="text" name="username" value="ann"', response.text)
        assert re.search(r'<input type="password" name="password"[^>]*autofocus', response.text)
        odd = login(client, '<b>"x', "bad password")
        assert odd.status_code == 401
        assert 'value="&lt;b&gt;&#34;x"' in odd.text and '<b>"x' not in odd.text
        assert 'value=""' in client.get("/login").text
