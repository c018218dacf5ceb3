"""Bulk writes of imported items, per backend, inside the caller's transaction.

- SQLite: the raw ``sqlite3`` cursor's ``executemany`` (``INSERT ... ON CONFLICT DO NOTHING``;
  with ``update``, an ``UPDATE`` by external id first).
- PostgreSQL: psycopg 3 ``COPY`` into a temporary staging table, then one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per chunk (and one ``UPDATE ... FROM``);
  into a project without items, ``COPY`` straight into ``items``.

Both run on the SQLAlchemy connection's own driver connection, so everything stays in the one
import transaction and a failure rolls all of it back. All values are bound parameters.

New items get ``target_labels`` by the project's overlap rule
(:func:`labelloop.store.items.target_labels_for`: ``k`` different labellers for the overlap
share, else 1); items imported with a label need no more labellers (target 1).

:class:`BackgroundWriter` writes chunks in a second thread while the next chunk is parsed (the
database drivers release the GIL while the database works); at most two chunks wait in its
queue, so memory stays bounded.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, false, func, insert, literal, null, select, text

from labelloop.store.engine import is_sqlite
from labelloop.store.items import OVERLAP_SCALE, overlap_threshold, target_labels_for
from labelloop.store.schema import annotations, items
from labelloop.store.search_index import SQLITE_INDEX_NEW_ITEMS

#: (external id, display JSON text, model text, rand key, label tag id or None); in a
#: multi-label project the last field is the label's mask (0: no tag applies) or None.
ItemRow = tuple[str, str, str, int, int | None]

# SQLite page cache during an import, in KiB.
SQLITE_IMPORT_CACHE_KIB = 256 * 1024
# Namespace of the per-project advisory lock taken by imports on PostgreSQL.
_PG_IMPORT_LOCK = 0x6C6C696D

_ITEM_COLUMNS = (
    "project_id, external_id, display, text, rand, n_labels, target_labels, label_tag_id, label_source, "
    "created_at, updated_at"
)
# Multi-label projects: the same, with the label's mask in label_mask instead.
_SET_COLUMNS = _ITEM_COLUMNS.replace("label_tag_id", "label_mask")


def _label_column(multi_label: bool) -> tuple[str, str]:
    """(items' column list, the staging table's label column) for a project's kind."""
    return (_SET_COLUMNS, "label_mask") if multi_label else (_ITEM_COLUMNS, "label_tag_id")


class ItemWriter(ABC):
    """Writes chunks of new items; returns (inserted, updated) per chunk."""

    @abstractmethod
    def write(self, rows: list[ItemRow]) -> tuple[int, int]:
        """Write one chunk; (inserted, updated)."""

    def close(self) -> None:
        """Undo any per-import connection setting."""


class SqliteItemWriter(ItemWriter):
    def __init__(self, conn: Connection, *, project_id: int, now: datetime, update: bool,
                 overlap_fraction: float, overlap_k: int, multi_label: bool = False):
        self._cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # A bigger page cache for the duration of the import: the unique and the random-order
        # index take inserts all over their B-trees. Restored by close().
        self._cache_size = self._cursor.execute("PRAGMA cache_size").fetchone()[0]
        self._cursor.execute(f"PRAGMA cache_size = {-SQLITE_IMPORT_CACHE_KIB:d}")
        stamp = items.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        self._now = stamp(now) if stamp else now
        self._project_id = project_id
        self._update = update
        self._overlap = (overlap_fraction, overlap_k)
        self._columns = _label_column(multi_label)[0]
        # Search index (store/search_index.py): while the import has paused the FTS insert
        # trigger, each chunk's new rows are indexed here, in this writer thread, so that the
        # indexing overlaps the parsing of the next chunk.
        self.index_search = False
        self.indexed_through = 0  # items with larger ids are not indexed yet

    def write(self, rows: list[ItemRow]) -> tuple[int, int]:
        cursor, pid, now = self._cursor, self._project_id, self._now
        fraction, k = self._overlap
        target = target_labels_for
        updated = 0
        if self._update:
            cursor.executemany(
                "UPDATE items SET display = ?, text = ?, updated_at = ? "
                "WHERE project_id = ? AND external_id = ?",
                [(display, body, now, pid, ext) for ext, display, body, _, _ in rows],
            )
            updated = max(cursor.rowcount, 0)
        cursor.executemany(
            f"INSERT INTO items ({self._columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (project_id, external_id) DO NOTHING",
            [
                (pid, ext, display, body, rand, 0, target(rand, fraction=fraction, k=k), None, None, now, now)
                if tag is None
                else (pid, ext, display, body, rand, 1, 1, tag, "human", now, now)
                for ext, display, body, rand, tag in rows
            ],
        )
        inserted = max(cursor.rowcount, 0)
        if self.index_search and inserted:
            cursor.execute(SQLITE_INDEX_NEW_ITEMS, (self.indexed_through, pid))
            self.indexed_through = cursor.execute("SELECT max(id) FROM items").fetchone()[0]
        return inserted, updated

    def close(self) -> None:
        try:
            self._cursor.execute(f"PRAGMA cache_size = {int(self._cache_size):d}")
        except sqlite3.Error:  # the connection is unusable anyway; keep the original error
            pass


class PostgresItemWriter(ItemWriter):
    """COPY into a staging table, then ``INSERT ... ON CONFLICT DO NOTHING`` (and the
    ``--update``). Into a project with no items yet nothing can conflict (the importer rejects
    duplicate ids within the file, and imports into a project are serialised), so the rows are
    copied straight into ``items``: half the work for the database server."""

    _STAGE = "labelloop_import_stage"

    def __init__(self, conn: Connection, *, project_id: int, now: datetime, update: bool,
                 overlap_fraction: float, overlap_k: int, multi_label: bool = False):
        self._raw: Any = conn.connection.driver_connection
        self._columns, self._label = _label_column(multi_label)
        if multi_label:
            self._STAGE = "labelloop_import_stage_sets"
        self._params = {"p": project_id, "now": now, "scale": OVERLAP_SCALE,
                        "threshold": overlap_threshold(overlap_fraction), "k": int(overlap_k)}
        self._update = update
        self._overlap = (overlap_fraction, overlap_k)
        with self._raw.cursor() as cur:
            cur.execute("SELECT 1 FROM items WHERE project_id = %(p)s LIMIT 1", self._params)
            self._direct = cur.fetchone() is None
            if not self._direct:
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {self._STAGE} (external_id text NOT NULL, "
                    f"display jsonb NOT NULL, text text NOT NULL, rand bigint NOT NULL, {self._label} "
                    f"{'bigint' if multi_label else 'integer'}) ON COMMIT DROP"
                )
                cur.execute(f"TRUNCATE {self._STAGE}")

    def _write_direct(self, rows: list[ItemRow]) -> tuple[int, int]:
        pid, now = self._params["p"], self._params["now"].isoformat()  # adapted once, not per row
        fraction, k = self._overlap
        target = target_labels_for
        with self._raw.cursor() as cur, cur.copy(f"COPY items ({self._columns}) FROM STDIN") as copy:
            write_row = copy.write_row
            for ext, display, body, rand, tag in rows:
                if tag is None:
                    write_row((pid, ext, display, body, rand, 0, target(rand, fraction=fraction, k=k),
                               None, None, now, now))
                else:
                    write_row((pid, ext, display, body, rand, 1, 1, tag, "human", now, now))
        return len(rows), 0

    def write(self, rows: list[ItemRow]) -> tuple[int, int]:
        if self._direct:
            return self._write_direct(rows)
        stage = self._STAGE
        with self._raw.cursor() as cur:
            with cur.copy(f"COPY {stage} (external_id, display, text, rand, {self._label}) FROM STDIN") as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            updated = 0
            if self._update:
                cur.execute(
                    f"UPDATE items AS i SET display = s.display, text = s.text, updated_at = %(now)s "
                    f"FROM {stage} AS s WHERE i.project_id = %(p)s AND i.external_id = s.external_id",
                    self._params,
                )
                updated = max(cur.rowcount, 0)
            # target_labels: the overlap rule of target_labels_for (labelloop.store.items) in SQL,
            # with its threshold (overlap_threshold) bound as a parameter.
            label = self._label
            cur.execute(
                f"INSERT INTO items ({self._columns}) "
                "SELECT %(p)s, external_id, display, text, rand, "
                f"CASE WHEN {label} IS NULL THEN 0 ELSE 1 END, "
                f"CASE WHEN {label} IS NULL AND rand %% %(scale)s < %(threshold)s THEN %(k)s ELSE 1 END, "
                f"{label}, "
                f"CASE WHEN {label} IS NULL THEN NULL ELSE 'human' END, %(now)s, %(now)s "
                f"FROM {stage} ON CONFLICT (project_id, external_id) DO NOTHING",
                self._params,
            )
            inserted = max(cur.rowcount, 0)
            cur.execute(f"TRUNCATE {stage}")
        return inserted, updated


class BackgroundWriter:
    """Runs ``writer.write`` for each chunk in a worker thread; sums (inserted, updated).

    Only one thread uses the connection at a time: the caller must :meth:`drain` before using
    the connection itself, and must call :meth:`close` (also on errors) before the transaction
    ends."""

    def __init__(self, writer: ItemWriter, *, depth: int = 2):
        self._writer = writer
        self._queue: queue.Queue[list[ItemRow] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._cancelled = False
        self.inserted = self.updated = 0
        self._thread = threading.Thread(target=self._run, name="labelloop-import-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                if self._error is None and not self._cancelled:
                    inserted, updated = self._writer.write(chunk)
                    self.inserted += inserted
                    self.updated += updated
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, chunk: list[ItemRow]) -> None:
        self._raise()
        while True:
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                self._raise()

    def drain(self) -> None:
        """Wait until every queued chunk is written (the connection is then free)."""
        self._queue.join()
        self._raise()

    def close(self, *, cancel: bool = False) -> None:
        """Stop the thread after the queued chunks (skipped with ``cancel``, after an error
        elsewhere); raise the writer's error, if any and not cancelled."""
        self._cancelled = self._cancelled or cancel
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if not cancel:
            self._raise()


def make_writer(conn: Connection, *, project_id: int, now: datetime, update: bool,
                overlap_fraction: float = 0.0, overlap_k: int = 1, multi_label: bool = False) -> ItemWriter:
    """The writer for the connection's backend; new items without a label get ``target_labels``
    from ``overlap_fraction`` and ``overlap_k`` (:func:`target_labels_for`). ``multi_label``:
    the rows' labels are masks (``items.label_mask``)."""
    cls = SqliteItemWriter if is_sqlite(conn) else PostgresItemWriter
    return cls(conn, project_id=project_id, now=now, update=update, overlap_fraction=overlap_fraction,
               overlap_k=overlap_k, multi_label=multi_label)


def lock_project_for_import(conn: Connection, *, project_id: int) -> None:
    """Serialise imports into one project (SQLite's write lock does it already)."""
    if not is_sqlite(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :p)"), {"ns": _PG_IMPORT_LOCK, "p": project_id})


def max_item_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one())


def add_import_annotations(conn: Connection, *, project_id: int, after_id: int, now: datetime,
                           multi_label: bool = False) -> int:
    """One 'import' annotation (no user) per labelled item this import created; returns how many.

    Items created by the import are the project's items with ids above ``after_id`` (the largest
    id before the import; imports into a project are serialised). ``multi_label``: the
    annotations carry the items' masks (``tag_mask``)."""
    stamp = literal(now, type_=annotations.c.created_at.type)
    label = items.c.label_mask if multi_label else items.c.label_tag_id
    chosen = select(
        items.c.project_id,
        items.c.id,
        null(),
        label,
        literal("import"),
        false(),
        stamp,
        stamp,
    ).where(items.c.project_id == project_id, items.c.id > after_id, label.is_not(None))
    result = conn.execute(
        insert(annotations)
        .from_select(
            ["project_id", "item_id", "user_id", "tag_mask" if multi_label else "tag_id", "source", "is_audit",
             "created_at", "updated_at"],
            chosen,
        )
        .execution_options(preserve_rowcount=True)
    )
    return max(result.rowcount or 0, 0)
