"""The labelling queue: which item a labeller gets next, held for them by a lease.

Rules (one row per (item, user) in ``assignments``, state ``leased``/``labelled``/``skipped``):

- While a lease lives (``expires_at`` in the future) its item is held for that labeller.
  Leases expire lazily: a ``leased`` row whose ``expires_at`` has passed simply stops counting.
- An item is available to user U iff ``n_labels + (live leases by others) < target_labels``
  and U has no ``labelled`` or ``skipped`` assignment on it.
- Asking for the next item while holding a live lease in the project returns (and renews) the
  same item; a labeller holds at most one lease per project.
- Order: by the current model run's ``item_scores.priority`` (highest first) when the project
  has one, otherwise by the seeded random key ``items.rand`` (``ix_items_open``). Never file order.
- Claims are atomic: on SQLite the whole claim runs inside ``BEGIN IMMEDIATE``
  (:func:`labelloop.store.engine.writing`); on PostgreSQL the item row is locked with
  ``FOR UPDATE SKIP LOCKED`` and availability is checked again under the lock.

Every function takes the connection of a write transaction and keyword-only arguments; ``now``
can be injected (tests, simulations) and defaults to the current UTC time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update

from labelloop.errors import ConflictError, NotFoundError
from labelloop.store.labels import refresh_items
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, assignments, item_scores, items, utcnow

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


def _live_leases_by_others(item_id: Any, user_id: int, now: datetime) -> Any:
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
    conn: Connection, *, project: Project, now: datetime, limit: int, user_id: int | None = None
) -> list[int]:
    """Ids of up to ``limit`` items that still need labels and are not held by live leases,
    in queue order. With ``user_id``: only items available to that user (and their own live
    leases do not count as holding). Without: any user's view (``user_id`` 0 matches nobody)."""
    uid = user_id if user_id is not None else 0
    held = _live_leases_by_others(items.c.id, uid, now)
    open_ = and_(items.c.project_id == project.id, items.c.n_labels < items.c.target_labels)
    conds = [open_, items.c.n_labels + held < items.c.target_labels]
    if user_id is not None:
        conds.append(~_finished_by(items.c.id, user_id))
    ids: list[int] = []
    if project.current_run_id is not None:
        query = (
            select(items.c.id)
            .select_from(item_scores.join(items, items.c.id == item_scores.c.item_id))
            .where(item_scores.c.run_id == project.current_run_id, *conds)
            .order_by(item_scores.c.priority.desc(), item_scores.c.item_id)
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


def current_lease(
    conn: Connection, *, project: Project, user_id: int, now: datetime | None = None
) -> Lease | None:
    """The user's live lease in this project, if any (the newest if, unusually, several)."""
    now = now or utcnow()
    row = conn.execute(
        select(items.c.id, items.c.external_id, items.c.display, assignments.c.expires_at, assignments.c.is_audit)
        .select_from(assignments.join(items, items.c.id == assignments.c.item_id))
        .where(
            assignments.c.project_id == project.id,
            assignments.c.user_id == user_id,
            assignments.c.state == "leased",
            assignments.c.expires_at > now,
        )
        .order_by(assignments.c.leased_at.desc(), assignments.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Lease(row.id, row.external_id, dict(row.display), row.expires_at, bool(row.is_audit))


def try_claim(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_id: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> Lease | str:
    """Lease ``item_id`` to the user if it is available to them.

    Returns the :class:`Lease`, or why not: ``"busy"`` (locked by a concurrent claim: try
    another), ``"full"`` (needs no more labellers now: nobody can have it) or ``"not_for_you"``
    (the user labelled or skipped it already)."""
    now = now or utcnow()
    row = conn.execute(
        select(items.c.id, items.c.external_id, items.c.display, items.c.n_labels, items.c.target_labels)
        .where(items.c.id == item_id, items.c.project_id == project.id)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        exists_ = conn.execute(select(items.c.id).where(items.c.id == item_id, items.c.project_id == project.id))
        return "busy" if exists_.first() is not None else "full"
    if row.n_labels >= row.target_labels:
        return "full"
    held = conn.execute(select(_live_leases_by_others(item_id, user_id, now))).scalar_one()
    if row.n_labels + held >= row.target_labels:
        return "full"
    mine = conn.execute(
        select(assignments.c.id, assignments.c.state).where(
            assignments.c.item_id == item_id, assignments.c.user_id == user_id
        )
    ).first()
    expires = now + timedelta(seconds=lease_seconds)
    if mine is not None and mine.state != "leased":
        return "not_for_you"
    if mine is not None:
        conn.execute(
            update(assignments).where(assignments.c.id == mine.id).values(leased_at=now, expires_at=expires)
        )
    else:
        conn.execute(
            insert(assignments).values(
                project_id=project.id, item_id=item_id, user_id=user_id, state="leased",
                leased_at=now, expires_at=expires,
            )
        )
    return Lease(row.id, row.external_id, dict(row.display), expires)


def renew_current(
    conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: datetime | None = None
) -> Lease | None:
    """The user's live lease in the project, renewed to ``now + lease_seconds``; else None."""
    now = now or utcnow()
    lease = current_lease(conn, project=project, user_id=user_id, now=now)
    if lease is None:
        return None
    expires = now + timedelta(seconds=lease_seconds)
    _set_expiry(conn, item_id=lease.item_id, user_id=user_id, expires=expires)
    return Lease(lease.item_id, lease.external_id, lease.display, expires, lease.is_audit)


def next_item(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> Lease | None:
    """The item this user should label next, leased to them; None when nothing is left for them.

    A user who holds a live lease in the project gets that same item again (lease renewed)."""
    now = now or utcnow()
    lease = renew_current(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now)
    if lease is not None:
        return lease
    for _attempt in range(20):
        ids = candidates(conn, project=project, now=now, limit=CLAIM_BATCH, user_id=user_id)
        if not ids:
            return None
        for item_id in ids:
            result = try_claim(
                conn, project=project, user_id=user_id, item_id=item_id, lease_seconds=lease_seconds, now=now
            )
            if isinstance(result, Lease):
                return result
    raise ConflictError("too many concurrent claims: no item could be leased; try again")


def _assignment(conn: Connection, *, project: Project, item_id: int, user_id: int) -> Any:
    item = conn.execute(
        select(items.c.id, items.c.n_labels, items.c.target_labels)
        .where(items.c.id == item_id, items.c.project_id == project.id)
        .with_for_update()
    ).first()
    if item is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    mine = conn.execute(
        select(assignments).where(assignments.c.item_id == item_id, assignments.c.user_id == user_id)
    ).first()
    return item, mine


def _check_held(conn: Connection, *, project: Project, item: Any, mine: Any, user_id: int, now: datetime) -> None:
    """Raise ConflictError unless the item is (still) the user's to label or skip.

    An expired lease is still honoured while nobody else has taken the item over."""
    if mine is None:
        raise ConflictError(f"item {item.id} is not leased to you: ask for the next item first")
    if mine.state == "labelled":
        raise ConflictError(f"you have labelled item {item.id} already (undo it to change the label)")
    if mine.state == "skipped":
        raise ConflictError(f"you skipped item {item.id}; it is no longer leased to you")
    if mine.expires_at <= now:
        held = conn.execute(select(_live_leases_by_others(item.id, user_id, now))).scalar_one()
        if item.n_labels + held >= item.target_labels:
            raise ConflictError(
                f"your lease on item {item.id} expired and the item went to someone else; ask for the next item"
            )


def label_item(
    conn: Connection, *, project: Project, user_id: int, item_id: int, tag: str, now: datetime | None = None
) -> None:
    """Record the user's label ``tag`` on a leased item (annotation source 'human').

    Unknown or retired tag: InvalidInputError; item not leased to the user: ConflictError."""
    now = now or utcnow()
    tag_id = project.tag_id(tag)
    item, mine = _assignment(conn, project=project, item_id=item_id, user_id=user_id)
    _check_held(conn, project=project, item=item, mine=mine, user_id=user_id, now=now)
    conn.execute(
        insert(annotations).values(
            project_id=project.id, item_id=item_id, user_id=user_id, tag_id=tag_id, source="human",
            is_audit=mine.is_audit, created_at=now, updated_at=now,
        )
    )
    conn.execute(
        update(assignments).where(assignments.c.id == mine.id).values(state="labelled", finished_at=now)
    )
    refresh_items(conn, item_ids=[item_id])


def skip_item(
    conn: Connection, *, project: Project, user_id: int, item_id: int, now: datetime | None = None
) -> None:
    """The user passes on a leased item: it goes back to the queue for others, never to them."""
    now = now or utcnow()
    item, mine = _assignment(conn, project=project, item_id=item_id, user_id=user_id)
    _check_held(conn, project=project, item=item, mine=mine, user_id=user_id, now=now)
    conn.execute(
        update(assignments).where(assignments.c.id == mine.id).values(state="skipped", finished_at=now)
    )


def renew_lease(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_id: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> datetime:
    """Extend the user's lease on ``item_id`` to ``now + lease_seconds``; returns the new expiry."""
    now = now or utcnow()
    item, mine = _assignment(conn, project=project, item_id=item_id, user_id=user_id)
    _check_held(conn, project=project, item=item, mine=mine, user_id=user_id, now=now)
    expires = now + timedelta(seconds=lease_seconds)
    _set_expiry(conn, item_id=item_id, user_id=user_id, expires=expires)
    return expires


def _set_expiry(conn: Connection, *, item_id: int, user_id: int, expires: datetime) -> None:
    conn.execute(
        update(assignments)
        .where(assignments.c.item_id == item_id, assignments.c.user_id == user_id)
        .values(expires_at=expires)
    )


def release_leases(conn: Connection, *, project: Project, user_id: int) -> int:
    """Give back every lease the user holds in the project (live or expired); returns how many."""
    result = conn.execute(
        delete(assignments).where(
            assignments.c.project_id == project.id,
            assignments.c.user_id == user_id,
            assignments.c.state == "leased",
        )
    )
    return int(result.rowcount or 0)


def undo_last(
    conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: datetime | None = None
) -> Lease:
    """Undo the user's last label in the project: the annotation is deleted and the item is
    leased to them again (any other lease they held there is given back). NotFoundError when
    they have no label to undo."""
    now = now or utcnow()
    last = conn.execute(
        select(annotations.c.id, annotations.c.item_id)
        .where(
            annotations.c.project_id == project.id,
            annotations.c.user_id == user_id,
            annotations.c.source == "human",
        )
        .order_by(annotations.c.created_at.desc(), annotations.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        raise NotFoundError(f"you have no label to undo in project {project.name!r}")
    conn.execute(
        select(items.c.id).where(items.c.id == last.item_id).with_for_update()
    ).first()
    release_leases(conn, project=project, user_id=user_id)
    conn.execute(delete(annotations).where(annotations.c.id == last.id))
    expires = now + timedelta(seconds=lease_seconds)
    result = conn.execute(
        update(assignments)
        .where(assignments.c.item_id == last.item_id, assignments.c.user_id == user_id)
        .values(state="leased", leased_at=now, expires_at=expires, finished_at=None)
    )
    if not result.rowcount:
        conn.execute(
            insert(assignments).values(
                project_id=project.id, item_id=last.item_id, user_id=user_id, state="leased",
                leased_at=now, expires_at=expires,
            )
        )
    refresh_items(conn, item_ids=[last.item_id])
    row = conn.execute(
        select(items.c.external_id, items.c.display).where(items.c.id == last.item_id)
    ).one()
    return Lease(last.item_id, row.external_id, dict(row.display), expires)
