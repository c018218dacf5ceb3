"""Annotations and the final-label rule.

Final label rule (used by export, training and progress): an admin's adjudication wins; else
the majority of the item's labels; a single label is its own majority; a tie is a *conflict*
(no final label: not used for training, exported with ``label_source=conflict``).
The result is kept on the item (``label_tag_id``, ``label_source``, ``n_labels``) by
:func:`refresh_items`, which every write to annotations calls.

Labels with a *retired* tag are kept for history but ignored here: they count neither for the
final label nor in ``n_labels``, so an item labelled only with a retired tag needs labels again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, func, select, update

from labelloop.store.schema import annotations, items, tags, utcnow


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


def refresh_items(conn: Connection, *, item_ids: Iterable[int]) -> None:
    """Recompute ``n_labels`` and the final label of these items from their annotations
    (labels with a retired tag are ignored)."""
    ids = sorted(set(item_ids))
    if not ids:
        return
    tags_by_item: dict[int, list[int]] = {i: [] for i in ids}
    adjudicated: dict[int, int | None] = {}
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
        for item_id, adj in conn.execute(
            select(items.c.id, items.c.adjudicated_tag_id).where(items.c.id.in_(chunk))
        ):
            adjudicated[item_id] = adj
    now = utcnow()
    rows = []
    for item_id in ids:
        tag_id, source = final_label(tags_by_item[item_id], adjudicated.get(item_id))
        rows.append(
            {"b_id": item_id, "b_n": len(tags_by_item[item_id]), "b_tag": tag_id, "b_source": source, "b_now": now}
        )
    conn.execute(
        update(items)
        .where(items.c.id == bindparam("b_id"))
        .values(
            n_labels=bindparam("b_n"),
            label_tag_id=bindparam("b_tag"),
            label_source=bindparam("b_source"),
            updated_at=bindparam("b_now"),
        ),
        rows,
    )


def label_counts(conn: Connection, *, project_id: int) -> dict[int, int]:
    """Items per final tag id (items without a final label are not counted)."""
    rows = conn.execute(
        select(items.c.label_tag_id, func.count())
        .where(items.c.project_id == project_id, items.c.label_tag_id.is_not(None))
        .group_by(items.c.label_tag_id)
    )
    return {tag_id: n for tag_id, n in rows}
