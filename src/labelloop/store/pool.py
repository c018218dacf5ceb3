"""Reading a project's pool of items for feature extraction: its fingerprint and its texts,
streamed in chunks (server-side cursor on PostgreSQL), never all in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, func, select

from labelloop.store.schema import items

STREAM_ROWS = 20_000


@dataclass(frozen=True)
class PoolFingerprint:
    """What identifies the state of a project's pool: item count, largest id and latest change.

    ``max_updated_at`` moves with every label too (labels update the item row); callers
    compare texts of the changed items to tell a label from a new text."""

    count: int
    max_id: int
    max_updated_at: datetime | None

    def as_json(self) -> dict[str, object]:
        stamp = None if self.max_updated_at is None else self.max_updated_at.isoformat()
        return {"count": self.count, "max_id": self.max_id, "max_updated_at": stamp}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PoolFingerprint:
        stamp = data.get("max_updated_at")
        return cls(
            int(data["count"]),  # type: ignore[arg-type]
            int(data["max_id"]),  # type: ignore[arg-type]
            None if stamp is None else datetime.fromisoformat(str(stamp)),
        )


def pool_fingerprint(conn: Connection, *, project_id: int) -> PoolFingerprint:
    count, max_id, max_updated = conn.execute(
        select(func.count(), func.coalesce(func.max(items.c.id), 0), func.max(items.c.updated_at)).where(
            items.c.project_id == project_id
        )
    ).one()
    if isinstance(max_updated, str):  # in case an aggregate loses the column type
        max_updated = datetime.fromisoformat(max_updated)
    if max_updated is not None and max_updated.tzinfo is None:
        max_updated = max_updated.replace(tzinfo=UTC)
    return PoolFingerprint(int(count), int(max_id), max_updated)


def iter_texts(
    conn: Connection,
    *,
    project_id: int,
    min_id: int | None = None,
    max_id: int | None = None,
    item_ids: np.ndarray | None = None,
    chunk_rows: int = STREAM_ROWS,
) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Yield ``(ids, texts)`` chunks of the project's items in id order, streamed.

    ``min_id`` / ``max_id``: only items with a larger / at most that id. ``item_ids``: only these items (looked up in
    chunks of at most ``chunk_rows``)."""
    if item_ids is not None:
        wanted = np.unique(np.asarray(item_ids, dtype=np.int64))
        for start in range(0, len(wanted), min(chunk_rows, 5_000)):
            part = wanted[start : start + min(chunk_rows, 5_000)].tolist()
            rows = conn.execute(
                select(items.c.id, items.c.text)
                .where(items.c.project_id == project_id, items.c.id.in_(part))
                .order_by(items.c.id)
            ).all()
            if rows:
                yield np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]
        return
    query = select(items.c.id, items.c.text).where(items.c.project_id == project_id).order_by(items.c.id)
    if min_id is not None:
        query = query.where(items.c.id > min_id)
    if max_id is not None:
        query = query.where(items.c.id <= max_id)
    result = conn.execution_options(yield_per=chunk_rows).execute(query)
    for part in result.partitions(chunk_rows):
        yield np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part)), [r[1] for r in part]


def changed_since(conn: Connection, *, project_id: int, since: datetime | None, max_id: int) -> np.ndarray:
    """Ids (at most ``max_id``) of items updated after ``since``: labelled or re-imported."""
    query = select(items.c.id).where(items.c.project_id == project_id, items.c.id <= max_id)
    if since is not None:
        query = query.where(items.c.updated_at > since)
    return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)
