"""Bulk writes and deletes of ``item_scores`` (a round's up to a million rows), and the
queue preview.

Writing never blocks labellers for long: on SQLite rows are committed in chunks of
``chunk_rows`` (default 20,000), each in its own short ``BEGIN IMMEDIATE`` transaction through
the driver's ``executemany`` (with a larger page cache for the duration: the priority index
takes its inserts in random order), so labellers' writes interleave between chunks; on
PostgreSQL rows go through ``COPY ... FROM STDIN (FORMAT BINARY)`` built with numpy, two
chunks at a time on two connections (the index maintenance is the server's CPU work; MVCC:
nobody waits). Either way the rows stay invisible to the queue until the run is switched to
(:func:`labelloop.store.runs.switch_to_run`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select, text

from labelloop.store.engine import is_sqlite, writing
from labelloop.store.projects import Project
from labelloop.store.schema import item_scores, items

SQLITE_CHUNK_ROWS = 20_000
SQLITE_WRITE_CACHE_KIB = 131_072  # page cache while bulk writing/deleting (lazily allocated)
POSTGRES_CHUNK_ROWS = 125_000
POSTGRES_COPY_CONNECTIONS = 2

ChunkHook = Callable[[int, int], None]

_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_PG_TRAILER = np.array([-1], dtype=">i2").tobytes()
_COPY_SQL = "COPY item_scores (run_id, item_id, priority, predicted_tag_id, confidence) FROM STDIN (FORMAT BINARY)"


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
    """Insert the run's score rows (one per item), committed chunk by chunk.

    ``predicted_tag_ids``/``confidences`` are None for a cold-start order (no model).
    ``after_chunk(written, total)`` runs after each committed chunk: it may raise to abandon
    the write (the rows written so far must then be deleted with :func:`delete_scores`).
    Returns the number of rows written."""
    n = len(item_ids)
    if len(priorities) != n or (predicted_tag_ids is not None and len(predicted_tag_ids) != n):
        raise ValueError("item_ids, priorities and predictions must have the same length")
    if (predicted_tag_ids is None) != (confidences is None):
        raise ValueError("give both predicted_tag_ids and confidences, or neither")
    sqlite = is_sqlite(engine)
    step = chunk_rows or (SQLITE_CHUNK_ROWS if sqlite else POSTGRES_CHUNK_ROWS)

    def write(part: slice) -> None:
        pred = None if predicted_tag_ids is None else predicted_tag_ids[part]
        conf = None if confidences is None else confidences[part]
        with writing(engine) as conn:
            if sqlite:
                with _big_cache(conn):
                    _sqlite_insert(conn, run_id, item_ids[part], priorities[part], pred, conf)
            else:
                _pg_copy(conn, run_id, item_ids[part], priorities[part], pred, conf)

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


def analyze(engine: Engine) -> None:
    """PostgreSQL: refresh the planner's statistics of ``item_scores`` (a sample, ~0.1 s at
    100K rows), so the queue's queries on the new run use its priority index from the switch
    on. Autovacuum would do it only a minute or more later (and not at all where it is off); until
    then the new run's rows look absent and the candidate query sorts the whole run instead."""
    if is_sqlite(engine):
        return
    with writing(engine) as conn:
        conn.execute(text("ANALYZE item_scores"))


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database now (PASSIVE: never waits for, nor
    blocks, readers and writers). Otherwise the next commit past the auto-checkpoint threshold,
    typically a labeller's, would pay for copying the megabytes a bulk chunk just wrote."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.close()


@contextmanager
def _big_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache on this connection for the duration (restored after)."""
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


def _sqlite_insert(conn: Connection, run_id: int, ids: Any, prio: Any, pred: Any, conf: Any) -> None:
    n = len(ids)
    columns: list[Sequence[Any]] = [
        [run_id] * n,
        np.asarray(ids, dtype=np.int64).tolist(),
        np.asarray(prio, dtype=np.float64).tolist(),
    ]
    if pred is None:
        columns += [[None] * n, [None] * n]
    else:
        columns += [np.asarray(pred, dtype=np.int64).tolist(), np.asarray(conf, dtype=np.float64).tolist()]
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(
            "INSERT INTO item_scores (run_id, item_id, priority, predicted_tag_id, confidence) VALUES (?, ?, ?, ?, ?)",
            zip(*columns),
        )
    finally:
        cursor.close()


def _pg_binary_rows(run_id: int, ids: Any, prio: Any, pred: Any, conf: Any) -> bytes:
    """The rows in PostgreSQL's binary COPY format, built as one numpy record array."""
    fields: list[tuple[str, str]] = [("nf", ">i2"), ("l1", ">i4"), ("run", ">i4"), ("l2", ">i4"), ("item", ">i8"),
                                     ("l3", ">i4"), ("prio", ">f8"), ("l4", ">i4")]
    if pred is not None:
        fields += [("pred", ">i4"), ("l5", ">i4"), ("conf", ">f8")]
    else:
        fields += [("l5", ">i4")]
    rows = np.empty(len(ids), dtype=np.dtype(fields))
    rows["nf"], rows["l1"], rows["run"], rows["l2"], rows["item"], rows["l3"] = 5, 4, run_id, 8, ids, 8
    rows["prio"] = prio
    if pred is not None:
        rows["l4"], rows["pred"], rows["l5"], rows["conf"] = 4, pred, 8, conf
    else:
        rows["l4"], rows["l5"] = -1, -1  # NULL
    return rows.tobytes()


def _pg_copy(conn: Connection, run_id: int, ids: Any, prio: Any, pred: Any, conf: Any) -> None:
    payload = _pg_binary_rows(run_id, ids, prio, pred, conf)
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(_COPY_SQL) as copy:
            copy.write(_PG_HEADER)
            copy.write(payload)
            copy.write(_PG_TRAILER)
    finally:
        cursor.close()


def delete_scores(engine: Engine, *, run_ids: Sequence[int], chunk_rows: int | None = None) -> int:
    """Delete every score row of these runs; on SQLite in short chunked transactions.

    Returns the number of rows deleted."""
    deleted = 0
    if not run_ids:
        return 0
    if not is_sqlite(engine):
        with writing(engine) as conn:
            result = conn.execute(item_scores.delete().where(item_scores.c.run_id.in_(list(run_ids))))
        return int(result.rowcount or 0)
    step = chunk_rows or SQLITE_CHUNK_ROWS
    for run_id in run_ids:
        while True:
            with writing(engine) as conn, _big_cache(conn):
                result = conn.execute(
                    text(
                        "DELETE FROM item_scores WHERE rowid IN "
                        "(SELECT rowid FROM item_scores WHERE run_id = :run LIMIT :n)"
                    ),
                    {"run": run_id, "n": step},
                )
            deleted += int(result.rowcount or 0)
            checkpoint(engine)
            if (result.rowcount or 0) < step:
                break
    return deleted


def count_scores(conn: Connection, *, run_id: int) -> int:
    return conn.execute(select(func.count()).where(item_scores.c.run_id == run_id)).scalar_one()


def queue_preview(conn: Connection, *, project: Project, run_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The top ``limit`` items of run ``run_id`` that still need labels, best first: item id,
    external id, display fields, priority, predicted tag name and confidence."""
    rows = conn.execute(
        select(
            items.c.id, items.c.external_id, items.c.display, item_scores.c.priority,
            item_scores.c.predicted_tag_id, item_scores.c.confidence,
        )
        .select_from(item_scores.join(items, items.c.id == item_scores.c.item_id))
        .where(item_scores.c.run_id == run_id, items.c.n_labels < items.c.target_labels)
        .order_by(item_scores.c.priority.desc(), item_scores.c.item_id)
        .limit(limit)
    ).all()
    return [
        {
            "item_id": r.id,
            "external_id": r.external_id,
            "display": dict(r.display),
            "priority": r.priority,
            "predicted": None if r.predicted_tag_id is None else project.tag_name(r.predicted_tag_id),
            "confidence": r.confidence,
        }
        for r in rows
    ]
