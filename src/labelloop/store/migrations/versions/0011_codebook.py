"""codebook: per-tag definitions in versions, pinned examples, the version of every label

- ``projects.codebook_version`` (0: no codebook yet), ``annotations.codebook_version`` (null for
  labels made without a codebook, which every existing label was), and
  ``items.adjudicated_codebook_version`` (a review decision's version).
- ``codebook_entries`` (every version of every definition) and ``codebook_examples``.
- The trigger that stamps each new annotation with its project's version: PostgreSQL a BEFORE
  INSERT trigger, SQLite an AFTER INSERT trigger (only when the project has a codebook). The DDL
  is a frozen copy of store/schema.py's ``CODEBOOK_TRIGGER_DDL`` at this revision.

Existing rows are not rewritten: the new columns are nullable or have a constant default, so the
migration is quick on a large database.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 19:20:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

TRIGGER_DDL = {
    "postgresql": (
        "CREATE OR REPLACE FUNCTION labelloop_codebook_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN SELECT NULLIF(p.codebook_version, 0) INTO NEW.codebook_version FROM projects p "
        "WHERE p.id = NEW.project_id; RETURN NEW; END $$",
        "CREATE TRIGGER annotations_codebook_version BEFORE INSERT ON annotations "
        "FOR EACH ROW EXECUTE FUNCTION labelloop_codebook_version()",
    ),
    "sqlite": (
        "CREATE TRIGGER annotations_codebook_version AFTER INSERT ON annotations "
        "WHEN (SELECT codebook_version FROM projects WHERE id = new.project_id) > 0 BEGIN "
        "UPDATE annotations SET codebook_version = "
        "(SELECT codebook_version FROM projects WHERE id = new.project_id) WHERE id = new.id; END",
    ),
}


def upgrade() -> None:
    # ADD COLUMN on SQLite needs no table rebuild (no batch mode): the tables keep their rows.
    op.add_column("projects", sa.Column("codebook_version", sa.Integer(), server_default=sa.text("0"),
                                        nullable=False))
    op.add_column("annotations", sa.Column("codebook_version", sa.Integer(), nullable=True))
    op.add_column("items", sa.Column("adjudicated_codebook_version", sa.Integer(), nullable=True))
    op.create_table(
        "codebook_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_codebook_entries_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_codebook_entries_tag_id_tags"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_codebook_entries_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_codebook_entries")),
        sa.UniqueConstraint("project_id", "version", name=op.f("uq_codebook_entries_project_id")),
    )
    op.create_index("ix_codebook_entries_tag", "codebook_entries", ["tag_id", "version"], unique=False)
    op.create_table(
        "codebook_examples",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _BIGID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_codebook_examples_tag_id_tags"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_codebook_examples_item_id_items"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_codebook_examples_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_codebook_examples_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("tag_id", "item_id", name=op.f("pk_codebook_examples")),
    )
    op.create_index("ix_codebook_examples_item", "codebook_examples", ["item_id"], unique=False)
    for ddl in TRIGGER_DDL[op.get_bind().dialect.name]:
        op.execute(ddl)


def downgrade() -> None:
    bind = op.get_bind()
    op.execute("DROP TRIGGER IF EXISTS annotations_codebook_version"
               + ("" if bind.dialect.name == "sqlite" else " ON annotations"))
    if bind.dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS labelloop_codebook_version()")
    op.drop_index("ix_codebook_examples_item", table_name="codebook_examples")
    op.drop_table("codebook_examples")
    op.drop_index("ix_codebook_entries_tag", table_name="codebook_entries")
    op.drop_table("codebook_entries")
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_column("adjudicated_codebook_version")
    with op.batch_alter_table("annotations") as batch_op:
        batch_op.drop_column("codebook_version")
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("codebook_version")
