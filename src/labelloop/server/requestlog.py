"""Request ids and one log line per request (pure ASGI, the outermost middleware).

A request's id is its ``X-Request-ID`` header when that is 1-64 characters of
``[A-Za-z0-9._-]`` (a proxy's or a client's id, so one id follows a request through every
hop), else a fresh random one. The id is returned as the ``X-Request-ID`` response header and
kept in ``scope["state"]["request_id"]``. After the response, logger ``labelloop.request``
logs at INFO: method, path, status, duration and user (when one was authenticated), also as
structured fields for ``LABELLOOP_LOG_FORMAT=json``. Costs a few microseconds a request;
nothing is formatted when INFO is off.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("labelloop.request")
HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def request_id_of(scope: Scope) -> bytes:
    """The client's valid ``X-Request-ID``, else a new random id (16 hex digits)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _VALID.fullmatch(value):
                return bytes(value)
            break
    return os.urandom(8).hex().encode()


class RequestLog:
    """ASGI middleware: request id in and out, and the request's log line."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid.decode()
        started = time.perf_counter()
        status = 500  # unless a response starts: the app failed

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                _log_request(scope, state, status, time.perf_counter() - started)


def _log_request(scope: Scope, state: dict, status: int, seconds: float) -> None:
    user = state.get("user")
    name = getattr(user, "name", None)
    ms = round(seconds * 1000, 2)
    path = scope["path"]
    log.info(
        "%s %s %d %.1fms user=%s request_id=%s", scope["method"], path, status, ms, name or "-", state["request_id"],
        extra={"fields": {"request_id": state["request_id"], "method": scope["method"], "path": path,
                          "status": status, "duration_ms": ms, "user": name}},
    )
