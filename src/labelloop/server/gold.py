"""Gold items on the labelling routes: served now and then, answered apart from labels.

:class:`Gold` wraps the dispatcher (:mod:`labelloop.server.dispatch`) for the JSON routes
(``api.py``) and the bearer fast path (``fastpath.py``) alike:

- ``next`` (the default queue only): with probability ``gold_fraction`` (this process's own
  random generator) and when the project has gold items, the claim is a *gold draw*:
  :func:`labelloop.store.gold.claim_gold` on the writer (the user's live lease renewed first, as
  always), falling back to the usual claim when the user has seen every gold item. The answer
  is the usual lease answer: nothing in it tells a gold item apart.
- ``labels``, ``skip``, ``renew`` on an item of the project's gold set go to
  :func:`~labelloop.store.gold.answer_gold` (a gold answer, not a label),
  :func:`~labelloop.store.gold.skip_gold`, :func:`~labelloop.store.gold.renew_gold`; ``undo``
  in a project with gold items first tries :func:`~labelloop.store.gold.undo_gold`.

Which items are gold comes from :class:`GoldCache`, per process: read once per project, then
re-read by the app every ``refresh_every`` seconds in one query for every project in use, so the
hot path never queries for it. With ``gold_fraction`` 0 a ``next`` is the dispatcher's claim
untouched, and a label costs one dictionary look-up. An item marked gold elsewhere (the CLI,
another worker) is known here within about a second (at once when marked by this process:
:meth:`GoldCache.forget`); a label sent meanwhile is the item's label as before the mark.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from labelloop.server.dispatch import Dispatcher
from labelloop.server.suggest import serve as suggest
from labelloop.store import gold as store_gold
from labelloop.store import labelling as store_labelling
from labelloop.store import reading
from labelloop.store.projects import Project
from labelloop.store.queue import Lease


class GoldCache:
    """The gold item ids of each project in use (like :class:`labelloop.server.caches.MemberCache`)."""

    def __init__(self, engine: Engine, *, refresh_every: float = 1.0, max_age: float = 5.0, idle: float = 120.0):
        self.engine = engine
        self.refresh_every = refresh_every
        self.max_age = max_age
        self.idle = idle
        self._projects: dict[int, list[Any]] = {}  # project id -> [frozenset of item ids, checked_at, used_at]
        self._generation = 0

    def _load(self, project_ids: list[int]) -> dict[int, frozenset[int]]:
        with reading(self.engine) as conn:
            return store_gold.gold_ids(conn, project_ids=project_ids)

    async def ids(self, project_id: int) -> frozenset[int]:
        now = time.monotonic()
        entry = self._projects.get(project_id)
        if entry is None or now - entry[1] > self.max_age:
            generation = self._generation
            loaded = await run_in_threadpool(self._load, [project_id])
            entry = [loaded[project_id], now, now]
            if generation == self._generation:
                self._projects[project_id] = entry
        entry[2] = now
        return entry[0]  # type: ignore[no-any-return]

    def refresh(self) -> None:
        """Re-read the gold sets of every project used lately (blocking: run it in a thread)."""
        now = time.monotonic()
        for key in [k for k, e in self._projects.items() if now - e[2] > self.idle]:
            self._projects.pop(key, None)
        if not self._projects:
            return
        generation = self._generation
        fresh = self._load(list(self._projects))
        if generation != self._generation:
            return
        for project_id, ids in fresh.items():
            entry = self._projects.get(project_id)
            if entry is not None:
                entry[0], entry[1] = ids, now

    def forget(self, project_id: int | None = None) -> None:
        """Drop a project's entry (or all): its next use reads the database."""
        self._generation += 1
        if project_id is None:
            self._projects.clear()
        else:
            self._projects.pop(project_id, None)


class Gold:
    """The gold-aware labelling operations of one process (see the module's notes)."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher, *, rng: random.Random | None = None):
        self.cache = GoldCache(engine)
        self.dispatcher = dispatcher
        self.rng = rng or random.Random()  # gold draws: seeded from the OS per process

    async def claim(self, *, project: Project, user_id: int, lease_seconds: int) -> Lease | None:
        """The default queue's next item: a gold draw with probability ``gold_fraction``; else the
        dispatcher's claim, with the model's suggestion when the project shows them (never on a
        gold item, e.g. a gold lease renewed)."""
        fraction = float(project.setting("gold_fraction"))
        gold_ids = await self.cache.ids(project.id) if fraction > 0.0 or suggest.suggestion_mode(project) != "off" \
            else suggest.NO_GOLD
        if fraction > 0.0 and self.rng.random() < fraction and gold_ids:
            dispatcher, rng = self.dispatcher, self.rng

            def op(conn: Connection) -> Lease | None:
                lease = store_gold.claim_gold(conn, project=project, user_id=user_id, lease_seconds=lease_seconds,
                                              rng=rng)
                if lease is not None:
                    return lease
                return dispatcher.claim_next(conn, project=project, user_id=user_id, lease_seconds=lease_seconds,
                                             audit=False)

            # a renewed ordinary lease or the fallback claim get their suggestion, gold leases never
            return await self.dispatcher.run(suggest.suggesting(project, user_id, op, gold_ids))  # type: ignore[no-any-return]
        return await suggest.claim(self.dispatcher, project=project, user_id=user_id, lease_seconds=lease_seconds,
                                   gold_ids=gold_ids)

    async def label(self, request: store_labelling.LabelRequest) -> None:
        """A label; on a gold item, a gold answer instead."""
        if request.item_id not in await self.cache.ids(request.project.id):
            await self.dispatcher.label(request)
            return
        r = request

        def op(conn: Connection) -> None:
            if not store_gold.answer_gold(conn, project=r.project, user_id=r.user_id, item_id=r.item_id, tag=r.tag,
                                          tags=r.tags):
                store_labelling.label_item(conn, project=r.project, user_id=r.user_id, item_id=r.item_id, tag=r.tag,
                                           tags=r.tags)

        await self.dispatcher.run(op, checks_first=True)  # both refuse before any write

    async def skip(self, *, project: Project, user_id: int, item_id: int) -> None:
        dispatcher = self.dispatcher
        gold = item_id in await self.cache.ids(project.id)

        def op(conn: Connection) -> None:
            if not (gold and store_gold.skip_gold(conn, project=project, user_id=user_id, item_id=item_id)):
                dispatcher.skip(conn, project=project, user_id=user_id, item_id=item_id)

        await dispatcher.run(op)

    async def renew(self, *, project: Project, user_id: int, item_id: int, lease_seconds: int) -> Any:
        gold = item_id in await self.cache.ids(project.id)

        def op(conn: Connection) -> Any:
            expires = (store_gold.renew_gold(conn, project=project, user_id=user_id, item_id=item_id,
                                             lease_seconds=lease_seconds) if gold else None)
            return expires or store_labelling.renew_lease(conn, project=project, user_id=user_id, item_id=item_id,
                                                          lease_seconds=lease_seconds)

        return await self.dispatcher.run(op)

    async def undo(self, *, project: Project, user_id: int, lease_seconds: int,
                   also: Callable[[Connection, store_labelling.Undone], None] | None = None) -> store_labelling.Undone:
        """Undo (a gold answer or skip first, when it is the user's latest act), with the model's
        suggestion on the lease given back when the project shows them (never on gold items);
        ``also`` runs in the same transaction with what was undone (the notes forget theirs)."""
        dispatcher = self.dispatcher
        gold_ids = await self.cache.ids(project.id)
        gold = bool(gold_ids)

        def op(conn: Connection) -> store_labelling.Undone:
            undone = (store_gold.undo_gold(conn, project=project, user_id=user_id, lease_seconds=lease_seconds)
                      if gold else None)
            undone = undone or dispatcher.undo(conn, project=project, user_id=user_id, lease_seconds=lease_seconds)
            if also is not None:
                also(conn, undone)
            return undone

        return await dispatcher.run(suggest.suggesting(project, user_id, op, gold_ids))  # type: ignore[no-any-return]
