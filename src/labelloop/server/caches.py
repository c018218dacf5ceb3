"""Short per-process TTL caches for the hot path: users (by session id or token) and projects.

Every request re-checks that its user exists and is not disabled, at most ``ttl`` seconds
late; a project's tags and current model run are likewise at most ``ttl`` seconds old on the
labelling routes.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from labelloop.errors import AuthError, NotFoundError
from labelloop.store import reading
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.projects import Project
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
    """Users by id (sessions) and by token hash (bearer), re-read every ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float = 2.0):
        self.engine = engine
        self._cache = _TTL(ttl)

    def _load_id(self, user_id: int) -> User:
        with reading(self.engine) as conn:
            try:
                return store_users.get_user_by_id(conn, user_id=user_id)
            except NotFoundError:
                raise AuthError("your account no longer exists; log in again") from None

    def _load_token(self, token: str) -> User:
        with reading(self.engine) as conn:
            return store_users.authenticate_token(conn, token=token)

    async def by_id(self, user_id: int) -> User:
        user = self._cache.get(("id", user_id))
        if user is None:
            user = await run_in_threadpool(self._load_id, user_id)
            self._cache.put(("id", user_id), user)
        if user.disabled:
            raise AuthError("this account is disabled")
        return user

    async def by_token(self, token: str) -> User:
        key = ("token", store_users.hash_token(token))
        user = self._cache.get(key)
        if user is None:
            user = await run_in_threadpool(self._load_token, token)
            self._cache.put(key, user)
        return user

    def clear(self) -> None:
        self._cache.clear()


class ProjectCache:
    """Projects by name, re-read every ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float = 1.0):
        self.engine = engine
        self._cache = _TTL(ttl)

    def _load(self, name: str) -> Project:
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name=name)

    async def get(self, name: str) -> Project:
        project = self._cache.get(name)
        if project is None:
            project = await run_in_threadpool(self._load, name)
            self._cache.put(name, project)
        return project

    def clear(self) -> None:
        self._cache.clear()
