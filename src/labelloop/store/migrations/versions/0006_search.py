"""full-text search over items.text

- PostgreSQL: ``ix_items_search``, an expression GIN index over
  ``to_tsvector('simple', text)`` (no stored tsvector column: see store/schema.py). Built in one
  pass over the existing items.
- SQLite: ``items_fts``, an FTS5 external-content table (rowid = items.id, tokenizer unicode61
  without diacritic folding), the three triggers that keep it in step with single writes, and a
  'rebuild' that indexes the existing items.

The DDL is a frozen copy of store/schema.py's at this revision (never edit it here: a later
change is a new migration).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 09:00:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE_DDL = (
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


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for ddl in SQLITE_DDL:
            op.execute(ddl)
        op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")
    else:
        op.execute("SET LOCAL maintenance_work_mem = '256MB'")
        op.execute("CREATE INDEX ix_items_search ON items USING gin (to_tsvector('simple'::regconfig, text))")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("items_fts_ai", "items_fts_ad", "items_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS items_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_items_search")
