"""Starting, reading and ending the session of a request's cookie."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from labelloop.store import writing
from labelloop.store import sessions as store_sessions

SESSION_ID_KEY = "sid"  # the cookie's field with the session key


def session_key(request: Request) -> object:
    """What the cookie holds as session key (None without a cookie or a key). Not checked: a
    signed cookie can still hold anything from before an upgrade or from a leaked secret."""
    if "session" not in request.scope:
        return None
    return request.session.get(SESSION_ID_KEY)


def _replace(engine: Engine, old: object, user_id: int) -> str:
    with writing(engine) as conn:
        if store_sessions.is_session_key(old):
            store_sessions.end_session(conn, key=old)  # type: ignore[arg-type]
        return store_sessions.create_session(conn, user_id=user_id)


async def start_session(request: Request, user_id: int) -> None:
    """Log ``user_id`` in: a new server-side session in a fresh cookie (no fixation); a
    session the cookie had before is ended."""
    old = session_key(request)
    key = await run_in_threadpool(_replace, request.app.state.engine, old, user_id)
    if store_sessions.is_session_key(old):
        request.app.state.auth_cache.forget_session(old)
    request.session.clear()
    request.session[SESSION_ID_KEY] = key


def _end(engine: Engine, key: str) -> None:
    with writing(engine) as conn:
        store_sessions.end_session(conn, key=key)


async def end_session(request: Request) -> None:
    """Log out: the cookie's session ends on the server (a copy of the cookie no longer works:
    at once in this process, within about a second in the others) and the cookie is emptied."""
    key = session_key(request)
    if store_sessions.is_session_key(key):
        await run_in_threadpool(_end, request.app.state.engine, key)
        request.app.state.auth_cache.forget_session(key)
    if "session" in request.scope:
        request.session.clear()


def forget_user(state: Any, user_id: int) -> None:
    """After a password reset or disabling ``user_id`` (which ended their sessions and tokens in
    the database): this process stops accepting them at once."""
    cache = getattr(state, "auth_cache", None)
    if cache is not None:
        cache.forget_user(user_id)
