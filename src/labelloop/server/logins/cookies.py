"""The ``Secure`` flag of our cookies, decided per request.

Starlette's session middleware sets one flag for every request (``https_only``), but a server
may be reached over HTTPS through its proxy and over plain HTTP on the loopback (health
checks, an SSH tunnel). :class:`SecureCookies` adds ``; Secure`` to every ``Set-Cookie`` of
an answer to a request that came over HTTPS: ``scope["scheme"]`` is ``https`` when the
connection was TLS or a trusted proxy said ``X-Forwarded-Proto: https`` (see
:mod:`labelloop.server.logins.clients`, which runs first), or always with
``force_secure_cookies``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def secure(cookie: bytes) -> bytes:
    """``cookie`` (a ``Set-Cookie`` value) with the ``Secure`` attribute."""
    attributes = [part.strip().lower() for part in cookie.split(b";")[1:]]
    return cookie if b"secure" in attributes else cookie + b"; Secure"


class SecureCookies:
    """Mark the cookies of HTTPS answers (or all, when forced) ``Secure``."""

    def __init__(self, app: ASGIApp, *, force: bool = False):
        self.app = app
        self.force = force

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.force or scope.get("scheme") == "https"):
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, secure(value) if name.lower() == b"set-cookie" else value)
                    for name, value in message.get("headers", ())
                ]
            await send(message)

        await self.app(scope, receive, send_secure)
