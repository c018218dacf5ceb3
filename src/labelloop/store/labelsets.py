"""Final tag sets of multi-label projects, read in bulk for training and export.

A multi-label item's final set is ``items.label_mask`` (see :func:`labelloop.store.labels.final_set`):
a bit mask of ``tags.bit``, only for items whose ``label_source`` is 'human' (conflicts have no
final set). Masks may hold bits of tags retired after the set was computed only until the
item is refreshed; these readers mask them out with the project's active tags all the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from labelloop.store.projects import Project
from labelloop.store.schema import annotations, items
from labelloop.store.tagsets import active_mask, names_of, require_multi_label


def labelled_sets(conn: Connection, *, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, masks), both int64 and in item id order, of every item with a final human set
    (conflicts and unlabelled items left out; retired bits cleared)."""
    require_multi_label(project)
    rows = conn.execute(
        select(items.c.id, items.c.label_mask)
        .where(items.c.project_id == project.id, items.c.label_mask.is_not(None), items.c.label_source == "human")
        .order_by(items.c.id)
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    masks = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)) & np.int64(active_mask(project))
    return ids, masks


def mask_matrix(masks: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """0/1 int8 matrix, one row per mask, one column per bit in ``bits`` (e.g. the values of
    :attr:`Project.tag_bits`, in display order)."""
    masks = np.asarray(masks, dtype=np.int64)
    if not len(bits):
        return np.zeros((len(masks), 0), dtype=np.int8)
    shifts = np.asarray(bits, dtype=np.int64)
    return ((masks[:, None] >> shifts[None, :]) & 1).astype(np.int8)


def matrix_masks(matrix: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """The inverse of :func:`mask_matrix`: int64 masks from a 0/1 matrix whose columns are ``bits``."""
    matrix = np.asarray(matrix).astype(bool)
    weights = np.left_shift(np.int64(1), np.asarray(bits, dtype=np.int64))
    return (matrix * weights[None, :]).sum(axis=1).astype(np.int64) if len(bits) else np.zeros(len(matrix), np.int64)


def set_snapshot(conn: Connection, *, project: Project) -> dict[str, np.ndarray]:
    """:func:`labelloop.store.runs.label_snapshot` for a multi-label project: ``train_ids`` /
    ``train_masks`` (final human sets, no audit annotation), ``audit_ids`` / ``audit_masks``
    (final human sets with an audit annotation), ``audit_all_ids`` (every item with an audit
    annotation, conflicts too) and ``closed_ids`` (items needing no more labels and having a
    final set). Masks have retired bits cleared."""
    require_multi_label(project)
    active = np.int64(active_mask(project))
    rows = conn.execute(
        select(items.c.id, items.c.label_mask, items.c.label_source, items.c.n_labels < items.c.target_labels)
        .where(items.c.project_id == project.id, items.c.label_mask.is_not(None))
        .order_by(items.c.id)
    ).all()
    audited = set(
        conn.execute(
            select(annotations.c.item_id)
            .where(annotations.c.project_id == project.id, annotations.c.is_audit.is_(True))
            .distinct()
        ).scalars()
    )
    train = [(r[0], r[1]) for r in rows if r[2] == "human" and r[0] not in audited]
    held_out = [(r[0], r[1]) for r in rows if r[2] == "human" and r[0] in audited]

    def ids(pairs: list[tuple[int, int]]) -> np.ndarray:
        return np.array([p[0] for p in pairs], dtype=np.int64)

    def masks(pairs: list[tuple[int, int]]) -> np.ndarray:
        return np.array([p[1] for p in pairs], dtype=np.int64) & active

    return {
        "train_ids": ids(train),
        "train_masks": masks(train),
        "audit_ids": ids(held_out),
        "audit_masks": masks(held_out),
        "audit_all_ids": np.array(sorted(audited), dtype=np.int64),
        "closed_ids": np.array([r[0] for r in rows if not r[3]], dtype=np.int64),
    }


def item_sets(
    conn: Connection, *, project: Project, item_ids: Iterable[int] | None = None
) -> dict[int, tuple[list[str] | None, str | None]]:
    """Per item (all the project's, or ``item_ids``): (its final set's tag names in display
    order, or None without one; its ``label_source``). For export and pages."""
    require_multi_label(project)
    query = select(items.c.id, items.c.label_mask, items.c.label_source).where(items.c.project_id == project.id)
    out: dict[int, tuple[list[str] | None, str | None]] = {}
    chunks: list[Any] = [None] if item_ids is None else _chunks(sorted(set(item_ids)))
    for chunk in chunks:
        q = query if chunk is None else query.where(items.c.id.in_(chunk))
        for item_id, mask, source in conn.execute(q):
            out[item_id] = (names_of(project, mask) if mask is not None else None, source)
    return out


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
