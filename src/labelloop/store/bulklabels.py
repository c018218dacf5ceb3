"""Bulk labelling by admins: apply one tag to many items at once, list and undo such operations.

A bulk operation (``bulk_ops``) names the project, the admin, the tag and the action (``add``:
single-label, give the items this tag; multi-label, add the tag to their sets; ``remove``:
multi-label only, take the tag out of their sets); its items are ``bulk_labels`` rows. Bulk
labels are not annotations: they never count in ``n_labels``, overlap, agreement or the audit,
and the queue serves the items as before (a labeller's label then wins). The item's final
label comes from them only while it has no human label (the rule, in
:mod:`labelloop.store.bulkstate` and :func:`labelloop.store.labels.refresh_items`), with
``label_source = 'bulk'``. They are used for training unless the project's ``bulk_training``
setting is off (:func:`bulk_train_labels`, read by the orchestrator).

Undo (:func:`undo_bulk`) marks the operation undone and recomputes its items, which restores
each item's state as it would be without the operation. Applying and undoing are recorded in the
project's audit log (``bulk.apply``, ``bulk.undo``) and request a retrain when bulk labels train.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import aliased

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store.browse import record_audit
from labelloop.store.bulkstate import bulk_states
from labelloop.store.labels import refresh_items
from labelloop.store.projects import Project
from labelloop.store.runs import request_retrain
from labelloop.store.schema import BULK_ACTIONS, bulk_labels, bulk_ops, items, tags, users, utcnow
from labelloop.store.tagsets import active_mask

#: Most items one bulk operation may list.
MAX_ITEMS = 10_000
_CHUNK = 500


@dataclass(frozen=True)
class BulkOp:
    id: int
    tag: str
    action: str
    n_items: int
    user: str | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _item_ids(values: Any) -> list[int]:
    """The request's item ids as ints, in order, each once; InvalidInputError if not a list of
    1..MAX_ITEMS positive integers."""
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidInputError("give at least one item id in item_ids (the ids the API returns)")
    out: dict[int, None] = {}
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
            raise InvalidInputError(f"item ids must be positive integers, got {str(value)[:40]!r}")
        out[value] = None
    if len(out) > MAX_ITEMS:
        raise InvalidInputError(f"too many items: {len(out)}; one bulk operation takes at most {MAX_ITEMS}")
    return list(out)


def _tag(conn: Connection, project: Project, name: Any) -> tuple[int, int | None]:
    """(id, bit) of the project's active tag ``name`` (read fresh), else InvalidInputError."""
    row = conn.execute(
        select(tags.c.id, tags.c.bit, tags.c.retired).where(tags.c.project_id == project.id, tags.c.name == name)
    ).first() if isinstance(name, str) else None
    if row is None or row.retired:
        known = ", ".join(repr(t.name) for t in project.tags if not t.retired)
        what = "retired" if row is not None else "unknown"
        raise InvalidInputError(f"{what} tag {str(name)[:100]!r} in project {project.name!r}: use one of {known}")
    return int(row.id), row.bit


def _states(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(
            select(items.c.id, items.c.label_tag_id, items.c.label_mask, items.c.label_source)
            .where(items.c.id.in_(chunk))
        ):
            out[row[0]] = tuple(row[1:])
    return out


def apply_bulk(
    conn: Connection, *, project: Project, tag: str, item_ids: Any, action: str = "add", user_id: int | None
) -> dict[str, Any]:
    """Apply ``tag`` to these items (their ``id``s) as one bulk operation. Returns ``bulk_id``,
    ``tag``, ``action``, ``items`` (how many), ``changed`` (items whose final label changed) and
    ``human`` (items that keep a human label or conflict: the bulk label waits behind it).
    Refuses (nothing written) an unknown or retired tag, ``remove`` in a single-label project,
    no or too many ids, and ids of no item of this project."""
    if action not in BULK_ACTIONS:
        raise InvalidInputError(f"unknown action {str(action)[:40]!r}: use 'add' or 'remove'")
    if action == "remove" and not project.multi_label:
        raise InvalidInputError("'remove' is for multi-label projects only: a single-label item's bulk "
                                "label is undone with its bulk operation")
    ids = _item_ids(item_ids)
    tag_id, _bit = _tag(conn, project, tag)
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(conn.execute(
            select(items.c.id).where(items.c.id.in_(chunk), items.c.project_id == project.id)
        ).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise InvalidInputError(f"{len(missing)} item id(s) are not items of project {project.name!r}: {shown}")
    before = _states(conn, ids)
    bulk_id = int(conn.execute(
        insert(bulk_ops).values(project_id=project.id, user_id=user_id, tag_id=tag_id, action=action,
                                n_items=len(ids), created_at=utcnow()).returning(bulk_ops.c.id)
    ).scalar_one())
    for chunk in _chunks(ids):
        conn.execute(insert(bulk_labels), [{"bulk_id": bulk_id, "item_id": i} for i in chunk])
    refresh_items(conn, item_ids=ids)
    after = _states(conn, ids)
    changed = sum(1 for i in ids if before[i] != after[i])
    human = sum(1 for i in ids if after[i][2] in ("human", "conflict"))
    result = {"bulk_id": bulk_id, "tag": tag, "action": action, "items": len(ids), "changed": changed, "human": human}
    record_audit(conn, project_id=project.id, user_id=user_id, action="bulk.apply", details=dict(result))
    if project.setting("bulk_training"):
        request_retrain(conn, project_id=project.id)
    return result


def undo_bulk(conn: Connection, *, project: Project, bulk_id: int, user_id: int | None) -> dict[str, Any]:
    """Undo bulk operation ``bulk_id`` of this project as a whole: its items get back the state
    they would have without it. NotFoundError for an id of no operation of the project,
    ConflictError if it was undone already."""
    row = conn.execute(
        select(bulk_ops.c.id, bulk_ops.c.undone_at, bulk_ops.c.tag_id, bulk_ops.c.action)
        .where(bulk_ops.c.id == bulk_id, bulk_ops.c.project_id == project.id).with_for_update()
    ).first() if isinstance(bulk_id, int) and 1 <= bulk_id <= 2**31 - 1 else None
    if row is None:
        raise NotFoundError(f"no bulk operation {bulk_id} in project {project.name!r}: "
                            f"see `labelloop bulk list {project.name}`")
    if row.undone_at is not None:
        raise ConflictError(f"bulk operation {bulk_id} was undone already "
                            f"({row.undone_at:%Y-%m-%d %H:%M} UTC); nothing changed")
    ids = sorted(conn.execute(select(bulk_labels.c.item_id).where(bulk_labels.c.bulk_id == bulk_id)).scalars())
    before = _states(conn, ids)
    conn.execute(update(bulk_ops).where(bulk_ops.c.id == bulk_id).values(undone_at=utcnow(), undone_by=user_id))
    refresh_items(conn, item_ids=ids)
    after = _states(conn, ids)
    result = {"bulk_id": bulk_id, "items": len(ids), "changed": sum(1 for i in ids if before[i] != after[i])}
    record_audit(conn, project_id=project.id, user_id=user_id, action="bulk.undo", details=dict(result))
    if project.setting("bulk_training"):
        request_retrain(conn, project_id=project.id)
    return result


def list_bulk(conn: Connection, *, project: Project, limit: int = 100) -> list[BulkOp]:
    """The project's bulk operations, newest first (undone ones too)."""
    applied_by, undone_by = aliased(users), aliased(users)
    rows = conn.execute(
        select(bulk_ops.c.id, tags.c.name, bulk_ops.c.action, bulk_ops.c.n_items, applied_by.c.name,
               bulk_ops.c.created_at, bulk_ops.c.undone_at, undone_by.c.name)
        .join(tags, tags.c.id == bulk_ops.c.tag_id)
        .outerjoin(applied_by, applied_by.c.id == bulk_ops.c.user_id)
        .outerjoin(undone_by, undone_by.c.id == bulk_ops.c.undone_by)
        .where(bulk_ops.c.project_id == project.id)
        .order_by(bulk_ops.c.id.desc())
        .limit(limit)
    ).all()
    return [BulkOp(*row) for row in rows]


def count_bulk(conn: Connection, *, project: Project) -> int:
    return int(conn.execute(select(func.count()).where(bulk_ops.c.project_id == project.id)).scalar_one())


def bulk_ids_of(conn: Connection, *, item_ids: Iterable[int]) -> dict[int, int]:
    """Per item whose final label is a bulk label, the newest active bulk operation listing it."""
    return {item_id: state.bulk_id for item_id, state in bulk_states(conn, item_ids=item_ids).items()}


def bulk_train_labels(conn: Connection, *, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, tag ids; multi-label: masks with retired bits cleared), int64 in id order, of the
    items whose final label is a bulk label: what training adds when ``bulk_training`` is on."""
    column = items.c.label_mask if project.multi_label else items.c.label_tag_id
    rows = conn.execute(
        select(items.c.id, column)
        .where(items.c.project_id == project.id, items.c.label_source == "bulk", column.is_not(None))
        .order_by(items.c.id)
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    values = np.array([r[1] for r in rows], dtype=np.int64)
    if project.multi_label:
        values &= np.int64(active_mask(project))
    return ids, values


@dataclass(frozen=True)
class PreviewRow:
    """An item as the bulk page previews it: its current final label (multi-label: the set's
    tags joined with ", ", "" for none) and source, and the bulk operation behind a bulk label."""

    id: int
    external_id: str
    display: dict[str, Any]
    label: str | None
    label_source: str | None
    bulk_id: int | None


def preview_items(conn: Connection, *, project: Project, item_ids: Sequence[int]) -> list[PreviewRow]:
    """These items of the project in the order given (ids of other projects or of no item are
    left out)."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    names = {t.id: t.name for t in project.tags}
    rows: dict[int, Any] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(
            select(items.c.id, items.c.external_id, items.c.display, items.c.label_tag_id, items.c.label_mask,
                   items.c.label_source)
            .where(items.c.id.in_(chunk), items.c.project_id == project.id)
        ):
            rows[row.id] = row
    bulk = bulk_ids_of(conn, item_ids=[i for i, r in rows.items() if r.label_source == "bulk"])
    by_bit = {t.bit: t.name for t in project.tags if t.bit is not None and not t.retired}
    out = []
    for item_id in ids:
        row = rows.get(item_id)
        if row is None:
            continue
        if row.label_mask is not None:
            label: str | None = ", ".join(name for bit, name in sorted(by_bit.items()) if row.label_mask >> bit & 1)
        else:
            label = names.get(row.label_tag_id) if row.label_tag_id is not None else None
        out.append(PreviewRow(row.id, row.external_id, dict(row.display or {}), label, row.label_source,
                              bulk.get(item_id)))
    return out
