"""The labelling queue: which item a labeller gets next, held for them by a lease.

Rules (one row per (item, user) in ``assignments``, state ``leased``/``labelled``/``skipped``):

- While a lease lives (``expires_at`` in the future) its item is held for that labeller.
  Leases expire lazily: a ``leased`` row whose ``expires_at`` has passed simply stops counting.
- An item is available to user U iff ``n_labels + (live leases by others) < target_labels``
  and U has no ``labelled`` or ``skipped`` assignment on it.
- Asking for the next item while holding a live lease in the project returns (and renews) the
  same item; a labeller holds at most one lease per project.
- Order: by the current model run's ``score_ranks`` (highest priority first) when the project
  has one, otherwise by the seeded random key ``items.rand`` (``ix_items_open``). Never file order.
- Audit draws: with an injected ``random.Random``, each claim is an *audit draw* with the
  probability of the project's ``audit_fraction``. An audit draw leases the first item available
  to the user in the seeded random order (``items.rand``) instead of the priority order, which
  is a uniformly random pick among the items still needing labels (the model never chose it),
  and flags the assignment ``is_audit`` (its annotation inherits the flag; undo keeps it). If
  nothing is available in that order the claim falls back to the normal order, unflagged.
  Nothing in a :class:`Lease` answer tells the labeller (the API never shows ``is_audit``).
  A skipped audit item returns to the queue and, having the smallest key, is usually the next
  audit draw of someone else.
- Claims are atomic: on SQLite the whole claim runs inside ``BEGIN IMMEDIATE``
  (:func:`labelloop.store.engine.writing`); on PostgreSQL the item row is locked with
  ``FOR UPDATE SKIP LOCKED`` and availability is checked again under the lock.
- On PostgreSQL a claim (with the renewal of the user's current lease) is one statement: the
  server-side function ``labelloop_claim`` (migration 0003) runs the very checks and writes of
  the SQLite path, statement for statement, in one round trip. :func:`claim_many` sends several
  users' claims in one statement (the server's batches).

What the labeller then does with the item (label, skip, renew, undo): :mod:`labelloop.store.labelling`.

Every function takes the connection of a write transaction and keyword-only arguments; ``now``
can be injected (tests, simulations) and defaults to the current UTC time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select

from labelloop.errors import ConflictError
from labelloop.store import rawsql as raw
from labelloop.store.projects import Project
from labelloop.store.schema import assignments, items, score_ranks, utcnow

CLAIM_BATCH = 32


@dataclass(frozen=True)
class Lease:
    """An item held for one labeller until ``expires_at``."""

    item_id: int
    external_id: str
    display: dict[str, Any]
    expires_at: datetime
    is_audit: bool = False


def lease_seconds_for(project: Project, default: int) -> int:
    """The project's own ``lease_seconds`` setting if set, else ``default`` (the global setting)."""
    value = project.setting("lease_seconds")
    return int(value) if value is not None else int(default)


def live_leases_by_others(item_id: Any, user_id: int, now: datetime) -> Any:
    """A scalar subquery: live leases on ``item_id`` (a column or value) by users other than
    ``user_id`` (0: by anyone)."""
    return (
        select(func.count())
        .select_from(assignments)
        .where(
            assignments.c.item_id == item_id,
            assignments.c.state == "leased",
            assignments.c.expires_at > now,
            assignments.c.user_id != user_id,
        )
        .scalar_subquery()
    )


def _finished_by(item_id: Any, user_id: int) -> Any:
    return exists().where(
        assignments.c.item_id == item_id,
        assignments.c.user_id == user_id,
        assignments.c.state.in_(("labelled", "skipped")),
    )


def candidates(
    conn: Connection, *, project: Project, now: datetime, limit: int, user_id: int | None = None,
    audit: bool = False,
) -> list[int]:
    """Ids of up to ``limit`` items that still need labels and are not held by live leases,
    in queue order. With ``user_id``: only items available to that user (and their own live
    leases do not count as holding). Without: any user's view (``user_id`` 0 matches nobody).
    With ``audit``: in the seeded random order alone (the audit draw), priorities ignored."""
    uid = user_id if user_id is not None else 0
    held = live_leases_by_others(items.c.id, uid, now)
    open_ = and_(items.c.project_id == project.id, items.c.n_labels < items.c.target_labels)
    conds = [open_, items.c.n_labels + held < items.c.target_labels]
    if user_id is not None:
        conds.append(~_finished_by(items.c.id, user_id))
    ids: list[int] = []
    if project.current_run_id is not None and not audit:
        query = (
            select(items.c.id)
            .select_from(score_ranks.join(items, items.c.id == score_ranks.c.item_id))
            .where(score_ranks.c.run_id == project.current_run_id, *conds)
            .order_by(score_ranks.c.rank)
            .limit(limit)
        )
        ids = list(conn.execute(query).scalars())
        if len(ids) >= limit:
            return ids
    # Items the model has not scored (or no model yet): the seeded random order.
    query = select(items.c.id).where(*conds).order_by(items.c.rand, items.c.id).limit(limit)
    if ids:
        query = query.where(items.c.id.not_in(ids))
    return ids + list(conn.execute(query).scalars())[: limit - len(ids)]


_CURRENT = """
SELECT a.item_id, i.external_id, i.display, a.expires_at, a.is_audit
FROM assignments a JOIN items i ON i.id = a.item_id
WHERE a.project_id = :project AND a.user_id = :user AND a.state = 'leased' AND a.expires_at > :now
ORDER BY a.leased_at DESC, a.id DESC LIMIT 1"""

# Live leases on an item by users other than :user (shared with labelloop.store.labelling).
LIVE_BY_OTHERS = """(SELECT count(*) FROM assignments o
 WHERE o.item_id = :item AND o.state = 'leased' AND o.expires_at > :now AND o.user_id <> :user)"""

# Locks the item only if it looks available (so items held by others are never locked).
_CLAIM_ITEM = """
SELECT id, external_id, display, n_labels, target_labels FROM items
WHERE id = :item AND project_id = :project AND n_labels < target_labels
 AND n_labels + """ + LIVE_BY_OTHERS + " < target_labels"

_CLAIM_CHECK = f"""
SELECT {LIVE_BY_OTHERS},
 (SELECT m.state FROM assignments m WHERE m.item_id = :item AND m.user_id = :user)"""

_INSERT_LEASE = """
INSERT INTO assignments (project_id, item_id, user_id, state, is_audit, leased_at, expires_at)
VALUES (:project, :item, :user, 'leased', :audit, :now, :expires)"""

_RENEW_OWN = """
UPDATE assignments SET leased_at = :now, expires_at = :expires, is_audit = :audit
WHERE item_id = :item AND user_id = :user"""

def current_lease(
    conn: Connection, *, project: Project, user_id: int, now: datetime | None = None
) -> Lease | None:
    """The user's live lease in this project, if any (the newest if, unusually, several)."""
    now = now or utcnow()
    row = raw.one(conn, _CURRENT, {"project": project.id, "user": user_id, "now": raw.ts(conn, now)})
    if row is None:
        return None
    return Lease(row[0], row[1], raw.from_json(row[2]), raw.from_ts(row[3]), bool(row[4]))


def try_claim(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_id: int,
    lease_seconds: int,
    now: datetime | None = None,
    wait: bool = False,
    audit: bool = False,
) -> Lease | str:
    """Lease ``item_id`` to the user if it is available to them (flagged ``is_audit`` with ``audit``).

    On PostgreSQL an item row locked by a concurrent claim is skipped, or with ``wait``
    waited for (then checked again).

    Returns the :class:`Lease`, or why not: ``"unavailable"`` (it needs no more labellers
    now, or a concurrent claim holds its row: nobody can have it at the moment) or
    ``"not_for_you"`` (the user labelled or skipped it already)."""
    now = now or utcnow()
    if not raw.is_sqlite(conn):
        claim = _pg_claim(conn, project=project, user_id=user_id, item_ids=[item_id],
                          lease_seconds=lease_seconds, now=now, audit=audit, wait=wait, renew=False)
        if claim.lease is not None:
            return claim.lease
        return "not_for_you" if claim.not_for_you else "unavailable"
    params = {"item": item_id, "project": project.id, "user": user_id, "now": raw.ts(conn, now)}
    row = raw.one(conn, _CLAIM_ITEM + raw.for_update(conn, skip_locked=not wait), params)
    if row is None:
        return "unavailable"
    _id, external_id, display, n_labels, target = row
    # Checked again under the lock, in a fresh statement (a new snapshot on PostgreSQL).
    held, mine = raw.one(conn, _CLAIM_CHECK, params)  # type: ignore[misc]
    if n_labels + held >= target:
        return "unavailable"
    if mine is not None and mine != "leased":
        return "not_for_you"
    expires = now + timedelta(seconds=lease_seconds)
    params["expires"] = raw.ts(conn, expires)
    if mine is not None:
        raw.run(conn, _RENEW_OWN, {**params, "audit": audit})
    else:
        raw.run(conn, _INSERT_LEASE, {**params, "audit": audit})
    return Lease(item_id, external_id, raw.from_json(display), expires, audit)


@dataclass(frozen=True)
class Claim:
    """What :func:`claim_from` did: the lease (None if no candidate was available to the user),
    how many candidates it tried from the front of the list, and which of those the user
    labelled or skipped already (never theirs again; available to others)."""

    lease: Lease | None
    tried: int
    not_for_you: list[int]
    renewed: bool = False


# PostgreSQL: the claim in one round trip (the function of migration 0003).
_PG_CLAIM = """SELECT * FROM labelloop_claim(:project::integer, :user::integer, :items::bigint[],
 :now::timestamptz, :expires::timestamptz, :audit::boolean, :wait::boolean, :renew::boolean)"""


def _pg_claim(
    conn: Connection, *, project: Project, user_id: int, item_ids: list[int], lease_seconds: int, now: datetime,
    audit: bool, wait: bool, renew: bool,
) -> Claim:
    expires = now + timedelta(seconds=lease_seconds)
    row = raw.one(conn, _PG_CLAIM, {"project": project.id, "user": user_id, "items": raw.int_array(item_ids), "now": now,
                                    "expires": expires, "audit": audit, "wait": wait, "renew": renew})
    assert row is not None
    return _claim_of(row, expires)


def claim_from(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_ids: list[int],
    lease_seconds: int,
    now: datetime | None = None,
    audit: bool = False,
    renew: bool = False,
) -> Claim:
    """Lease the first of ``item_ids`` available to the user (:func:`try_claim` for each in turn,
    locked rows skipped); with ``renew``, first renew the user's live lease in the project if
    they hold one (:func:`renew_current`; then ``renewed`` and nothing is tried).

    On PostgreSQL all of it is one statement (``labelloop_claim``, one round trip)."""
    now = now or utcnow()
    if not raw.is_sqlite(conn):
        return _pg_claim(conn, project=project, user_id=user_id, item_ids=list(item_ids),
                         lease_seconds=lease_seconds, now=now, audit=audit, wait=False, renew=renew)
    if renew:
        lease = renew_current(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now)
        if lease is not None:
            return Claim(lease, 0, [], True)
    not_for_you: list[int] = []
    for tried, item_id in enumerate(item_ids, 1):
        result = try_claim(conn, project=project, user_id=user_id, item_id=item_id, lease_seconds=lease_seconds,
                           now=now, audit=audit)
        if isinstance(result, Lease):
            return Claim(result, tried, not_for_you)
        if result == "not_for_you":
            not_for_you.append(item_id)
    return Claim(None, len(item_ids), not_for_you)


# PostgreSQL: several users' claims in one statement (one round trip); the function runs once per
# user, in order, each on its own slice of the candidates.
_PG_CLAIM_MANY = """SELECT c.* FROM unnest(:users::integer[], :los::integer[], :his::integer[])
 WITH ORDINALITY AS x(usr, lo, hi, n)
CROSS JOIN LATERAL labelloop_claim(:project::integer, x.usr, (:items::bigint[])[x.lo:x.hi], :now::timestamptz,
 :expires::timestamptz, false, false, true) AS c
ORDER BY x.n"""


def claim_many(
    conn: Connection, *, project: Project, requests: list[tuple[int, list[int]]], lease_seconds: int,
    now: datetime | None = None,
) -> list[Claim]:
    """:func:`claim_from` with ``renew`` for each ``(user id, candidate ids)`` in turn (not audit
    draws); on PostgreSQL all in one statement. Give each user candidates of their own: a user's
    claim sees the leases the earlier ones of the call made."""
    now = now or utcnow()
    if raw.is_sqlite(conn):
        return [claim_from(conn, project=project, user_id=user_id, item_ids=ids, lease_seconds=lease_seconds,
                           now=now, renew=True) for user_id, ids in requests]
    los, his, flat = [], [], []
    for _user_id, ids in requests:
        los.append(len(flat) + 1)
        flat.extend(ids)
        his.append(len(flat))
    expires = now + timedelta(seconds=lease_seconds)
    rows = raw.all_rows(conn, _PG_CLAIM_MANY, {
        "project": project.id, "users": raw.int_array(u for u, _ in requests), "los": raw.int_array(los), "his": raw.int_array(his),
        "items": raw.int_array(flat), "now": now, "expires": expires,
    })
    return [_claim_of(row, expires) for row in rows]


def _claim_of(row: Any, expires: datetime) -> Claim:
    """A row of ``labelloop_claim`` as a :class:`Claim`."""
    item_id, external_id, display, is_audit, renewed, tried, not_for_you = row
    lease = None if item_id is None else Lease(item_id, external_id, raw.from_json(display), expires, bool(is_audit))
    return Claim(lease, int(tried), list(not_for_you), bool(renewed))


def renew_current(
    conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: datetime | None = None
) -> Lease | None:
    """The user's live lease in the project, renewed to ``now + lease_seconds``; else None."""
    now = now or utcnow()
    if not raw.is_sqlite(conn):
        return _pg_claim(conn, project=project, user_id=user_id, item_ids=[], lease_seconds=lease_seconds,
                         now=now, audit=False, wait=False, renew=True).lease
    lease = current_lease(conn, project=project, user_id=user_id, now=now)
    if lease is None:
        return None
    expires = now + timedelta(seconds=lease_seconds)
    set_expiry(conn, item_id=lease.item_id, user_id=user_id, now=now, expires=expires)
    return Lease(lease.item_id, lease.external_id, lease.display, expires, lease.is_audit)


def is_audit_draw(project: Project, rng: random.Random | None) -> bool:
    """Whether this claim is an audit draw: probability ``audit_fraction``; never without ``rng``."""
    if rng is None:
        return False
    fraction = float(project.setting("audit_fraction"))
    return fraction > 0.0 and rng.random() < fraction


def next_item(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    lease_seconds: int,
    now: datetime | None = None,
    rng: random.Random | None = None,
    may_wait: bool = True,
) -> Lease | None:
    """The item this user should label next, leased to them; None when nothing is left for them.

    A user who holds a live lease in the project gets that same item again (lease renewed).
    With ``rng``, the claim is an audit draw with probability ``audit_fraction`` (see the
    module's notes); without, the queue order alone serves. With ``may_wait=False`` (a
    transaction holding other rows' locks, where waiting could deadlock) :class:`WouldWait` is
    raised instead of waiting for concurrent claims."""
    now = now or utcnow()
    lease = renew_current(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now)
    if lease is not None:
        return lease
    if is_audit_draw(project, rng):
        lease = claim_first(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now,
                            audit=True, may_wait=may_wait)
        if lease is not None:
            return lease
    return claim_first(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now,
                       may_wait=may_wait)


class WouldWait(Exception):
    """Raised by a claim told not to wait (``may_wait=False``) where it would have to wait for
    another transaction's row lock: the caller runs it again where waiting is safe."""


def claim_first(
    conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: datetime, audit: bool = False,
    may_wait: bool = True,
) -> Lease | None:
    """Lease the first item available to the user in queue order (with ``audit``: in the seeded
    random order, flagged as an audit item); None when nothing is available."""
    for attempt in range(20):
        ids = candidates(conn, project=project, now=now, limit=CLAIM_BATCH, user_id=user_id, audit=audit)
        if not ids:
            return None
        # Concurrent claims lock rows our snapshot still shows as free: skip them at first;
        # if that keeps failing (the end of the queue), wait for their outcome instead.
        if attempt >= 2 and not may_wait:
            raise WouldWait(f"claim in project {project.name!r} would wait for concurrent claims")
        for item_id in ids:
            result = try_claim(
                conn, project=project, user_id=user_id, item_id=item_id, lease_seconds=lease_seconds,
                now=now, wait=attempt >= 2, audit=audit,
            )
            if isinstance(result, Lease):
                return result
    raise ConflictError("too many concurrent claims: no item could be leased; try again")


def set_expiry(conn: Connection, *, item_id: int, user_id: int, now: datetime, expires: datetime) -> None:
    raw.run(conn, "UPDATE assignments SET expires_at = :expires WHERE item_id = :item AND user_id = :user",
            {"expires": raw.ts(conn, expires), "item": item_id, "user": user_id})
