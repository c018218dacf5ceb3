"""Steered queues (issue 13): where a steered ``next`` takes its candidates, and the rows it writes.

A steered claim leases through the very checks of the default queue
(:func:`labelloop.store.queue.claim_from`; ``labelloop_claim`` on PostgreSQL), never as an
audit draw, then marks the assignment ``steered``. The sources, each a list of item ids in the
queue's order (labelled items included, so that held-out audit items show where they rank):

- ``search``: the items matching ``q`` (:mod:`labelloop.store.search`), most informative first
  (the current run's serving order among the matches; text rank when there is no model, and for
  matches the run did not score);
- ``similar``: :func:`labelloop.store.steerlists.similar_ids` of ``item``;
- ``likely`` / ``unsure``: :func:`labelloop.store.steerlists.likely_ids` / ``unsure_ids`` of ``tag``;
- ``random``: the open items in the project's seeded random order (``candidates(audit=True)``).

**The audit stays unbiased.** A held-out audit item is "reached" when an order that serves
items walks past it (orchestrator/heldout.py): :func:`record_reached` stores the audit items
that ranked before the item a steered claim leased, in that queue's list, and
:func:`reached_ids` hands them to the round, which moves them into training as if that queue
had picked them. So the items still held out are those no queue, default or steered, would
have served: a uniform sample of the unlabelled rest. ``random`` is exempt: its picks do not
depend on the items' content, so they leave the rest's distribution (and the audit sample's)
as they were; walking it past audit items would empty the audit sample (both follow ``rand``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, exists, literal, select

from labelloop.store import queue as store_queue
from labelloop.store import rawsql as raw
from labelloop.store.projects import Project
from labelloop.store.schema import assignments, items, score_ranks, steer_reached, utcnow

QUEUES = ("default", "search", "similar", "likely", "unsure", "random")
STEERED = QUEUES[1:]


@dataclass(frozen=True)
class Source:
    """A steered queue's list at one moment: every id in the queue's order (``order``), the ids
    still open for labelling among them (``open_ids``, in order) and the audit items among them
    (``audit_at``: id -> position in ``order``)."""

    order: list[int]
    open_ids: list[int]
    audit_at: dict[int, int]
    at: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.at.update((i, pos) for pos, i in enumerate(self.order))

    def position(self, item_id: int) -> int | None:
        return self.at.get(item_id)

    def audit_before(self, item_id: int) -> list[int]:
        """The audit items ranked before ``item_id`` in the list (all of them if it is not in it)."""
        pos = self.position(item_id)
        return [i for i, at in self.audit_at.items() if pos is None or at < pos]


def source(conn: Connection, *, project: Project, order: list[int], audit_rule: bool = True,
           now: datetime | None = None) -> Source:
    """The :class:`Source` of a list of ids: which are open (need labels and are not all held
    by live leases, as the default queue's candidates: items others hold would only cost the
    writer failed claims), which are audit items (labelled or leased as audit draws; none when
    ``audit_rule`` is off). One query per 1,000 ids."""
    if not order:
        return Source([], [], {})
    seen: set[int] = set()
    unique = [i for i in order if not (i in seen or seen.add(i))]
    open_set: set[int] = set()
    audit_set: set[int] = set()
    held = store_queue.live_leases_by_others(items.c.id, 0, now or utcnow())  # user 0: anyone's
    is_open = and_(items.c.n_labels < items.c.target_labels,
                   items.c.n_labels + held < items.c.target_labels).label("open")
    is_audit = (exists().where(assignments.c.item_id == items.c.id, assignments.c.is_audit.is_(True))
                if audit_rule else literal(False)).label("audit")
    for start in range(0, len(unique), 1000):
        chunk = unique[start:start + 1000]
        for item_id, open_, audit in conn.execute(
            select(items.c.id, is_open, is_audit).where(items.c.project_id == project.id, items.c.id.in_(chunk))
        ):
            if open_:
                open_set.add(item_id)
            if audit:
                audit_set.add(item_id)
    return Source(unique, [i for i in unique if i in open_set],
                  {i: at for at, i in enumerate(unique) if i in audit_set})


def search_order(conn: Connection, *, project: Project, query: str, limit: int) -> list[int]:
    """Items matching ``query``, most informative first: the current run's serving order among
    the matches, then (matches the run did not score, or no model yet) by text rank. A bad
    query raises the search's own error (a 422 in the server)."""
    from labelloop.store import search as store_search

    ids: list[int] = []
    if project.current_run_id is not None:
        cond = store_search.match_condition(conn, project_id=project.id, query=query)
        ids = list(conn.execute(
            select(score_ranks.c.item_id).select_from(score_ranks.join(items, items.c.id == score_ranks.c.item_id))
            .where(score_ranks.c.run_id == project.current_run_id, cond)
            .order_by(score_ranks.c.rank).limit(limit)
        ).scalars())
    if len(ids) < limit:
        seen = set(ids)
        more = store_search.ranked_ids(conn, project_id=project.id, query=query, limit=limit)
        ids.extend(i for i in more if i not in seen)
    return ids[:limit]


def random_order(conn: Connection, *, project: Project, limit: int, now: datetime | None = None) -> list[int]:
    """Open items not held by others, in the project's seeded random order (the audit draws' order)."""
    return store_queue.candidates(conn, project=project, now=now or utcnow(), limit=limit, audit=True)


@dataclass(frozen=True)
class Held:
    """The user's live lease in the project and whether a steered queue served it."""

    item_id: int
    steered: bool


_HELD = """SELECT item_id, steered FROM assignments
WHERE project_id = :project AND user_id = :user AND state = 'leased' AND expires_at > :now
ORDER BY leased_at DESC, id DESC LIMIT 1"""


def held_lease(conn: Connection, *, project: Project, user_id: int, now: datetime | None = None) -> Held | None:
    row = raw.one(conn, _HELD, {"project": project.id, "user": user_id, "now": raw.ts(conn, now or utcnow())})
    return None if row is None else Held(int(row[0]), bool(row[1]))


def release_lease(conn: Connection, *, project: Project, user_id: int, item_id: int) -> None:
    """Give up the user's lease on the item (switching queues): the item is free for anyone again,
    the user included; nothing else changes (a label or skip is never released)."""
    raw.run(conn, "DELETE FROM assignments WHERE item_id = :item AND user_id = :user AND project_id = :project"
                  " AND state = 'leased'", {"item": item_id, "user": user_id, "project": project.id})


def mark_steered(conn: Connection, *, item_id: int, user_id: int) -> None:
    """Flag the user's assignment of the item as served by a steered queue (never an audit draw)."""
    raw.run(conn, "UPDATE assignments SET steered = true, is_audit = false WHERE item_id = :item AND user_id = :user",
            {"item": item_id, "user": user_id})


def claim_steered(
    conn: Connection, *, project: Project, user_id: int, item_ids: list[int], lease_seconds: int,
    now: datetime | None = None,
) -> store_queue.Claim:
    """Lease the first of ``item_ids`` available to the user (:func:`labelloop.store.queue.claim_from`,
    the default queue's checks), not as an audit draw, marked steered."""
    claim = store_queue.claim_from(conn, project=project, user_id=user_id, item_ids=item_ids,
                                   lease_seconds=lease_seconds, now=now, audit=False)
    if claim.lease is not None:
        mark_steered(conn, item_id=claim.lease.item_id, user_id=user_id)
    return claim


def record_reached(conn: Connection, *, project: Project, item_ids: list[int], now: datetime | None = None) -> int:
    """Store audit items a steered queue walked past (see the module's notes); existing ones stay."""
    if not item_ids:
        return 0
    when = raw.ts(conn, now or utcnow())
    done = 0
    for item_id in item_ids:
        done += raw.run(conn, "INSERT INTO steer_reached (item_id, project_id, reached_at) VALUES (:item, :project, :now)"
                              " ON CONFLICT (item_id) DO NOTHING", {"item": int(item_id), "project": project.id, "now": when})
    return done


def reached_ids(conn: Connection, *, project_id: int) -> np.ndarray:
    """Every audit item a steered queue reached in the project (ascending ids)."""
    ids = conn.execute(select(steer_reached.c.item_id).where(steer_reached.c.project_id == project_id)).scalars()
    return np.sort(np.fromiter(ids, dtype=np.int64))


def item_in_project(conn: Connection, *, project: Project, item_id: int) -> bool:
    return conn.execute(select(items.c.id).where(items.c.id == item_id, items.c.project_id == project.id)).first() \
        is not None


def describe(queue: str, params: dict[str, Any]) -> str:
    """A queue for people: ``search "q"``, ``likely A``, ``similar to item 12``, ``random``."""
    if queue == "search":
        return f'search "{params.get("q")}"'
    if queue == "similar":
        return f"similar to item {params.get('item')}"
    if queue in ("likely", "unsure"):
        return f"{queue} {params.get('tag')}"
    return queue
