"""Items: counts and look-ups (bulk writes live in ``labelloop.io``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, exists, func, select, update

from labelloop.errors import NotFoundError
from labelloop.store.labels import label_counts, labelled_items
from labelloop.store.projects import Project
from labelloop.store.schema import gold_items, items
from labelloop.store.tagsets import names_of

#: Overlap items are those whose ``rand`` modulo this falls below ``round(F * OVERLAP_SCALE)``.
OVERLAP_SCALE = 1_000_000


def rand_key(seed: int, external_id: str) -> int:
    """The item's place in the project's seeded random order (63-bit, from id and seed).

    Independent of file order, stable across re-imports."""
    digest = hashlib.blake2b(f"{seed}\x1f{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def overlap_threshold(fraction: float) -> int:
    """Items with ``rand % OVERLAP_SCALE`` below this are overlap items (``fraction`` of them).

    The rule reads the low digits of ``rand`` while the serving order reads the whole key (its
    high bits decide), so which items overlap is independent of the order they are served in."""
    return round(float(fraction) * OVERLAP_SCALE)


def target_labels_for(rand: int, *, fraction: float, k: int) -> int:
    """How many different labellers an item with key ``rand`` needs: ``k`` for an overlap item, else 1."""
    return int(k) if rand % OVERLAP_SCALE < overlap_threshold(fraction) else 1


def apply_overlap(conn: Connection, *, project_id: int, fraction: float, k: int) -> int:
    """Set ``target_labels`` of the project's items without any label yet by the overlap rule
    (:func:`target_labels_for`), in one UPDATE; returns how many items changed.

    Items with labels keep their target: what their labellers were asked stays as it was, and
    gold items keep theirs (0: out of the queue, :mod:`labelloop.store.gold`).
    ``updated_at`` is left alone (it marks changed texts for the feature cache)."""
    target = case((items.c.rand % OVERLAP_SCALE < overlap_threshold(fraction), int(k)), else_=1)
    result = conn.execute(
        update(items)
        .where(items.c.project_id == project_id, items.c.n_labels == 0, items.c.target_labels != target,
               ~exists().where(gold_items.c.item_id == items.c.id))
        .values(target_labels=target)
        .execution_options(preserve_rowcount=True)
    )
    return max(int(result.rowcount or 0), 0)


@dataclass(frozen=True)
class Item:
    id: int
    external_id: str
    display: dict[str, Any]
    text: str
    n_labels: int
    label: str | None
    label_source: str | None
    labels: list[str] | None = None  # multi-label projects: the final set (None: no final set)


def has_items(conn: Connection, *, project_id: int) -> bool:
    """Whether the project has any item (one index look-up, whatever its size)."""
    return conn.execute(select(items.c.id).where(items.c.project_id == project_id).limit(1)).first() is not None


def get_item(conn: Connection, *, project: Project, item_id: int) -> Item:
    row = conn.execute(
        select(items).where(items.c.id == item_id, items.c.project_id == project.id)
    ).first()
    if row is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    return Item(
        row.id,
        row.external_id,
        dict(row.display),
        row.text,
        row.n_labels,
        project.tag_name(row.label_tag_id) if row.label_tag_id is not None else None,
        row.label_source,
        names_of(project, row.label_mask) if row.label_mask is not None else None,
    )


def project_summary(conn: Connection, *, project: Project) -> dict[str, Any]:
    """``items``, ``labelled`` (items with a final label), ``conflicts`` and ``labels`` per tag
    (multi-label: items whose final set has the tag; ``labelled``: items with a final set)."""
    n_items = conn.execute(select(func.count()).where(items.c.project_id == project.id)).scalar_one()
    n_conflicts = conn.execute(
        select(func.count()).where(items.c.project_id == project.id, items.c.label_source == "conflict")
    ).scalar_one()
    counts = label_counts(conn, project_id=project.id)
    per_tag = {t.name: counts.get(t.id, 0) for t in project.tags if not t.retired or counts.get(t.id)}
    return {
        "project": project.name,
        "items": n_items,
        "labelled": labelled_items(conn, project_id=project.id, multi_label=True)
        if project.multi_label else sum(counts.values()),
        "conflicts": n_conflicts,
        "labels": per_tag,
    }
