"""Per-process caches for the hot path: users (by session key or token) and projects.

Every request re-checks that its session or token is still valid and its user not disabled,
about a second late at most (see :class:`AuthCache`); a project's tags and current model run are at most ``ttl``
seconds old on the labelling routes (:class:`ProjectCache`).

Which projects each labeller is a member of: :class:`MemberCache` (a removal takes effect
within about a second, at once in the process that made it).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from labelloop.errors import AuthError
from labelloop.store import reading
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import sessions as store_sessions
from labelloop.store import users as store_users
from labelloop.store.projects import Project
from labelloop.store.schema import api_tokens, users
from labelloop.store.users import User

MAX_ENTRIES = 10_000


class _TTL:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) >= MAX_ENTRIES:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._data.clear()


class AuthCache:
    """Users by session key hash (cookies) and by token hash (bearer).

    A session or token seen for the first time is read from the database; after that the
    request uses the cached entry, and :meth:`refresh` (run every ``refresh_every`` seconds by
    the app) re-reads all recently used entries in one query each for sessions and tokens,
    dropping ended or expired sessions, revoked tokens and the entries of disabled or deleted
    users. An entry not refreshed for ``max_age`` seconds (the refresher stalled) is read again
    on use, and a session's expiry is checked on every use. So a logout, a password reset,
    disabling a user or revoking a token in another process takes effect within about
    ``refresh_every`` seconds, and the hot path never waits on the database; :meth:`forget_session`
    and :meth:`forget_user` make a change made by this process take effect at once.
    """

    def __init__(self, engine: Engine, *, refresh_every: float = 1.0, max_age: float = 5.0, idle: float = 120.0):
        self.engine = engine
        self.refresh_every = refresh_every
        self.max_age = max_age
        self.idle = idle
        # session key hash -> [User, checked_at, used_at, expires_at (time.time())]
        self._sessions: dict[str, list[Any]] = {}
        self._tokens: dict[str, list[Any]] = {}  # token hash -> [User, checked_at, used_at]
        self._generation = 0  # moved on by forget_*(): a read begun before is not cached

    def _load_session(self, key: str) -> tuple[User, datetime]:
        with reading(self.engine) as conn:
            return store_sessions.user_for_session(conn, key=key)

    def _load_token(self, token: str) -> User:
        with reading(self.engine) as conn:
            return store_users.authenticate_token(conn, token=token)

    async def by_session(self, key: str) -> User:
        """The user of session ``key`` (from a signed cookie); AuthError if it has ended."""
        if not store_sessions.is_session_key(key):
            raise AuthError("your session has ended: log in again")
        key_hash = store_sessions.hash_session_key(key)
        now = time.monotonic()
        entry = self._sessions.get(key_hash)
        if entry is None or now - entry[1] > self.max_age:
            generation = self._generation
            user, expires_at = await run_in_threadpool(self._load_session, key)
            entry = [user, now, now, expires_at.timestamp()]
            if generation == self._generation:
                self._sessions[key_hash] = entry
        if time.time() >= entry[3]:
            self._sessions.pop(key_hash, None)
            raise AuthError("your session has expired: log in again")
        entry[2] = now
        return entry[0]

    async def by_token(self, token: str) -> User:
        key = store_users.hash_token(token)
        now = time.monotonic()
        entry = self._tokens.get(key)
        if entry is None or now - entry[1] > self.max_age:
            generation = self._generation
            user = await run_in_threadpool(self._load_token, token)
            entry = [user, now, now]
            if generation == self._generation:
                self._tokens[key] = entry
        entry[2] = now
        return entry[0]

    def refresh(self) -> None:
        """Re-read every entry used in the last ``idle`` seconds (blocking: run it in a thread)."""
        now = time.monotonic()
        for cache in (self._sessions, self._tokens):
            for key, entry in list(cache.items()):  # a snapshot: requests change the dict meanwhile
                if now - entry[2] > self.idle:
                    cache.pop(key, None)
        session_hashes, token_hashes = list(self._sessions), list(self._tokens)
        if not session_hashes and not token_hashes:
            return
        fresh_sessions: dict[str, tuple[User, datetime]] = {}
        fresh_tokens: dict[str, User] = {}
        with reading(self.engine) as conn:
            for chunk in _chunks(session_hashes):
                fresh_sessions.update(store_sessions.live_sessions(conn, key_hashes=chunk))
            for chunk in _chunks(token_hashes):
                rows = conn.execute(
                    select(api_tokens.c.token_hash, users)
                    .join(users, users.c.id == api_tokens.c.user_id)
                    .where(api_tokens.c.token_hash.in_(chunk), users.c.disabled.is_(False))
                )
                for row in rows:
                    fresh_tokens[row.token_hash] = store_users.user_from_row(row)
        for key in session_hashes:
            found = fresh_sessions.get(key)
            if found is None:
                self._sessions.pop(key, None)  # ended, expired or disabled: the next use reads again
            elif key in self._sessions:
                entry = self._sessions[key]
                entry[0], entry[1], entry[3] = found[0], now, found[1].timestamp()
        for key in token_hashes:
            user = fresh_tokens.get(key)
            if user is None:
                self._tokens.pop(key, None)  # revoked or disabled: the next use reads again
            elif key in self._tokens:
                self._tokens[key][0], self._tokens[key][1] = user, now

    def forget_session(self, key: str) -> None:
        """Drop one session (logout in this process: its cookie stops working at once)."""
        self._generation += 1
        if store_sessions.is_session_key(key):
            self._sessions.pop(store_sessions.hash_session_key(key), None)

    def forget_user(self, user_id: int) -> None:
        """Drop every session and token entry of ``user_id`` (reset or disabled by this process)."""
        self._generation += 1
        for cache in (self._sessions, self._tokens):
            for key, entry in list(cache.items()):
                if entry[0].id == user_id:
                    cache.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._sessions.clear()
        self._tokens.clear()


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class ProjectCache:
    """Projects by name, re-read every ``ttl`` seconds.

    When an entry expires under load, every request that arrives while it is being read again
    waits for that one read (not one read each, which made a burst of identical queries every
    second)."""

    def __init__(self, engine: Engine, ttl: float = 1.0):
        self.engine = engine
        self._cache = _TTL(ttl)
        self._loading: dict[str, asyncio.Future[Project]] = {}
        self._generation = 0  # moved on by clear(): a read begun before is not cached

    def _load(self, name: str) -> Project:
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name=name)

    async def get(self, name: str) -> Project:
        project = self._cache.get(name)
        if project is not None:
            return project
        loading = self._loading.get(name)
        if loading is None:
            loading = self._loading[name] = asyncio.ensure_future(self._load_once(name))
        # shielded: a waiter cancelled (its client went away) does not cancel the others' read
        return await asyncio.shield(loading)

    async def _load_once(self, name: str) -> Project:
        generation = self._generation
        me = asyncio.current_task()
        try:
            project = await run_in_threadpool(self._load, name)
            if generation == self._generation:
                self._cache.put(name, project)
            return project
        finally:
            if self._loading.get(name) is me:
                del self._loading[name]

    def clear(self) -> None:
        self._cache.clear()
        self._loading.clear()
        self._generation += 1


class MemberCache:
    """The projects each labeller is a member of, so that checking access costs the labelling
    hot path no database round trip (admins see every project and are never looked up).

    Like :class:`AuthCache`: a labeller's project ids are read on first use; :meth:`refresh`
    (run every ``refresh_every`` seconds by the app) re-reads those of every labeller seen in the
    last ``idle`` seconds in one query, and an entry not refreshed for ``max_age`` seconds is read
    again on use. So a membership removed by the CLI or another worker takes effect within about
    a second; :meth:`forget` makes a change made by this process take effect at once.
    """

    def __init__(self, engine: Engine, *, refresh_every: float = 1.0, max_age: float = 5.0, idle: float = 120.0):
        self.engine = engine
        self.refresh_every = refresh_every
        self.max_age = max_age
        self.idle = idle
        self._users: dict[int, list[Any]] = {}  # user id -> [frozenset of project ids, checked_at, used_at]
        self._generation = 0  # moved on by forget(): a refresh begun before it is not applied

    def _load(self, user_ids: list[int]) -> dict[int, frozenset[int]]:
        with reading(self.engine) as conn:
            return store_members.memberships(conn, user_ids=user_ids)

    async def allows(self, user: User, project_id: int) -> bool:
        """Whether ``user`` may see project ``project_id``: admins always, labellers if members."""
        if user.is_admin:
            return True
        now = time.monotonic()
        entry = self._users.get(user.id)
        if entry is None or now - entry[1] > self.max_age:
            generation = self._generation
            loaded = await run_in_threadpool(self._load, [user.id])
            entry = [loaded[user.id], now, now]
            if generation == self._generation:
                self._users[user.id] = entry
        entry[2] = now
        return project_id in entry[0]

    def refresh(self) -> None:
        """Re-read the memberships of every labeller seen lately (blocking: run it in a thread)."""
        now = time.monotonic()
        for key in [k for k, e in self._users.items() if now - e[2] > self.idle]:
            self._users.pop(key, None)
        if not self._users:
            return
        generation = self._generation
        fresh = self._load(list(self._users))
        if generation != self._generation:
            return  # forget() ran meanwhile: this read may predate its change
        for user_id, project_ids in fresh.items():
            entry = self._users.get(user_id)
            if entry is not None:
                entry[0], entry[1] = project_ids, now

    def forget(self, user_id: int | None = None) -> None:
        """Drop one user's entry (or every entry): their next request reads the database."""
        self._generation += 1
        if user_id is None:
            self._users.clear()
        else:
            self._users.pop(user_id, None)
