"""Keeping the search index in step with bulk imports (store/search.py reads it).

Single writes keep the index by themselves: SQLite's triggers on ``items`` (insert, delete,
update of ``text``) and PostgreSQL's GIN index. A bulk import on SQLite would pay the insert
trigger once per row (about twice the import's time), so the import, inside its one write
transaction, drops that trigger (:func:`begin_bulk_insert`), writes its rows, then indexes
every new row in one ``INSERT INTO items_fts ... SELECT`` and re-creates the trigger
(:func:`end_bulk_insert`). SQLite's DDL is transactional: a failed import rolls the trigger
back with everything else, and no other connection can write meanwhile (the transaction holds
the write lock). The import's writer thread indexes each chunk's new rows right after writing
them (io/bulk.py), so the indexing overlaps the parsing of the next chunk; the end only
indexes what is left (nothing, normally) and restores the trigger. The update trigger stays: ``import --update`` re-indexes only the rows whose
text changed.

On PostgreSQL the GIN index is maintained by the server (its pending list takes the new rows
in batches); both functions only raise the transaction's ``work_mem``, which the pending
list's merge into the index uses.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from labelloop.store.search_schema import SQLITE_FTS_INSERT_TRIGGER, SQLITE_SEARCH_DDL

# Index the project's items with ids above the first parameter (qmark style: the import's raw
# sqlite3 cursor runs it after each chunk).
SQLITE_INDEX_NEW_ITEMS = "INSERT INTO items_fts (rowid, text) SELECT id, text FROM items WHERE id > ? AND project_id = ?"
_INSERT_TRIGGER_DDL = next(d for d in SQLITE_SEARCH_DDL if f"TRIGGER {SQLITE_FTS_INSERT_TRIGGER} " in d)


def begin_bulk_insert(conn: Connection) -> bool:
    """Before a bulk insert of items, inside the write transaction. Returns whether
    :func:`end_bulk_insert` has rows to index (False where the index was removed by hand, as
    benchmarks/import_speed.py does to measure the import without it)."""
    if conn.dialect.name != "sqlite":
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
        return False
    exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :t"),
                          {"t": SQLITE_FTS_INSERT_TRIGGER}).first() is not None
    if exists:
        conn.execute(text(f"DROP TRIGGER {SQLITE_FTS_INSERT_TRIGGER}"))
    return exists


def end_bulk_insert(conn: Connection, *, project_id: int, after_id: int, paused: bool) -> None:
    """After a bulk insert into ``project_id`` (new items: ids above ``after_id``), in the same
    transaction: index the new rows and restore the trigger, if ``paused`` (what
    :func:`begin_bulk_insert` answered)."""
    if not paused:
        return
    conn.execute(text("INSERT INTO items_fts (rowid, text) SELECT id, text FROM items "
                      "WHERE id > :after AND project_id = :p"), {"after": after_id, "p": project_id})
    conn.execute(text(_INSERT_TRIGGER_DDL))
