"""Tag changes mid-project: add (or reactivate), rename, merge, retire.

Every change is recorded in the audit log and requests a retrain (the orchestrator starts a
round at its next check), and the final labels of the items it touches are recomputed:

- **add**: a new tag goes at the end of the order. Adding the name of a *retired* tag
  reactivates it, and its old labels count again.
- **rename**: labels refer to the tag's id, so they follow the new name.
- **merge FROM INTO**: every label and adjudication of FROM becomes INTO (who labelled what,
  and when, is kept), then FROM is retired. INTO must be active.
- **retire**: the tag is no longer offered to labellers. Its labels are kept for history but
  ignored by the final-label rule and by ``items.n_labels``, so an item labelled only with it
  goes back to the queue for *other* labellers (whoever labelled it is not asked again).
  Adjudications to the tag are dropped (the item falls back to its labellers' majority). The
  last active tag cannot be retired.

Multi-label projects (tags with a bit, see :mod:`labelloop.store.tagsets`): a rename keeps the
bit; a merge sets INTO's bit and clears FROM's in every annotation's and adjudication's mask that
has FROM's bit (bit arithmetic in SQL); a retired tag's bit is ignored from then on by the
final-set rule (adjudicated sets keep it for history but it no longer counts), and its
annotations still count as labels (nothing is reopened).

Errors (unknown tag, merging a tag into itself, retiring the last active tag...) are raised
before anything is written; callers run each change in one transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, union, update

from labelloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from labelloop.store.browse import record_audit
from labelloop.store.labels import refresh_items
from labelloop.store.projects import Project, Tag, add_tags, validate_tag_names
from labelloop.store.runs import request_retrain
from labelloop.store import gold as store_gold
from labelloop.store.schema import annotations, bulk_labels, bulk_ops, items, tags, utcnow


def _tag(conn: Connection, project: Project, name: str) -> Tag:
    """The project's tag ``name`` read fresh (retired or not); NotFoundError if there is none."""
    row = conn.execute(
        select(tags.c.id, tags.c.name, tags.c.position, tags.c.retired, tags.c.bit)
        .where(tags.c.project_id == project.id, tags.c.name == name)
    ).first()
    if row is None:
        names = conn.execute(
            select(tags.c.name).where(tags.c.project_id == project.id).order_by(tags.c.position)
        ).scalars()
        raise NotFoundError(f"no tag {name!r} in project {project.name!r}; it has: {', '.join(names)}")
    return Tag(row.id, row.name, row.position, bool(row.retired), row.bit)


def _has_bit(column: Any, bit: int) -> Any:
    return column.op("&")(1 << bit) != 0


def _items_with_tag(conn: Connection, tag: Tag, project_id: int) -> list[int]:
    """Items with a label or an adjudication of this tag (in a set, for a tag with a bit), or
    listed by a bulk operation of the tag."""
    bulk = select(bulk_labels.c.item_id).join(bulk_ops, bulk_ops.c.id == bulk_labels.c.bulk_id).where(
        bulk_ops.c.tag_id == tag.id)
    if tag.bit is not None:
        query = union(
            bulk,
            select(annotations.c.item_id).where(
                annotations.c.project_id == project_id, _has_bit(annotations.c.tag_mask, tag.bit)
            ),
            select(items.c.id).where(items.c.project_id == project_id, _has_bit(items.c.adjudicated_mask, tag.bit)),
        )
        return sorted(conn.execute(query).scalars())
    query = union(
        bulk,
        select(annotations.c.item_id).where(annotations.c.tag_id == tag.id),
        select(items.c.id).where(items.c.adjudicated_tag_id == tag.id),
    )
    return sorted(conn.execute(query).scalars())


def _move_bit(conn: Connection, project_id: int, src: int, dst: int) -> tuple[int, int]:
    """In every mask of the project with bit ``src``: set ``dst``, clear ``src``. Returns the
    numbers of annotations and adjudications changed."""
    moved = conn.execute(
        update(annotations)
        .where(annotations.c.project_id == project_id, _has_bit(annotations.c.tag_mask, src))
        .values(tag_mask=annotations.c.tag_mask.op("|")(1 << dst) - (1 << src), updated_at=utcnow())
    ).rowcount
    adjudications = conn.execute(
        update(items)
        .where(items.c.project_id == project_id, _has_bit(items.c.adjudicated_mask, src))
        .values(adjudicated_mask=items.c.adjudicated_mask.op("|")(1 << dst) - (1 << src))
    ).rowcount
    return int(moved or 0), int(adjudications or 0)


def _open_items(conn: Connection, item_ids: list[int]) -> int:
    """How many of these items still need labels."""
    total = 0
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start : start + 500]
        total += conn.execute(
            select(func.count()).where(items.c.id.in_(chunk), items.c.n_labels < items.c.target_labels)
        ).scalar_one()
    return int(total)


def _changed(conn: Connection, project: Project, user_id: int | None, action: str, details: dict[str, Any]) -> None:
    record_audit(conn, project_id=project.id, user_id=user_id, action=action, details=details)
    request_retrain(conn, project_id=project.id)


def add_tag(conn: Connection, *, project: Project, name: str, user_id: int | None) -> str:
    """Append a tag to the project's order, or reactivate a retired tag of that name.
    Returns ``"added"`` or ``"reactivated"``."""
    validate_tag_names([name])
    existing = conn.execute(
        select(tags.c.id, tags.c.retired).where(tags.c.project_id == project.id, tags.c.name == name)
    ).first()
    if existing is not None and not existing.retired:
        raise AlreadyExistsError(f"tag {name!r} exists already in project {project.name!r}")
    if existing is None:
        add_tags(conn, project_id=project.id, names=[name])
        _changed(conn, project, user_id, "tag.add", {"name": name})
        return "added"
    conn.execute(update(tags).where(tags.c.id == existing.id).values(retired=False))
    touched = _items_with_tag(conn, _tag(conn, project, name), project.id)
    refresh_items(conn, item_ids=touched)
    _changed(conn, project, user_id, "tag.reactivate", {"name": name, "tag_id": existing.id, "items": len(touched)})
    return "reactivated"


def rename_tag(conn: Connection, *, project: Project, old: str, new: str, user_id: int | None) -> None:
    """Rename a tag in place: labels refer to the tag's id, so they follow."""
    validate_tag_names([new])
    tag = _tag(conn, project, old)
    if new == old:
        return
    if conn.execute(select(tags.c.id).where(tags.c.project_id == project.id, tags.c.name == new)).first():
        raise AlreadyExistsError(f"tag {new!r} exists already in project {project.name!r}")
    conn.execute(update(tags).where(tags.c.id == tag.id).values(name=new))
    _changed(conn, project, user_id, "tag.rename", {"tag_id": tag.id, "from": old, "to": new})


def merge_tags(conn: Connection, *, project: Project, source: str, into: str, user_id: int | None) -> dict[str, int]:
    """Move every label and adjudication of tag ``source`` to tag ``into``, then retire
    ``source``. Returns the numbers of ``annotations``, ``adjudications`` and ``items`` moved."""
    src = _tag(conn, project, source)
    dst = _tag(conn, project, into)
    if src.id == dst.id:
        raise InvalidInputError(f"cannot merge tag {source!r} into itself: choose two different tags")
    if dst.retired:
        raise ConflictError(f"tag {into!r} is retired: add it again before merging into it")
    touched = _items_with_tag(conn, src, project.id)
    if src.bit is not None and dst.bit is not None:
        moved, adjudications = _move_bit(conn, project.id, src.bit, dst.bit)
    else:
        moved = conn.execute(
            update(annotations).where(annotations.c.tag_id == src.id).values(tag_id=dst.id, updated_at=utcnow())
        ).rowcount
        adjudications = conn.execute(
            update(items).where(items.c.adjudicated_tag_id == src.id).values(adjudicated_tag_id=dst.id)
        ).rowcount
    conn.execute(update(bulk_ops).where(bulk_ops.c.tag_id == src.id).values(tag_id=dst.id))  # bulk labels follow
    store_gold.tag_merged(conn, project=project, src_id=src.id, dst_id=dst.id, src_bit=src.bit, dst_bit=dst.bit)
    conn.execute(update(tags).where(tags.c.id == src.id).values(retired=True))
    refresh_items(conn, item_ids=touched)
    counts = {"annotations": int(moved or 0), "adjudications": int(adjudications or 0), "items": len(touched)}
    _changed(conn, project, user_id, "tag.merge",
             {"from": source, "into": into, "from_id": src.id, "into_id": dst.id, **counts})
    return counts


def retire_tag(conn: Connection, *, project: Project, name: str, user_id: int | None) -> dict[str, int]:
    """Stop offering tag ``name``; its labels stay for history but no longer count. Returns the
    numbers of ``items`` whose labels were recomputed, of them ``reopened`` (back in the queue)
    and of ``adjudications`` dropped."""
    tag = _tag(conn, project, name)
    if tag.retired:
        raise ConflictError(f"tag {name!r} is retired already")
    active = conn.execute(
        select(func.count()).where(tags.c.project_id == project.id, tags.c.retired.is_(False))
    ).scalar_one()
    if active <= 1:
        raise ConflictError(f"cannot retire {name!r}: it is the last active tag of project {project.name!r}")
    touched = _items_with_tag(conn, tag, project.id)
    open_before = _open_items(conn, touched)
    dropped = 0  # an adjudicated set keeps the retired bit for history; the rule ignores it
    if tag.bit is None:
        dropped = conn.execute(
            update(items).where(items.c.adjudicated_tag_id == tag.id).values(adjudicated_tag_id=None)
        ).rowcount
    conn.execute(update(tags).where(tags.c.id == tag.id).values(retired=True))
    if tag.bit is None:  # gold items answered with it become ordinary items (store/gold.py)
        store_gold.tag_retired(conn, project=project, tag_id=tag.id, user_id=user_id)
    refresh_items(conn, item_ids=touched)
    reopened = _open_items(conn, touched) - open_before
    counts = {"items": len(touched), "reopened": reopened, "adjudications": int(dropped or 0)}
    _changed(conn, project, user_id, "tag.retire", {"name": name, "tag_id": tag.id, **counts})
    return counts
