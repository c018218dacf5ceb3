"""The label an item gets from bulk labelling alone (used by the final-label rule).

An item's bulk state is a fold over the *active* (not undone) bulk operations that list it,
oldest first, skipping those whose tag is retired:

- single-label: the tag of the newest such operation;
- multi-label: starting from "no set", ``add`` puts the tag's bit into the set (a missing set
  becomes the empty set first), ``remove`` takes it out of an existing set (and leaves "no set"
  as it is).

:func:`labelloop.store.labels.refresh_items` applies it to items with no human label (no
annotation with an active tag, no adjudication): they get the tag or set with
``label_source = 'bulk'``. Because the state is recomputed from what is active, undoing an
operation restores exactly the state the items would have without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from labelloop.store.schema import bulk_labels, bulk_ops, tags


@dataclass(frozen=True)
class BulkState:
    tag_id: int | None  # single-label: the tag
    mask: int | None  # multi-label: the set (None: no set)
    bulk_id: int  # the newest active operation that lists the item


def bulk_states(conn: Connection, *, item_ids: Iterable[int]) -> dict[int, BulkState]:
    """Per item with at least one active bulk operation of an active tag, its bulk state
    (items without one are left out). Read in chunks of 500 ids."""
    ids = sorted(set(item_ids))
    out: dict[int, BulkState] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            select(bulk_labels.c.item_id, bulk_ops.c.id, bulk_ops.c.action, bulk_ops.c.tag_id, tags.c.bit)
            .join(bulk_ops, bulk_ops.c.id == bulk_labels.c.bulk_id)
            .join(tags, tags.c.id == bulk_ops.c.tag_id)
            .where(bulk_labels.c.item_id.in_(chunk), bulk_ops.c.undone_at.is_(None), tags.c.retired.is_(False))
            .order_by(bulk_labels.c.item_id, bulk_ops.c.id)
        ).all()
        for item_id, bulk_id, action, tag_id, bit in rows:
            before = out.get(item_id)
            if bit is None:  # single-label
                out[item_id] = BulkState(tag_id, None, bulk_id)
                continue
            mask = before.mask if before is not None else None
            if action == "add":
                mask = (mask or 0) | (1 << bit)
            elif mask is not None:
                mask &= ~(1 << bit)
            out[item_id] = BulkState(None, mask, bulk_id)
    return {item_id: state for item_id, state in out.items() if state.tag_id is not None or state.mask is not None}
