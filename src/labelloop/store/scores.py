"""Bulk writes and deletes of a run's scores (``item_scores``, up to a million rows a round)
and serving order (``score_ranks``), and the queue preview.

Each table takes a new run's rows in its own key order (``item_scores`` by item id,
``score_ranks`` by rank), so both grow at the end of their b-trees and an old run is a
contiguous key range of each: no index takes inserts or deletes in random order (which was
most of a round's database time on SQLite, from write-ahead-log traffic).

Writing never blocks labellers for long: on SQLite rows are committed in chunks of
``chunk_rows`` (default 20,000), each in its own short ``BEGIN IMMEDIATE`` transaction through
the driver's ``executemany``, so labellers' writes interleave between chunks; on PostgreSQL
rows go through ``COPY ... FROM STDIN (FORMAT BINARY)`` built with numpy, two chunks at a time
on two connections (MVCC: nobody waits). Either way the rows stay invisible to the queue until
the run is switched to (:func:`labelloop.store.runs.switch_to_run`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select, text

from labelloop.store.engine import is_sqlite, writing
from labelloop.store.projects import Project
from labelloop.store.schema import item_scores, items, score_ranks
from labelloop.store.tagsets import names_of

SQLITE_CHUNK_ROWS = 20_000
POSTGRES_CHUNK_ROWS = 125_000
POSTGRES_COPY_CONNECTIONS = 2

ChunkHook = Callable[[int, int], None]

_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_PG_TRAILER = np.array([-1], dtype=">i2").tobytes()


def write_scores(
    engine: Engine,
    *,
    run_id: int,
    item_ids: np.ndarray,
    priorities: np.ndarray,
    predicted_tag_ids: np.ndarray | None = None,
    confidences: np.ndarray | None = None,
    chunk_rows: int | None = None,
    after_chunk: ChunkHook | None = None,
) -> int:
    """Insert the run's score rows (one per item) and its serving order, committed chunk by chunk.

    ``predicted_tag_ids``/``confidences`` are None for a cold-start order (no model).
    The serving order (``score_ranks``) is by priority, highest first, ties by item id.
    ``after_chunk(written, total)`` runs after each committed chunk: it may raise to abandon
    the write (the rows written so far must then be deleted with :func:`delete_scores`).
    Returns the number of rows written."""
    columns = _Columns(item_ids, priorities, predicted_tag_ids, confidences)
    sqlite = is_sqlite(engine)
    step = chunk_rows or (SQLITE_CHUNK_ROWS if sqlite else POSTGRES_CHUNK_ROWS)
    n = len(columns.ids)

    def write(part: slice) -> None:
        with writing(engine) as conn:
            columns.insert(conn, run_id, part)

    parts = [slice(start, min(n, start + step)) for start in range(0, n, step)]
    if sqlite or len(parts) == 1:
        for part in parts:
            write(part)
            if sqlite:
                checkpoint(engine)
            if after_chunk is not None:
                after_chunk(part.stop, n)
        analyze(engine)
        return n
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


def insert_scores(
    conn: Connection,
    *,
    run_id: int,
    item_ids: Sequence[int],
    priorities: Sequence[float],
    predicted_tag_ids: Sequence[int | None] | None = None,
    confidences: Sequence[float | None] | None = None,
) -> int:
    """A small run's scores and serving order, written on ``conn`` in the caller's transaction
    (the same rows as :func:`write_scores`, one statement per table). Returns the number of rows."""
    n = len(item_ids)
    if len(priorities) != n or any(c is not None and len(c) != n for c in (predicted_tag_ids, confidences)):
        raise ValueError("item_ids, priorities and predictions must have the same length")
    if not n:
        return 0
    pred = predicted_tag_ids if predicted_tag_ids is not None else [None] * n
    conf = confidences if confidences is not None else [None] * n
    conn.execute(item_scores.insert(), [
        {"run_id": run_id, "item_id": int(i), "priority": float(p), "predicted_tag_id": t, "confidence": c}
        for i, p, t, c in zip(item_ids, priorities, pred, conf, strict=True)
    ])
    order = serving_order(np.asarray(item_ids, dtype=np.int64), np.asarray(priorities, dtype=np.float64))
    conn.execute(score_ranks.insert(), [
        {"run_id": run_id, "rank": rank, "item_id": int(item_ids[k]), "priority": float(priorities[k])}
        for rank, k in enumerate(order.tolist())
    ])
    return n


def serving_order(item_ids: np.ndarray, priorities: np.ndarray) -> np.ndarray:
    """Positions of the items in serving order: highest priority first, ties by item id."""
    return np.lexsort((item_ids, -priorities))


class _Columns:
    """A run's score columns, with each table's row order: ``item_scores`` by item id,
    ``score_ranks`` by priority (highest first, ties by item id)."""

    def __init__(self, item_ids: Any, priorities: Any, predicted_tag_ids: Any, confidences: Any):
        self.ids = np.asarray(item_ids, dtype=np.int64)
        n = len(self.ids)
        self.prio = np.asarray(priorities, dtype=np.float64)
        self.pred = None if predicted_tag_ids is None else np.asarray(predicted_tag_ids, dtype=np.int64)
        self.conf = None if confidences is None else np.asarray(confidences, dtype=np.float64)
        if len(self.prio) != n or (self.pred is not None and len(self.pred) != n):
            raise ValueError("item_ids, priorities and predictions must have the same length")
        if (self.pred is None) != (self.conf is None):
            raise ValueError("give both predicted_tag_ids and confidences, or neither")
        self.by_item = np.argsort(self.ids, kind="stable")
        self.by_rank = serving_order(self.ids, self.prio)

    def insert(self, conn: Connection, run_id: int, part: slice) -> None:
        """Rows ``part`` (in each table's own order) of both tables."""
        rows, ranked = self.by_item[part], self.by_rank[part]
        scores = [self.ids[rows], self.prio[rows], None if self.pred is None else self.pred[rows],
                  None if self.conf is None else self.conf[rows]]
        ranks = [np.arange(part.start, part.stop, dtype=np.int64), self.ids[ranked], self.prio[ranked]]
        if is_sqlite(conn.engine):
            _sqlite_insert(conn, _INSERT_SCORES, run_id, scores)
            _sqlite_insert(conn, _INSERT_RANKS, run_id, ranks)
        else:
            _pg_copy(conn, _COPY_SCORES, _pg_binary_rows(run_id, scores, _SCORE_TYPES))
            _pg_copy(conn, _COPY_RANKS, _pg_binary_rows(run_id, ranks, _RANK_TYPES))


def analyze(engine: Engine) -> None:
    """PostgreSQL: refresh the planner's statistics of the score tables (a sample, ~0.1 s at
    100K rows), so the queue's queries on the new run use their keys from the switch on.
    Autovacuum would do it only a minute or more later (and not at all where it is off); until
    then the new run's rows look absent and the planner picks plans for empty tables."""
    if is_sqlite(engine):
        return
    with writing(engine) as conn:
        conn.execute(text("ANALYZE item_scores"))
        conn.execute(text("ANALYZE score_ranks"))


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database now (PASSIVE: never waits for, nor
    blocks, readers and writers). Otherwise the next commit past the auto-checkpoint threshold,
    typically a labeller's, would pay for copying the megabytes a bulk chunk just wrote."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.close()


_INSERT_SCORES = ("INSERT INTO item_scores (run_id, item_id, priority, predicted_tag_id, confidence) "
                  "VALUES (?, ?, ?, ?, ?)")
_INSERT_RANKS = "INSERT INTO score_ranks (run_id, rank, item_id, priority) VALUES (?, ?, ?, ?)"
_COPY_SCORES = ("COPY item_scores (run_id, item_id, priority, predicted_tag_id, confidence) "
                "FROM STDIN (FORMAT BINARY)")
_COPY_RANKS = "COPY score_ranks (run_id, rank, item_id, priority) FROM STDIN (FORMAT BINARY)"
# PostgreSQL binary COPY types of the columns after run_id
_SCORE_TYPES = (">i8", ">f8", ">i4", ">f8")
_RANK_TYPES = (">i4", ">i8", ">f8")


def _sqlite_insert(conn: Connection, sql: str, run_id: int, columns: Sequence[np.ndarray | None]) -> None:
    """Insert rows given as columns after ``run_id`` (a None column is all NULL)."""
    n = len(next(c for c in columns if c is not None))
    values: list[Sequence[Any]] = [[run_id] * n]
    values += [[None] * n if c is None else c.tolist() for c in columns]
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, zip(*values))
    finally:
        cursor.close()


def _pg_binary_rows(run_id: int, columns: Sequence[np.ndarray | None], types: Sequence[str]) -> bytes:
    """Rows (``run_id`` then ``columns``; a None column is all NULL) in PostgreSQL's binary
    COPY format, built as one numpy record array."""
    n = len(next(c for c in columns if c is not None))
    fields: list[tuple[str, str]] = [("nf", ">i2"), ("l0", ">i4"), ("v0", ">i4")]
    for k, (column, kind) in enumerate(zip(columns, types, strict=True), start=1):
        fields.append((f"l{k}", ">i4"))
        if column is not None:
            fields.append((f"v{k}", kind))
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["nf"], rows["l0"], rows["v0"] = 1 + len(columns), 4, run_id
    for k, (column, kind) in enumerate(zip(columns, types, strict=True), start=1):
        if column is None:
            rows[f"l{k}"] = -1  # NULL
        else:
            rows[f"l{k}"], rows[f"v{k}"] = np.dtype(kind).itemsize, column
    return rows.tobytes()


def _pg_copy(conn: Connection, sql: str, payload: bytes) -> None:
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            copy.write(_PG_HEADER)
            copy.write(payload)
            copy.write(_PG_TRAILER)
    finally:
        cursor.close()


def delete_scores(engine: Engine, *, run_ids: Sequence[int], chunk_rows: int | None = None) -> int:
    """Delete every score row (and rank row) of these runs; on SQLite in short chunked
    transactions, each a contiguous key range of both tables.

    Returns the number of score rows deleted."""
    deleted = 0
    if not run_ids:
        return 0
    if not is_sqlite(engine):
        with writing(engine) as conn:
            result = conn.execute(item_scores.delete().where(item_scores.c.run_id.in_(list(run_ids))))
            conn.execute(score_ranks.delete().where(score_ranks.c.run_id.in_(list(run_ids))))
        return int(result.rowcount or 0)
    step = chunk_rows or SQLITE_CHUNK_ROWS
    for run_id in run_ids:
        last_item, last_rank = -1, -1
        while True:
            with writing(engine) as conn:
                params = {"run": run_id, "item": last_item, "rank": last_rank, "skip": step - 1}
                # the step-th next key of each table bounds this chunk (None: the rest)
                item_end = conn.execute(text(
                    "SELECT item_id FROM item_scores WHERE run_id = :run AND item_id > :item "
                    "ORDER BY item_id LIMIT 1 OFFSET :skip"), params).scalar()
                rank_end = conn.execute(text(
                    "SELECT rank FROM score_ranks WHERE run_id = :run AND rank > :rank "
                    "ORDER BY rank LIMIT 1 OFFSET :skip"), params).scalar()
                params |= {"item_end": item_end, "rank_end": rank_end}
                result = conn.execute(text(
                    "DELETE FROM item_scores WHERE run_id = :run AND item_id > :item"
                    + ("" if item_end is None else " AND item_id <= :item_end")), params)
                conn.execute(text(
                    "DELETE FROM score_ranks WHERE run_id = :run AND rank > :rank"
                    + ("" if rank_end is None else " AND rank <= :rank_end")), params)
            deleted += int(result.rowcount or 0)
            checkpoint(engine)
            if item_end is None and rank_end is None:
                break
            last_item = last_item if item_end is None else item_end
            last_rank = last_rank if rank_end is None else rank_end
    return deleted


def count_scores(conn: Connection, *, run_id: int) -> int:
    return conn.execute(select(func.count()).where(item_scores.c.run_id == run_id)).scalar_one()


def _predicted(project: Project, tag_id: int | None, mask: int | None) -> str | None:
    if mask is not None:
        return ", ".join(names_of(project, mask)) or "none of these"
    return None if tag_id is None else project.tag_name(tag_id)


def queue_preview(conn: Connection, *, project: Project, run_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The top ``limit`` items of run ``run_id`` that still need labels, best first: item id,
    external id, display fields, priority, predicted tag name (a multi-label run: the predicted
    tags joined by ", ", or "none of these") and confidence."""
    rows = conn.execute(
        select(
            items.c.id, items.c.external_id, items.c.display, score_ranks.c.priority,
            item_scores.c.predicted_tag_id, item_scores.c.predicted_mask, item_scores.c.confidence,
        )
        .select_from(
            score_ranks.join(items, items.c.id == score_ranks.c.item_id).join(
                item_scores, (item_scores.c.run_id == score_ranks.c.run_id)
                & (item_scores.c.item_id == score_ranks.c.item_id))
        )
        .where(score_ranks.c.run_id == run_id, items.c.n_labels < items.c.target_labels)
        .order_by(score_ranks.c.rank)
        .limit(limit)
    ).all()
    return [
        {
            "item_id": r.id,
            "external_id": r.external_id,
            "display": dict(r.display),
            "priority": r.priority,
            "predicted": _predicted(project, r.predicted_tag_id, r.predicted_mask),
            "confidence": r.confidence,
        }
        for r in rows
    ]
