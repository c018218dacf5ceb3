"""Server-side login sessions.

A login creates a row in ``sessions``: the browser's (signed) cookie carries a random 256-bit
key, the database only its SHA-256, as for API tokens. A session is valid while its row exists,
its ``expires_at`` is in the future and its user is not disabled. Logout deletes the row; a
password reset or disabling the account deletes all of the user's rows (see
:func:`labelloop.store.users.set_password` and :func:`labelloop.store.users.set_disabled`).
Running servers notice within about a second (``server/caches.py`` re-reads the sessions it
has seen in one query every second).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from labelloop.errors import AuthError
from labelloop.store.schema import sessions, users, utcnow
from labelloop.store.users import User, user_from_row

SESSION_SECONDS = 14 * 24 * 3600  # as long as the cookie's max age
_KEY = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(32) gives


def is_session_key(value: object) -> bool:
    """Whether ``value`` has the form of a key from :func:`create_session` (anything else, from
    a forged or old cookie, is no session and is never looked up)."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def hash_session_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_session(conn: Connection, *, user_id: int, seconds: int = SESSION_SECONDS) -> str:
    """Start a session for ``user_id``; returns its key (only the hash is stored). Sessions
    that have expired are deleted on the way."""
    purge_expired_sessions(conn)
    key = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(
        insert(sessions).values(
            user_id=user_id, key_hash=hash_session_key(key), created_at=now, expires_at=now + timedelta(seconds=seconds)
        )
    )
    return key


def user_for_session(conn: Connection, *, key: str) -> tuple[User, datetime]:
    """The user of a live session and when the session expires; AuthError otherwise."""
    if not is_session_key(key):
        raise AuthError("your session has ended: log in again")
    row = conn.execute(
        select(users, sessions.c.expires_at)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(sessions.c.key_hash == hash_session_key(key))
    ).first()
    if row is None:
        raise AuthError("your session has ended: log in again")
    if row.expires_at <= utcnow():
        raise AuthError("your session has expired: log in again")
    if row.disabled:
        raise AuthError("this account is disabled")
    return user_from_row(row), row.expires_at


def live_sessions(conn: Connection, *, key_hashes: Iterable[str]) -> dict[str, tuple[User, datetime]]:
    """Of the sessions with these key hashes, those still live: hash -> (user, expires_at).
    One query (the caller chunks long lists)."""
    rows = conn.execute(
        select(sessions.c.key_hash, sessions.c.expires_at, users)
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            sessions.c.key_hash.in_(list(key_hashes)), sessions.c.expires_at > utcnow(), users.c.disabled.is_(False)
        )
    )
    return {row.key_hash: (user_from_row(row), row.expires_at) for row in rows}


def end_session(conn: Connection, *, key: str) -> bool:
    """End one session (logout); False if it had ended already."""
    if not is_session_key(key):
        return False
    return conn.execute(delete(sessions).where(sessions.c.key_hash == hash_session_key(key))).rowcount > 0


def end_user_sessions(conn: Connection, *, user_id: int) -> int:
    """End every session of ``user_id``; returns how many were live."""
    now = utcnow()
    live = conn.execute(
        select(func.count()).where(sessions.c.user_id == user_id, sessions.c.expires_at > now)
    ).scalar_one()
    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
    return live


def purge_expired_sessions(conn: Connection) -> int:
    """Delete the rows of expired sessions; returns how many."""
    return conn.execute(delete(sessions).where(sessions.c.expires_at <= utcnow())).rowcount


def live_session_counts(conn: Connection) -> dict[int, int]:
    """user id -> number of live sessions (users without any are left out)."""
    rows = conn.execute(
        select(sessions.c.user_id, func.count()).where(sessions.c.expires_at > utcnow()).group_by(sessions.c.user_id)
    )
    return {user_id: count for user_id, count in rows}
