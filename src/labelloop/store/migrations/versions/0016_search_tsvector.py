"""PostgreSQL: search from a stored tsvector column

The expression index of 0006 made every phrase check and every ranking parse the matching rows'
text again; a stored generated column ``search_tsv`` keeps each item's tsvector, and
``ix_items_search`` now indexes it (store/search_schema.py says why and what it costs). The
column is computed for every existing item in one table rewrite (about 1.5 minutes per million
items on 2 cores): plan the upgrade of a large database. SQLite: nothing changes.

Frozen copy of the DDL at this revision.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 19:50:00
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("DROP INDEX IF EXISTS ix_items_search")
    op.execute("ALTER TABLE items ADD COLUMN search_tsv tsvector "
               "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED")
    op.execute("CREATE INDEX ix_items_search ON items USING gin (search_tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE items DROP COLUMN search_tsv")  # drops its index too
    op.execute("CREATE INDEX ix_items_search ON items USING gin (to_tsvector('simple'::regconfig, text))")
