"""What a labeller does with the item leased to them: label it, skip it, renew the lease, give
leases back, undo the last label. Which item they get, and the lease rules, are in
:mod:`labelloop.store.queue`.

- A label, a skip or a renewal needs the item to be the user's: leased to them and not yet
  labelled or skipped by them. An expired lease still counts while nobody else has taken the
  item over. Refusals name the reason (:func:`_refusal`) and write nothing.
- A label records an annotation (source ``human``, with the lease's audit flag) and keeps the
  item's final label by the rule of :func:`labelloop.store.labels.final_label`. On PostgreSQL it
  is one statement (``labelloop_label`` of migration 0003); :func:`label_many` sends several
  users' labels in one statement (the server's batches).
- In a multi-label project a label is a *set* of tags (``tags``, possibly empty: "none of these
  applies"), stored as a bit mask, and the item's final set follows
  :func:`labelloop.store.labels.final_set`; on PostgreSQL it is one statement too
  (``labelloop_label_set`` of migration 0005). Sending a single ``tag`` to a multi-label project,
  or a list to a single-label one, is an InvalidInputError that says which shape to send.
- A skipped item goes back to the queue for others, never to that user again.
- Undo takes the user's last label or skip (a stack of both): a label is deleted, a skip forgotten,
  and the item is leased to them again (an audit item stays one); a skipped item that went to
  others meanwhile cannot come back (its skip is forgotten all the same).

Every function takes the connection of a write transaction and keyword-only arguments; ``now``
can be injected (tests, simulations) and defaults to the current UTC time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from labelloop.errors import (
    ConflictError,
    InvalidInputError,
    LabelloopError,
    NotFoundError,
)
from labelloop.store import rawsql as raw
from labelloop.store.labels import final_label, final_set, refresh_items
from labelloop.store.projects import Project
from labelloop.store.queue import LIVE_BY_OTHERS, Lease, set_expiry
from labelloop.store.schema import annotations, assignments, items, utcnow
from labelloop.store.tagsets import mask_of

_HELD = f"""
SELECT i.n_labels, i.target_labels, i.adjudicated_tag_id, a.id, a.state, a.expires_at, a.is_audit, {LIVE_BY_OTHERS},
 i.adjudicated_mask
FROM items i LEFT JOIN assignments a ON a.item_id = i.id AND a.user_id = :user
WHERE i.id = :item AND i.project_id = :project"""


def _refusal(outcome: str, *, project: Project, item_id: int) -> Exception:
    """The error of a refused label or skip, as :func:`_held` words it."""
    if outcome == "unknown":
        return NotFoundError(f"no item {item_id} in project {project.name!r}")
    if outcome == "not_leased":
        return ConflictError(f"item {item_id} is not leased to you: ask for the next item first")
    if outcome == "labelled":
        return ConflictError(f"you have labelled item {item_id} already: change it in My history (PUT the label)")
    if outcome == "skipped":
        return ConflictError(f"you skipped item {item_id}; it is no longer leased to you")
    if outcome == "expired":
        return ConflictError(
            f"your lease on item {item_id} expired and the item went to someone else; ask for the next item"
        )
    raise AssertionError(f"unexpected outcome {outcome!r} of a label")


refusal = _refusal  # the same words for gold items (store/gold.py): nothing tells them apart


@dataclass(frozen=True)
class _Held:
    assignment_id: int
    is_audit: bool
    adjudicated_tag_id: int | None
    adjudicated_mask: int | None = None


def _held(conn: Connection, *, project: Project, item_id: int, user_id: int, now: datetime) -> _Held:
    """Lock the item and check that it is (still) the user's to label, skip or renew.

    An expired lease is still honoured while nobody else has taken the item over.
    NotFoundError for an unknown item, ConflictError otherwise."""
    params = {"item": item_id, "project": project.id, "user": user_id, "now": raw.ts(conn, now)}
    row = raw.one(conn, _HELD + (raw.for_update(conn) and " FOR UPDATE OF i"), params)
    if row is None:
        raise _refusal("unknown", project=project, item_id=item_id)
    n_labels, target, adjudicated, assignment_id, state, expires_at, is_audit, held, adjudicated_mask = row
    if assignment_id is None:
        raise _refusal("not_leased", project=project, item_id=item_id)
    if state in ("labelled", "skipped"):
        raise _refusal(state, project=project, item_id=item_id)
    if raw.from_ts(expires_at) <= now and n_labels + held >= target:
        raise _refusal("expired", project=project, item_id=item_id)
    return _Held(assignment_id, bool(is_audit), adjudicated, adjudicated_mask)


_ANNOTATE = """INSERT INTO annotations (project_id, item_id, user_id, tag_id, source, is_audit, created_at, updated_at)
VALUES (:project, :item, :user, :tag, 'human', :audit, :now, :now)"""

_FINISH = "UPDATE assignments SET state = :state, finished_at = :now WHERE id = :assignment"

# Labels with a retired tag do not count (see labelloop.store.labels).
_ITEM_LABELS = """SELECT an.tag_id FROM annotations an JOIN tags tg ON tg.id = an.tag_id
WHERE an.item_id = :item AND NOT tg.retired ORDER BY an.id"""

_ITEM_STATE = """
UPDATE items SET n_labels = :n, label_tag_id = :tag, label_source = :source, updated_at = :now
WHERE id = :item"""


def refresh_item(conn: Connection, *, item_id: int, adjudicated: int | None, now: datetime) -> None:
    """:func:`labelloop.store.labels.refresh_items` for one item, on the hot path (same rule)."""
    tag_ids = [r[0] for r in raw.all_rows(conn, _ITEM_LABELS, {"item": item_id})]
    _set_item_label(conn, item_id=item_id, tag_ids=tag_ids, adjudicated=adjudicated, now=now)


def _set_item_label(
    conn: Connection, *, item_id: int, tag_ids: list[int], adjudicated: int | None, now: datetime
) -> None:
    tag_id, source = final_label(tag_ids, adjudicated)
    raw.run(conn, _ITEM_STATE, {"n": len(tag_ids), "tag": tag_id, "source": source,
                                "now": raw.ts(conn, now), "item": item_id})


_ANNOTATE_SET = """INSERT INTO annotations (project_id, item_id, user_id, tag_mask, source, is_audit, created_at,
 updated_at) VALUES (:project, :item, :user, :mask, 'human', :audit, :now, :now)"""

# Every annotation counts as a label; retired tags' bits are dropped by the rule (labels.final_set).
_ITEM_MASKS = "SELECT tag_mask FROM annotations WHERE item_id = :item AND tag_mask IS NOT NULL ORDER BY id"
_ACTIVE_BITS = "SELECT bit FROM tags WHERE project_id = :project AND NOT retired AND bit IS NOT NULL"
_ITEM_SET_STATE = """
UPDATE items SET n_labels = :n, label_mask = :mask, label_source = :source, updated_at = :now
WHERE id = :item"""


def refresh_item_set(
    conn: Connection, *, project_id: int, item_id: int, adjudicated_mask: int | None, now: datetime
) -> None:
    """A multi-label item's :func:`labelloop.store.labels.refresh_items`, on the hot path (same rule)."""
    masks = [r[0] for r in raw.all_rows(conn, _ITEM_MASKS, {"item": item_id})]
    active = 0
    for (bit,) in raw.all_rows(conn, _ACTIVE_BITS, {"project": project_id}):
        active |= 1 << bit
    mask, source = final_set(masks, adjudicated_mask, active)
    raw.run(conn, _ITEM_SET_STATE, {"n": len(masks), "mask": mask, "source": source, "now": raw.ts(conn, now),
                                    "item": item_id})


def label_value(project: Project, *, tag: str | None = None, tags: Sequence[str] | None = None) -> int:
    """What a label stores: the tag's id (single-label projects, ``tag``) or the mask of ``tags``
    (multi-label projects; empty: none applies). InvalidInputError for the wrong shape or an
    unknown or retired tag, worded for the labeller."""
    if project.multi_label:
        if tag is not None or tags is None or isinstance(tags, (str, bytes)):
            raise InvalidInputError(
                f"project {project.name!r} is multi-label: send the list of tags that apply (empty: none)"
            )
        names = list(tags)
        if not all(isinstance(n, str) for n in names):
            raise InvalidInputError(f"project {project.name!r}: tags are names (strings), got {names!r}")
        return mask_of(project, names)
    if tags is not None or tag is None:
        raise InvalidInputError(f"project {project.name!r} is single-label: send one tag, not a list")
    if not isinstance(tag, str):
        raise InvalidInputError(f"project {project.name!r}: a tag is a name (a string), got {tag!r}")
    return project.tag_id(tag)


# PostgreSQL: the checks of _held and the writes in one round trip (the functions of migrations
# 0003 and 0005).
_PG_LABEL = """SELECT labelloop_label(:project::integer, :user::integer, :item::bigint, :tag::integer,
 :now::timestamptz)"""
_PG_LABEL_SET = """SELECT labelloop_label_set(:project::integer, :user::integer, :item::bigint, :tag::bigint,
 :now::timestamptz)"""


def label_item(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_id: int,
    tag: str | None = None,
    tags: Sequence[str] | None = None,
    now: datetime | None = None,
) -> None:
    """Record the user's label on a leased item (annotation source 'human'): ``tag`` in a
    single-label project, ``tags`` (the set that applies, possibly empty) in a multi-label one.

    Wrong shape, unknown or retired tag: InvalidInputError; item not leased to the user:
    ConflictError. A refusal writes nothing. On PostgreSQL the whole of it is one statement
    (``labelloop_label`` or ``labelloop_label_set``)."""
    now = now or utcnow()
    value = label_value(project, tag=tag, tags=tags)
    if not raw.is_sqlite(conn):
        sql = _PG_LABEL_SET if project.multi_label else _PG_LABEL
        row = raw.one(conn, sql, {"project": project.id, "user": user_id, "item": item_id, "tag": value, "now": now})
        assert row is not None
        if row[0] != "ok":
            raise _refusal(row[0], project=project, item_id=item_id)
        return
    held = _held(conn, project=project, item_id=item_id, user_id=user_id, now=now)
    params = {"project": project.id, "item": item_id, "user": user_id, "tag": value, "mask": value,
              "audit": held.is_audit, "now": raw.ts(conn, now), "state": "labelled", "assignment": held.assignment_id}
    raw.run(conn, _ANNOTATE_SET if project.multi_label else _ANNOTATE, params)
    raw.run(conn, _FINISH, params)
    if project.multi_label:
        refresh_item_set(conn, project_id=project.id, item_id=item_id, adjudicated_mask=held.adjudicated_mask,
                         now=now)
    else:
        refresh_item(conn, item_id=item_id, adjudicated=held.adjudicated_tag_id, now=now)


# PostgreSQL: several users' labels in one statement (one round trip), the function once per row.
_PG_LABEL_MANY = """SELECT labelloop_label(x.project, x.usr, x.item, x.tag, :now::timestamptz)
FROM unnest(:projects::integer[], :users::integer[], :items::bigint[], :tags::integer[])
 WITH ORDINALITY AS x(project, usr, item, tag, n)
ORDER BY x.n"""

# The same with multi-label requests among them (x.mask not null: labelloop_label_set).
_PG_LABEL_MIXED = """SELECT CASE WHEN x.mask IS NULL
 THEN labelloop_label(x.project, x.usr, x.item, x.tag, :now::timestamptz)
 ELSE labelloop_label_set(x.project, x.usr, x.item, x.mask, :now::timestamptz) END
FROM unnest(:projects::integer[], :users::integer[], :items::bigint[], :tags::integer[], :masks::bigint[])
 WITH ORDINALITY AS x(project, usr, item, tag, mask, n)
ORDER BY x.n"""


@dataclass(frozen=True)
class LabelRequest:
    """One user's label on one item of a project (see :func:`label_many`): ``tag`` for a
    single-label project, ``tags`` (a tuple, possibly empty) for a multi-label one."""

    project: Project
    user_id: int
    item_id: int
    tag: str | None = None
    tags: tuple[str, ...] | None = None


def _nullable_array(values: list[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def label_many(conn: Connection, requests: list[LabelRequest], *, now: datetime | None = None) -> list[Exception | None]:
    """:func:`label_item` for each request, in order; on PostgreSQL in one statement. Returns, per
    request, None when it was recorded or the error refusing it (which wrote nothing). A
    database error fails the whole call (the caller's transaction is then to be rolled back)."""
    now = now or utcnow()
    if raw.is_sqlite(conn):
        return [_label_outcome(conn, r, now) for r in requests]
    outcomes: list[Exception | None] = [None] * len(requests)
    sent: list[int] = []  # positions of the requests whose tag is known
    values: list[int] = []
    for i, r in enumerate(requests):
        try:
            values.append(label_value(r.project, tag=r.tag, tags=r.tags))
            sent.append(i)
        except LabelloopError as exc:
            outcomes[i] = exc
    if sent:
        params = {
            "projects": raw.int_array(requests[i].project.id for i in sent),
            "users": raw.int_array(requests[i].user_id for i in sent),
            "items": raw.int_array(requests[i].item_id for i in sent), "now": now,
        }
        multi = [requests[i].project.multi_label for i in sent]
        if any(multi):
            params["tags"] = _nullable_array([None if m else v for m, v in zip(multi, values, strict=True)])
            params["masks"] = _nullable_array([v if m else None for m, v in zip(multi, values, strict=True)])
            rows = raw.all_rows(conn, _PG_LABEL_MIXED, params)
        else:
            rows = raw.all_rows(conn, _PG_LABEL_MANY, {**params, "tags": raw.int_array(values)})
        for i, (outcome,) in zip(sent, rows, strict=True):
            if outcome != "ok":
                outcomes[i] = _refusal(outcome, project=requests[i].project, item_id=requests[i].item_id)
    return outcomes


def _label_outcome(conn: Connection, r: LabelRequest, now: datetime) -> Exception | None:
    try:  # label_item refuses before it writes
        label_item(conn, project=r.project, user_id=r.user_id, item_id=r.item_id, tag=r.tag, tags=r.tags, now=now)
    except LabelloopError as exc:
        return exc
    return None


def skip_item(
    conn: Connection, *, project: Project, user_id: int, item_id: int, now: datetime | None = None
) -> bool:
    """The user passes on a leased item: it goes back to the queue for others, never to them.
    Returns whether it was served as an audit item."""
    now = now or utcnow()
    held = _held(conn, project=project, item_id=item_id, user_id=user_id, now=now)
    raw.run(conn, _FINISH, {"state": "skipped", "now": raw.ts(conn, now), "assignment": held.assignment_id})
    return held.is_audit


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
    _held(conn, project=project, item_id=item_id, user_id=user_id, now=now)
    expires = now + timedelta(seconds=lease_seconds)
    set_expiry(conn, item_id=item_id, user_id=user_id, now=now, expires=expires)
    return expires


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


@dataclass(frozen=True)
class Undone:
    """What :func:`undo_last` undid (``what``: ``"label"`` or ``"skip"``) and the item's new lease;
    ``lease`` is None when a skipped item went to other labellers meanwhile (then the skip is
    forgotten, and the item may come back to the user later, in queue order)."""

    what: str
    item_id: int
    lease: Lease | None


def undo_last(
    conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: datetime | None = None
) -> Undone:
    """Undo the user's last label or skip in the project (undo is a stack of the two: each undo
    takes the latest one left). The item is leased to them again (any other lease they held
    there is given back), still an audit item if it was one: a label is deleted, a skip
    forgotten. A skipped item that others hold or have labelled since cannot come back: its skip
    is forgotten all the same and :attr:`Undone.lease` is None (the user keeps their lease).
    NotFoundError when they have nothing to undo."""
    now = now or utcnow()
    label = conn.execute(
        select(annotations.c.id, annotations.c.item_id, annotations.c.is_audit, annotations.c.created_at)
        .where(
            annotations.c.project_id == project.id,
            annotations.c.user_id == user_id,
            annotations.c.source == "human",
        )
        .order_by(annotations.c.created_at.desc(), annotations.c.id.desc())
        .limit(1)
    ).first()
    skip = conn.execute(
        select(assignments.c.id, assignments.c.item_id, assignments.c.is_audit, assignments.c.finished_at)
        .where(
            assignments.c.project_id == project.id,
            assignments.c.user_id == user_id,
            assignments.c.state == "skipped",
        )
        .order_by(assignments.c.finished_at.desc(), assignments.c.id.desc())
        .limit(1)
    ).first()
    if label is None and skip is None:
        raise NotFoundError(f"you have no label or skip to undo in project {project.name!r}")
    undo_skip = skip is not None and (label is None or skip.finished_at > label.created_at)
    last = skip if undo_skip else label
    assert last is not None
    item = conn.execute(
        select(items.c.n_labels, items.c.target_labels).where(items.c.id == last.item_id).with_for_update()
    ).one()
    if undo_skip and item.n_labels + _live_leases_by_others(conn, last.item_id, user_id, now) >= item.target_labels:
        conn.execute(delete(assignments).where(assignments.c.id == last.id))
        return Undone("skip", last.item_id, None)
    release_leases(conn, project=project, user_id=user_id)
    if not undo_skip:
        conn.execute(delete(annotations).where(annotations.c.id == last.id))
    expires = now + timedelta(seconds=lease_seconds)
    result = conn.execute(
        update(assignments)
        .where(assignments.c.item_id == last.item_id, assignments.c.user_id == user_id)
        .values(state="leased", leased_at=now, expires_at=expires, finished_at=None, is_audit=bool(last.is_audit))
    )
    if not result.rowcount:
        conn.execute(
            insert(assignments).values(
                project_id=project.id, item_id=last.item_id, user_id=user_id, state="leased",
                is_audit=bool(last.is_audit), leased_at=now, expires_at=expires,
            )
        )
    if not undo_skip:
        refresh_items(conn, item_ids=[last.item_id])
    row = conn.execute(select(items.c.external_id, items.c.display).where(items.c.id == last.item_id)).one()
    lease = Lease(last.item_id, row.external_id, dict(row.display), expires, bool(last.is_audit))
    return Undone("skip" if undo_skip else "label", last.item_id, lease)


def _live_leases_by_others(conn: Connection, item_id: int, user_id: int, now: datetime) -> int:
    row = raw.one(conn, f"SELECT {LIVE_BY_OTHERS}", {"item": item_id, "user": user_id, "now": raw.ts(conn, now)})
    assert row is not None
    return int(row[0])
