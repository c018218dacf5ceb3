"""Annotations and the final-label rule.

Final label rule (used by export, training and progress): an admin's adjudication wins; else
the majority of the item's labels; a single label is its own majority; a tie is a *conflict*
(no final label: not used for training, exported with ``label_source=conflict``).
The result is kept on the item (``label_tag_id``, ``label_source``, ``n_labels``) by
:func:`refresh_items`, which every write to annotations calls.

Labels with a *retired* tag are kept for history but ignored here: they count neither for the
final label nor in ``n_labels``, so an item labelled only with a retired tag needs labels again.

Multi-label projects (:func:`final_set`): each annotation is a set of tags (a bit mask,
``annotations.tag_mask``); the item's final set (``items.label_mask``) is the admin's adjudicated
set if there is one, else, per active tag, *in* if more than half of the item's labellers chose
it, *out* if fewer than half did; a tie on any active tag is a conflict (``label_source``
'conflict', no final set). Retired tags' bits are ignored, but an annotation still counts as a
label (in ``n_labels``) even if every bit it has was retired. ``label_tag_id`` stays null.

Bulk labels (:mod:`labelloop.store.bulkstate`): an item with no human label (no annotation
with an active tag, no adjudication: the rule's source is None) takes its bulk tag or set, with
``label_source`` 'bulk'; human labels, conflicts and adjudications always win. Bulk labels never
count in ``n_labels``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, func, select, update

from labelloop.store.bulkstate import bulk_states
from labelloop.store.schema import annotations, items, projects, tags, utcnow


def final_label(tag_ids: Sequence[int], adjudicated: int | None = None) -> tuple[int | None, str | None]:
    """(tag id, source) of an item's final label from its labels' tag ids."""
    if adjudicated is not None:
        return adjudicated, "human"
    if not tag_ids:
        return None, None
    ranked = Counter(tag_ids).most_common(2)
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, "conflict"
    return ranked[0][0], "human"


def _bits(mask: int) -> Iterable[int]:
    """The set bits of ``mask`` as values (1, 2, 4...), lowest first."""
    while mask:
        low = mask & -mask
        yield low
        mask ^= low


def tied_mask(masks: Sequence[int], active: int) -> int:
    """The active tags (as a mask) that exactly half of these labellers chose: the conflicts."""
    n = len(masks)
    return sum(low for low in _bits(active) if 2 * sum(1 for m in masks if m & low) == n) if n else 0


def final_set(masks: Sequence[int], adjudicated: int | None, active: int) -> tuple[int | None, str | None]:
    """(mask, source) of a multi-label item's final set from its labellers' masks: the adjudicated
    set wins; else per active tag the majority (in above half, out below); a tie on any active
    tag is a conflict (None, 'conflict'); no labels: (None, None). Retired bits are masked out."""
    if adjudicated is not None:
        return adjudicated & active, "human"
    if not masks:
        return None, None
    n = len(masks)
    final = 0
    for low in _bits(active):
        chosen = 2 * sum(1 for m in masks if m & low)
        if chosen == n:
            return None, "conflict"
        if chosen > n:
            final |= low
    return final, "human"


def active_masks(conn: Connection, *, project_ids: Iterable[int]) -> dict[int, int]:
    """Per multi-label project, the mask of its active tags (read fresh: a tag may have been
    retired since the caller's Project was read)."""
    ids = sorted(set(project_ids))
    masks = dict.fromkeys(ids, 0)
    if ids:
        for project_id, bit in conn.execute(
            select(tags.c.project_id, tags.c.bit).where(
                tags.c.project_id.in_(ids), tags.c.retired.is_(False), tags.c.bit.is_not(None)
            )
        ):
            masks[project_id] |= 1 << bit
    return masks


def refresh_items(conn: Connection, *, item_ids: Iterable[int]) -> None:
    """Recompute ``n_labels`` and the final label (or, in multi-label projects, the final set)
    of these items from their annotations (labels with a retired tag are ignored)."""
    ids = sorted(set(item_ids))
    if not ids:
        return
    tags_by_item: dict[int, list[int]] = {i: [] for i in ids}
    masks_by_item: dict[int, list[int]] = {i: [] for i in ids}
    adjudicated: dict[int, int | None] = {}
    adjudicated_sets: dict[int, int | None] = {}
    project_of: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # On PostgreSQL, lock the items first (in id order) so that a label committed meanwhile
        # cannot be overwritten with the counts read here (SQLite's writer lock does it already).
        conn.execute(select(items.c.id).where(items.c.id.in_(chunk)).order_by(items.c.id).with_for_update())
        for item_id, tag_id in conn.execute(
            select(annotations.c.item_id, annotations.c.tag_id)
            .join(tags, tags.c.id == annotations.c.tag_id)
            .where(annotations.c.item_id.in_(chunk), tags.c.retired.is_(False))
        ):
            tags_by_item[item_id].append(tag_id)
        for item_id, mask in conn.execute(
            select(annotations.c.item_id, annotations.c.tag_mask).where(
                annotations.c.item_id.in_(chunk), annotations.c.tag_mask.is_not(None)
            )
        ):
            masks_by_item[item_id].append(mask)
        for item_id, project_id, adj, adj_mask in conn.execute(
            select(items.c.id, items.c.project_id, items.c.adjudicated_tag_id, items.c.adjudicated_mask)
            .where(items.c.id.in_(chunk))
        ):
            adjudicated[item_id] = adj
            adjudicated_sets[item_id] = adj_mask
            project_of[item_id] = project_id
    multi = set(
        conn.execute(
            select(projects.c.id).where(projects.c.id.in_(set(project_of.values())), projects.c.multi_label.is_(True))
        ).scalars()
    )
    active = active_masks(conn, project_ids=multi)
    bulk = bulk_states(conn, item_ids=ids)
    now = utcnow()
    rows = []
    for item_id in ids:
        project_id = project_of.get(item_id)
        if project_id in multi:
            masks = masks_by_item[item_id]
            mask, source = final_set(masks, adjudicated_sets.get(item_id), active[project_id])
            if source is None and item_id in bulk and bulk[item_id].mask is not None:
                mask, source = bulk[item_id].mask & active[project_id], "bulk"
            rows.append({"b_id": item_id, "b_n": len(masks), "b_tag": None, "b_mask": mask, "b_source": source,
                         "b_now": now})
            continue
        tag_id, source = final_label(tags_by_item[item_id], adjudicated.get(item_id))
        if source is None and item_id in bulk and bulk[item_id].tag_id is not None:
            tag_id, source = bulk[item_id].tag_id, "bulk"
        rows.append(
            {"b_id": item_id, "b_n": len(tags_by_item[item_id]), "b_tag": tag_id, "b_mask": None, "b_source": source,
             "b_now": now}
        )
    conn.execute(
        update(items)
        .where(items.c.id == bindparam("b_id"))
        .values(
            n_labels=bindparam("b_n"),
            label_tag_id=bindparam("b_tag"),
            label_mask=bindparam("b_mask"),
            label_source=bindparam("b_source"),
            updated_at=bindparam("b_now"),
        ),
        rows,
    )


def label_counts(conn: Connection, *, project_id: int) -> dict[int, int]:
    """Items per final tag id (items without a final label are not counted). In a multi-label
    project an item counts once for each (active) tag of its final set."""
    bits = dict(
        conn.execute(
            select(tags.c.bit, tags.c.id).where(
                tags.c.project_id == project_id, tags.c.bit.is_not(None), tags.c.retired.is_(False)
            )
        ).all()
    )
    if bits:
        counts = dict.fromkeys(bits.values(), 0)
        for mask, n in conn.execute(
            select(items.c.label_mask, func.count())
            .where(items.c.project_id == project_id, items.c.label_mask.is_not(None))
            .group_by(items.c.label_mask)
        ):
            for bit, tag_id in bits.items():
                if mask >> bit & 1:
                    counts[tag_id] += n
        return {tag_id: n for tag_id, n in counts.items() if n}
    rows = conn.execute(
        select(items.c.label_tag_id, func.count())
        .where(items.c.project_id == project_id, items.c.label_tag_id.is_not(None))
        .group_by(items.c.label_tag_id)
    )
    return {tag_id: n for tag_id, n in rows}


def labelled_items(conn: Connection, *, project_id: int, multi_label: bool) -> int:
    """Items with a final label (multi-label: a final set, ``label_mask`` not null)."""
    column = items.c.label_mask if multi_label else items.c.label_tag_id
    return int(conn.execute(
        select(func.count()).where(items.c.project_id == project_id, column.is_not(None))
    ).scalar_one())
