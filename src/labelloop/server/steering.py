"""Steered queues on ``POST /api/projects/{p}/next`` (issue 13): ``queue``, ``q``, ``item``, ``tag``.

Without those query parameters ``next`` is exactly today's (the bearer fast path and the
dispatcher's buffers; :mod:`labelloop.server.fastpath` hands a ``next`` with a query string to
FastAPI). With them:

- ``queue=default``: today's queue; a lease held from a steered queue is given back first.
- ``search`` (``q``), ``similar`` (``item``), ``likely`` / ``unsure`` (``tag``), ``random``: the
  first item of that queue's list (:mod:`labelloop.store.steerqueue`) available to the user,
  leased through the default queue's checks (overlap, leases, never the same item twice), never
  an audit draw, marked ``steered``. Asking the same queue again while the lease it gave lives
  renews it (the same item again); a lease from another queue is given back first.

Each (project, queue, key) list is kept in this process, its open ids in a deque that claims
take from (as the dispatcher's buffers), so that a steered ``next`` is a claim in the database,
not a search. A list older than :data:`CACHE_SECONDS`, from an older run, or with fewer than
:data:`LOW_WATER` ids left is built again in the background while the old one keeps serving;
only the first request for a list, and one whose list had nothing left for the user, wait for a
build. Builds run on a thread of the pool (reading), claims on the writer
(:class:`~labelloop.server.dispatch.Dispatcher`).

Refusals: a missing or unknown parameter, a bad search query: 422 (one line); steering off for
the project (``configure --steering off``): 403 for labellers (admins may still steer). An empty
steered queue is a 204 like the default queue's, with ``X-Labelloop-Queue`` naming the queue;
a lease answer carries ``"queue": {"name", "label"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from labelloop.server.dispatch import CLAIM_CHUNK, _take
from labelloop.server.responses import SafeJSONResponse, next_response
from labelloop.store import reading
from labelloop.store import queue as store_queue
from labelloop.store import steerqueue as steer
from labelloop.store.projects import Project
from labelloop.store.schema import utcnow
from labelloop.store.users import User

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # a list older than this is built again, in the background (new labels, expired leases)
LOW_WATER = 250  # fewer open ids left than this: build it again, in the background (at 200 labels/s, 1 s ahead)
SOURCE_LIMIT = 500  # open ids a list aims for (search, similar, likely, unsure)
SOURCE_MAX = 32_000  # ids read at most per list (its labelled and held ones included)
RANDOM_LIMIT = 1000
PARAMS = ("queue", "q", "item", "tag")
_NEEDS = {"search": "q", "similar": "item", "likely": "tag", "unsure": "tag"}


@dataclass(frozen=True)
class Steer:
    """A parsed steered request: the queue and its one parameter (``q``, ``item`` or ``tag``)."""

    queue: str
    value: Any = None

    @property
    def label(self) -> str:
        key = _NEEDS.get(self.queue)
        return steer.describe(self.queue, {key: self.value} if key else {})


def wants_steering(params: Any) -> bool:
    return any(name in params for name in PARAMS)


def parse_steer(project: Project, params: Any) -> Steer:
    """The steering asked for by the query parameters, or a 422 naming the problem."""
    queue = params.get("queue")
    given = [name for name in ("q", "item", "tag") if name in params]
    if queue is None:
        raise HTTPException(422, f"{given[0]} needs a queue: add queue=" + {"q": "search", "item": "similar",
                                                                             "tag": "likely or queue=unsure"}[given[0]])
    if queue not in steer.QUEUES:
        raise HTTPException(422, f"unknown queue {queue!r}: use one of {', '.join(steer.QUEUES)}")
    needed = _NEEDS.get(queue)
    extra = [name for name in given if name != needed]
    if extra:
        raise HTTPException(422, f"{extra[0]} does not apply to queue={queue}"
                                 + (f" (it takes {needed})" if needed else " (it takes no parameter)"))
    if needed is None:
        return Steer(queue)
    value = params.get(needed)
    if value is None or not str(value).strip():
        what = {"q": "q, the search query", "item": "item, the id of one of the project's items",
                "tag": f"tag, one of the project's tags ({', '.join(project.tag_names)})"}[needed]
        raise HTTPException(422, f"queue={queue} needs {what}")
    if needed == "item":
        if not value.isdigit() or len(value) > 18:
            raise HTTPException(422, f"item must be an item's id (a whole number), got {value!r}")
        return Steer(queue, int(value))
    if needed == "tag" and value not in project.tag_names:
        raise HTTPException(422, f"unknown tag {value!r} in project {project.name!r}: use one of "
                                 f"{', '.join(project.tag_names)}")
    return Steer(queue, value)


def check_allowed(project: Project, user: User) -> None:
    """Steering off for the project: labellers get a 403 (admins may still steer)."""
    if not project.setting("steering") and not user.is_admin:
        raise HTTPException(403, f"steering is off in project {project.name!r}: use the default queue, or ask an "
                                 f"admin to allow it (labelloop configure {project.name} --steering on)")


@dataclass
class _List:
    """A steered queue's list, cached: the source and the open ids not handed out yet."""

    source: steer.Source
    run_id: int | None
    ids: deque[int]
    built_at: float = field(default_factory=time.monotonic)
    recorded: set[int] = field(default_factory=set)  # audit items already stored as reached
    used_at: float = field(default_factory=time.monotonic)
    more: bool = False  # the list was cut at its limit: a new build may bring other items

    def due(self, run_id: int | None) -> bool:
        """Time to build it again: older than CACHE_SECONDS, another run, or running low (and
        more to find; not twice within half a second)."""
        age = time.monotonic() - self.built_at
        return age > CACHE_SECONDS or run_id != self.run_id or (self.more and len(self.ids) < LOW_WATER and age > 0.5)


class SteerLists:
    """The per-process cache of steered lists, by (project, queue, value).

    A list is served while a newer one is built in the background (stale while revalidate):
    only the first request for a list waits for a build; later ones never do, so that a
    steered ``next`` is one claim on the writer, as the default queue's."""

    def __init__(self) -> None:
        self._lists: dict[tuple[Any, ...], _List] = {}
        self._lock = threading.Lock()
        # (project id, user id) -> (queue, value, item id): what each user was last handed here,
        # so that asking the same queue again gives the same item while its lease lives.
        self.handed: dict[tuple[int, int], tuple[str, Any, int]] = {}
        self.building: dict[tuple[Any, ...], asyncio.Future[_List]] = {}  # builds in flight (event loop only)
        self.tasks: set[asyncio.Task[Any]] = set()  # background builds (kept referenced)

    def get(self, key: tuple[Any, ...]) -> _List | None:
        found = self._lists.get(key)
        if found is not None:
            found.used_at = time.monotonic()
        return found

    def put(self, key: tuple[Any, ...], value: _List) -> None:
        with self._lock:
            old = self._lists.get(key)
            if old is not None:
                value.recorded |= old.recorded
            if len(self._lists) > 1000:  # keys nobody asked for lately (other queries, old tags)
                now = time.monotonic()
                self._lists = {k: v for k, v in self._lists.items() if now - v.used_at <= 60}
            self._lists[key] = value


def build_order(conn: Connection, *, project: Project, wanted: Steer, limit: int = SOURCE_LIMIT) -> list[int]:
    """The first ``limit`` ids of the queue's list, in its order (read on a pool thread)."""
    if wanted.queue == "random":
        return steer.random_order(conn, project=project, limit=RANDOM_LIMIT)
    if wanted.queue == "search":
        return steer.search_order(conn, project=project, query=wanted.value, limit=limit)
    if wanted.queue == "similar" and not steer.item_in_project(conn, project=project, item_id=wanted.value):
        raise HTTPException(422, f"item {wanted.value} is not an item of project {project.name!r}")
    from labelloop.store import steerlists

    if wanted.queue == "similar":
        return steerlists.similar_ids(conn, project_id=project.id, item_id=wanted.value, limit=limit)
    if wanted.queue == "likely":
        return steerlists.likely_ids(conn, project_id=project.id, tag=wanted.value, limit=limit)
    return steerlists.unsure_ids(conn, project_id=project.id, tag=wanted.value, limit=limit)


def build_source(conn: Connection, *, project: Project, wanted: Steer) -> tuple[steer.Source, bool]:
    """The queue's :class:`~labelloop.store.steerqueue.Source` and whether more ids lie past it.
    The list keeps labelled and held items (the audit rule needs every rank), so its head may be
    all done: it is read again four times as long until it has :data:`SOURCE_LIMIT` open ids,
    ends, or reaches :data:`SOURCE_MAX` ids."""
    limit = RANDOM_LIMIT if wanted.queue == "random" else SOURCE_LIMIT
    while True:
        order = build_order(conn, project=project, wanted=wanted, limit=limit)
        source = steer.source(conn, project=project, order=order, audit_rule=wanted.queue != "random")
        more = len(order) >= limit
        if wanted.queue == "random" or not more or len(source.open_ids) >= SOURCE_LIMIT or limit >= SOURCE_MAX:
            return source, more
        limit *= 4


def _lists_of(state: Any) -> SteerLists:
    lists = getattr(state, "steer_lists", None)
    if lists is None:
        lists = state.steer_lists = SteerLists()
    return lists


async def _build(state: Any, lists: SteerLists, key: tuple[Any, ...], project: Project, wanted: Steer) -> _List:
    """Build the list on a pool thread; one build per key at a time (the requests that need it
    meanwhile wait for that build: hundreds of labellers entering one queue at once must not
    each search, nor empty the pool)."""
    pending = lists.building.get(key)
    if pending is not None:
        return await asyncio.shield(pending)

    def build() -> _List:
        with reading(state.engine) as conn:
            source, more = build_source(conn, project=project, wanted=wanted)
        return _List(source, project.current_run_id, deque(source.open_ids), more=more)

    future: asyncio.Future[_List] = asyncio.get_running_loop().create_future()
    lists.building[key] = future
    try:
        built = await run_in_threadpool(build)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
        raise
    finally:
        lists.building.pop(key, None)
    lists.put(key, built)
    future.set_result(built)
    return built


def _refresh_later(state: Any, lists: SteerLists, key: tuple[Any, ...], project: Project, wanted: Steer) -> None:
    """Start a background build of the list unless one is in flight; its failure (a database
    hiccup) is logged and the old list stays in use."""
    if key in lists.building:
        return

    async def refresh() -> None:
        try:
            await _build(state, lists, key, project, wanted)
        except Exception:  # noqa: BLE001 - the next request retries; serving goes on with the old list
            log.warning("steered list %s could not be refreshed", wanted.label, exc_info=True)

    task = asyncio.get_running_loop().create_task(refresh())
    lists.tasks.add(task)
    task.add_done_callback(lists.tasks.discard)


async def _the_list(state: Any, project: Project, wanted: Steer, *, fresh: bool = False) -> _List:
    """The queue's list: the cached one (a newer one built in the background when it is due), or,
    the first time or with ``fresh`` (the cached one had nothing left for the user), a build."""
    lists = _lists_of(state)
    key = (project.id, wanted.queue, wanted.value)
    found = lists.get(key)
    if found is not None and not fresh:
        if found.due(project.current_run_id):
            _refresh_later(state, lists, key, project, wanted)
        return found
    return await _build(state, lists, key, project, wanted)


def claim_in_list(conn: Connection, *, project: Project, user_id: int, lease_seconds: int,
                  entry: _List, last_item: int | None = None) -> store_queue.Lease | None:
    """On the writer: the user's lease renewed if this queue served it (``last_item``: the item
    this process last handed the user from this queue), else (a lease from another queue given
    back) the first open item of the list available to them, leased and marked steered; the
    audit items the list ranked before it are stored as reached."""
    now = utcnow()
    held = steer.held_lease(conn, project=project, user_id=user_id, now=now)
    if held is not None:
        if held.steered and held.item_id == last_item:
            return store_queue.renew_current(conn, project=project, user_id=user_id, lease_seconds=lease_seconds,
                                             now=now)
        steer.release_lease(conn, project=project, user_id=user_id, item_id=held.item_id)
        if held.item_id in entry.source.at and held.item_id not in entry.ids:
            entry.ids.appendleft(held.item_id)
    kept: list[int] = []
    try:
        while entry.ids:
            chunk = _take(entry.ids, CLAIM_CHUNK)
            claim = steer.claim_steered(conn, project=project, user_id=user_id, item_ids=chunk,
                                        lease_seconds=lease_seconds, now=now)
            entry.ids.extendleft(reversed(chunk[claim.tried:]))
            kept.extend(claim.not_for_you)  # done by this user: still open to the others
            if claim.lease is not None:
                passed = [i for i in entry.source.audit_before(claim.lease.item_id) if i not in entry.recorded]
                steer.record_reached(conn, project=project, item_ids=passed, now=now)
                entry.recorded.update(passed)
                return claim.lease
    finally:
        entry.ids.extendleft(reversed(kept))
    return None


def default_after_steering(conn: Connection, *, dispatcher: Any, project: Project, user_id: int,
                           lease_seconds: int) -> store_queue.Lease | None:
    """``queue=default``: a lease held from a steered queue is given back, then today's claim."""
    held = steer.held_lease(conn, project=project, user_id=user_id)
    if held is not None and held.steered:
        steer.release_lease(conn, project=project, user_id=user_id, item_id=held.item_id)
    return dispatcher.claim_next(conn, project=project, user_id=user_id, lease_seconds=lease_seconds)


def steered_answer(lease: store_queue.Lease | None, project: Project, wanted: Steer) -> Response:
    headers = {"X-Labelloop-Queue": wanted.queue}
    if lease is None:
        return Response(status_code=204, headers=headers)
    answer = next_response(lease, multi_label=project.multi_label)
    content = json.loads(answer.body)
    content["queue"] = {"name": wanted.queue, "label": wanted.label}
    return SafeJSONResponse(content, headers=headers)


async def steered_next(state: Any, *, project: Project, user: User, lease_seconds: int, params: Any) -> Response:
    """The answer of a ``next`` with steering parameters (see the module's notes)."""
    wanted = parse_steer(project, params)
    check_allowed(project, user)
    dispatcher = state.dispatcher
    if wanted.queue == "default":
        lease = await dispatcher.run(lambda conn: default_after_steering(
            conn, dispatcher=dispatcher, project=project, user_id=user.id, lease_seconds=lease_seconds))
        return steered_answer(lease, project, wanted)
    handed = _lists_of(state).handed
    last = handed.get((project.id, user.id))
    last_item = last[2] if last is not None and last[:2] == (wanted.queue, wanted.value) else None
    entry = await _the_list(state, project, wanted)
    lease = await dispatcher.run(lambda conn: claim_in_list(
        conn, project=project, user_id=user.id, lease_seconds=lease_seconds, entry=entry, last_item=last_item))
    if lease is None:  # what the list held was taken or not for this user: look again before saying empty
        entry = await _the_list(state, project, wanted, fresh=True)
        lease = await dispatcher.run(lambda conn: claim_in_list(
            conn, project=project, user_id=user.id, lease_seconds=lease_seconds, entry=entry, last_item=last_item))
    if lease is not None:
        handed[(project.id, user.id)] = (wanted.queue, wanted.value, lease.item_id)
    return steered_answer(lease, project, wanted)
