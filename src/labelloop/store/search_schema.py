"""The full-text search's schema objects, outside ``schema.metadata`` (store/search.py;
migrations 0006 and 0016).

- PostgreSQL: ``items.search_tsv``, a stored generated column ``to_tsvector('simple', text)``,
  and ``ix_items_search``, a GIN index over it. Stored, because the phrase check (positions)
  and ``ts_rank`` need each matching row's tsvector: from the column they read it, from an
  expression index they parse the text again (1M items, loaded machine: a phrase's first 1,000
  matches 200 ms against 8 ms; ranking 1,000 matches 45 ms against 1 ms). It costs about 7 %
  more per imported row than the expression index of 0006 (the parse is the cost either way:
  benchmarks/RESULTS.md). ``'simple'`` (lower-casing, no stemming, no stop words) is the
  cheapest configuration and matches as SQLite's unicode61 tokenizer does.
- SQLite: an FTS5 external-content table over ``items.text`` (rowid = items.id), kept in step
  by triggers for single writes; a bulk import drops the insert trigger for its transaction and
  indexes its new rows in one ``INSERT ... SELECT`` at the end (io/bulk.py, store/search_index.py).

SQLAlchemy cannot describe generated tsvector columns on one dialect only, virtual tables or
triggers, so the schema comparison (migrations/env.py, tests/store/test_migrations.py) leaves
them out through :func:`comparison_filter`; the migrations hold frozen copies of this DDL.
"""

from __future__ import annotations

SEARCH_CONFIG = "simple"
PG_SEARCH_COLUMN = "search_tsv"
SQLITE_FTS_TABLE = "items_fts"
SQLITE_FTS_INSERT_TRIGGER = "items_fts_ai"
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE items_fts USING fts5(text, content='items', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER items_fts_au AFTER UPDATE OF text ON items WHEN old.text IS NOT new.text BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO items_fts(rowid, text) VALUES (new.id, new.text); END",
)
SEARCH_ONLY_NAMES = frozenset(
    {"items_fts", "items_fts_data", "items_fts_idx", "items_fts_docsize", "items_fts_config"})


def comparison_filter(dialect_name: str):  # type: ignore[no-untyped-def]
    """Alembic ``include_object`` hook: leave the search objects out of the schema comparison
    (their presence is tested in tests/store/test_search.py)."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "table" and name in SEARCH_ONLY_NAMES:
            return False
        if type_ == "index" and name == "ix_items_search":
            return False
        if type_ == "column" and name == PG_SEARCH_COLUMN:
            return False
        return True

    return include
