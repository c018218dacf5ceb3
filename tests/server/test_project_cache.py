"""The per-process project cache: one read per expiry however many requests wait for it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from labelloop.errors import NotFoundError
from labelloop.server.caches import ProjectCache
from labelloop.store import writing
from labelloop.store import projects as store_projects


class CountingCache(ProjectCache):
    """The real cache, counting its reads of the database."""

    def __init__(self, engine):
        super().__init__(engine, ttl=60)
        self.reads = 0

    def _load(self, name):
        self.reads += 1
        return super()._load(name)


def _run(coro_fn):
    # in a thread of its own: another test's event loop may still run in this one (Playwright)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result(timeout=60)


def test_concurrent_misses_share_one_read_and_clear_forgets(engine):
    with writing(engine) as conn:
        store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
    cache = CountingCache(engine)

    async def burst():
        return await asyncio.gather(*(cache.get("p") for _ in range(20)))

    projects = _run(burst)
    assert {p.name for p in projects} == {"p"} and cache.reads == 1
    _run(burst)
    assert cache.reads == 1  # cached
    cache.clear()
    _run(burst)
    assert cache.reads == 2


def test_an_unknown_project_fails_every_waiter_and_is_not_cached(engine):
    cache = CountingCache(engine)

    async def burst():
        return await asyncio.gather(*(cache.get("nope") for _ in range(5)), return_exceptions=True)

    results = _run(burst)
    assert all(isinstance(r, NotFoundError) for r in results) and cache.reads == 1
    with pytest.raises(NotFoundError):
        _run(lambda: cache.get("nope"))
    assert cache.reads == 2
