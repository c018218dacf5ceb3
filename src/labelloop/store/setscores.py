"""The store side of a multi-label round's output and of agreement on sets.

A multi-label project's labels are bit masks (:mod:`labelloop.store.tagsets`): an item's final
set is ``items.label_mask``, an annotation's set is ``annotations.tag_mask`` (the round's
snapshot is :func:`labelloop.store.labelsets.set_snapshot`). This module mirrors, for masks,
what :mod:`labelloop.store.scores` (``write_scores``) and :mod:`labelloop.store.quality`
(``overlap_labels``) do for single tags:

- :func:`write_set_scores`: a run's score rows with ``predicted_mask`` (the tags above the
  thresholds) and ``proba`` (float32 little-endian, one per tag in the order of the run's
  ``metrics["tags"]``), and its serving order, written in chunks like ``write_scores``;
- :func:`overlap_sets`: every labeller's set on items with sets from two labellers or more.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from labelloop.store.engine import is_sqlite, writing
from labelloop.store.quality import AGREEMENT_SOURCES, IMPORT_LABELLER
from labelloop.store.schema import annotations, users
from labelloop.store.scores import (
    POSTGRES_CHUNK_ROWS,
    POSTGRES_COPY_CONNECTIONS,
    SQLITE_CHUNK_ROWS,
    ChunkHook,
    _Columns,
    _pg_binary_rows,
    _pg_copy,
    _sqlite_insert,
    analyze,
    checkpoint,
)

__all__ = ["overlap_sets", "write_set_scores"]


def overlap_sets(conn: Connection, *, project_id: int) -> list[tuple[int, str, int]]:
    """``(item id, labeller name, mask)`` of every human or imported set on items with sets from
    at least two different labellers (imported sets count as one labeller,
    :data:`~labelloop.store.quality.IMPORT_LABELLER`), by item. Masks are as stored: the caller
    drops retired bits."""
    active = [annotations.c.tag_mask.is_not(None), annotations.c.source.in_(AGREEMENT_SOURCES)]
    who = func.coalesce(annotations.c.user_id, 0)
    overlap = (
        select(annotations.c.item_id)
        .where(annotations.c.project_id == project_id, *active)
        .group_by(annotations.c.item_id)
        .having(func.count(func.distinct(who)) >= 2)
    )
    rows = conn.execute(
        select(annotations.c.item_id, users.c.name, annotations.c.tag_mask)
        .select_from(annotations.outerjoin(users, users.c.id == annotations.c.user_id))
        .where(*active, annotations.c.item_id.in_(overlap))
        .order_by(annotations.c.item_id, annotations.c.id)
    )
    return [(r.item_id, r.name if r.name is not None else IMPORT_LABELLER, int(r.tag_mask)) for r in rows]


class _SetColumns(_Columns):
    """A multi-label run's score columns: :class:`~labelloop.store.scores._Columns` (priority,
    no predicted tag, confidence) plus ``predicted_mask`` and ``proba`` (bytes)."""

    def __init__(self, item_ids: Any, priorities: Any, confidences: Any, predicted_masks: Any, proba: Any):
        super().__init__(item_ids, priorities, None, None)
        n = len(self.ids)
        self.conf = np.asarray(confidences, dtype=np.float64)
        self.masks = np.asarray(predicted_masks, dtype=np.int64)
        proba = np.ascontiguousarray(np.asarray(proba, dtype="<f4"))
        if len(self.conf) != n or len(self.masks) != n or proba.ndim != 2 or proba.shape[0] != n:
            raise ValueError("item_ids, priorities, confidences, masks and proba rows must have the same length")
        if proba.shape[1] == 0:
            raise ValueError("a multi-label run's scores need at least one tag's probabilities")
        self.width = 4 * proba.shape[1]
        self.proba = proba.view(f"V{self.width}").reshape(n)  # each row's probabilities as one value

    def insert(self, conn: Connection, run_id: int, part: slice) -> None:
        rows, ranked = self.by_item[part], self.by_rank[part]
        ranks = [np.arange(part.start, part.stop, dtype=np.int64), self.ids[ranked], self.prio[ranked]]
        scores = [self.ids[rows], self.prio[rows], self.conf[rows], self.masks[rows], self.proba[rows]]
        if is_sqlite(conn.engine):
            values = [c.tolist() for c in scores[:-1]] + [[bytes(v) for v in scores[-1]]]
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.executemany(_INSERT_SCORES, zip([run_id] * len(rows), *values))
            finally:
                cursor.close()
            _sqlite_insert(conn, _INSERT_RANKS, run_id, ranks)
        else:
            types = (">i8", ">f8", ">f8", ">i8", f"V{self.width}")
            _pg_copy(conn, _COPY_SCORES, _pg_binary_rows(run_id, scores, types))
            _pg_copy(conn, _COPY_RANKS, _pg_binary_rows(run_id, ranks, (">i4", ">i8", ">f8")))


def write_set_scores(
    engine: Engine,
    *,
    run_id: int,
    item_ids: np.ndarray,
    priorities: np.ndarray,
    confidences: np.ndarray,
    predicted_masks: np.ndarray,
    proba: np.ndarray,
    chunk_rows: int | None = None,
    after_chunk: ChunkHook | None = None,
) -> int:
    """Insert a multi-label run's score rows and serving order, committed chunk by chunk, as
    :func:`labelloop.store.scores.write_scores` does (the same chunking, hooks and statistics);
    ``predicted_tag_id`` stays NULL. Returns the number of rows written."""
    columns = _SetColumns(item_ids, priorities, confidences, predicted_masks, proba)
    sqlite = is_sqlite(engine)
    step = chunk_rows or (SQLITE_CHUNK_ROWS if sqlite else POSTGRES_CHUNK_ROWS)
    n = len(columns.ids)
    parts = [slice(start, min(n, start + step)) for start in range(0, n, step)]

    def write(part: slice) -> None:
        with writing(engine) as conn:
            columns.insert(conn, run_id, part)

    if sqlite or len(parts) == 1:
        for part in parts:
            write(part)
            if sqlite:
                checkpoint(engine)
            if after_chunk is not None:
                after_chunk(part.stop, n)
    else:
        with ThreadPoolExecutor(max_workers=POSTGRES_COPY_CONNECTIONS, thread_name_prefix="copy") as pool:
            pending = [(part, pool.submit(write, part)) for part in parts[:POSTGRES_COPY_CONNECTIONS]]
            queued = parts[POSTGRES_COPY_CONNECTIONS:]
            try:
                while pending:
                    part, future = pending.pop(0)
                    future.result()
                    if queued:
                        nxt = queued.pop(0)
                        pending.append((nxt, pool.submit(write, nxt)))
                    if after_chunk is not None:
                        after_chunk(part.stop, n)
            except BaseException:
                for _, future in pending:
                    future.cancel()
                raise
    analyze(engine)
    return n


_INSERT_SCORES = ("INSERT INTO item_scores (run_id, item_id, priority, confidence, predicted_mask, proba) "
                  "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_RANKS = "INSERT INTO score_ranks (run_id, rank, item_id, priority) VALUES (?, ?, ?, ?)"
_COPY_SCORES = ("COPY item_scores (run_id, item_id, priority, confidence, predicted_mask, proba) "
                "FROM STDIN (FORMAT BINARY)")
_COPY_RANKS = "COPY score_ranks (run_id, rank, item_id, priority) FROM STDIN (FORMAT BINARY)"
