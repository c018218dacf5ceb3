"""Refuse logins cheaply while the password pool is full.

During a flood of logins the event loop's time is what the labellers lose: every login post
costs it the session cookie's signature, the form, the CSRF check and the page. While the
password pool is full (:attr:`PasswordPool.busy`), :class:`LoginGate` answers ``POST /login``
with 503, ``Retry-After`` and a few bytes of HTML, before any of that (the body is not even
read), after the refusal delay of :class:`~labelloop.server.logins.limits.Logins` (1 s, which
costs nothing and keeps each flooding connection to about one request a second). The route
itself still answers 503 with the form when the pool fills between its check and its
submission.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from labelloop.server.logins.pool import RETRY_AFTER_SECONDS, TooManyLogins

BODY = (
    b'<!doctype html><meta charset="utf-8"><title>Busy - labelloop</title>'
    b"<p>" + TooManyLogins().args[0].encode() + b'. <a href="/login">Back to the login page</a>\n'
)
HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode()),
    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    (b"cache-control", b"no-store"),
]


class LoginGate:
    """503 for ``POST /login`` while the password pool has no room."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/login" and scope["method"] == "POST":
            logins = getattr(scope["app"].state, "logins", None)
            if logins is not None and logins.pool.busy:
                await asyncio.sleep(logins.refusal_delay)
                await send({"type": "http.response.start", "status": 503, "headers": list(HEADERS)})
                await send({"type": "http.response.body", "body": BODY})
                return
        await self.app(scope, receive, send)
