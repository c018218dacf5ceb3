"""multi-label projects: tag sets as bit masks

- ``projects.multi_label`` (false for every existing project).
- ``tags.bit``: a multi-label project's tag's bit (0..62) in the masks below; unique per project
  (a unique index, which SQLite adds without rebuilding the table). Null for existing tags.
- ``annotations.tag_id`` becomes nullable and ``annotations.tag_mask`` holds a multi-label
  annotation's set; a check keeps exactly one of the two set. On SQLite the table is rebuilt
  (batch mode; nothing refers to it); existing rows are copied unchanged.
- ``items.label_mask`` / ``items.adjudicated_mask``: a multi-label item's final and adjudicated
  sets. ``item_scores.predicted_mask`` / ``item_scores.proba``: a multi-label run's predicted set
  and per-tag probabilities. Added columns only (no rebuild of these large tables).

Single-label data is unchanged: every new column is null (or false) on existing rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases: a batch rebuild of projects or items on
    # SQLite would drop the old table, which cascades to the rows referring to it.
    op.add_column("projects", sa.Column("multi_label", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("tags", sa.Column("bit", sa.SmallInteger(), nullable=True))
    op.create_index("ix_tags_project_bit", "tags", ["project_id", "bit"], unique=True)
    op.add_column("items", sa.Column("label_mask", sa.BigInteger(), nullable=True))
    op.add_column("items", sa.Column("adjudicated_mask", sa.BigInteger(), nullable=True))
    op.add_column("item_scores", sa.Column("predicted_mask", sa.BigInteger(), nullable=True))
    op.add_column("item_scores", sa.Column("proba", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag_mask", sa.BigInteger(), nullable=True))
        batch_op.alter_column("tag_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_annotations_tag_or_mask"), sa.text("(tag_id IS NULL) <> (tag_mask IS NULL)")
        )


def downgrade() -> None:
    op.execute("DELETE FROM annotations WHERE tag_id IS NULL")
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_annotations_tag_or_mask"), type_="check")
        batch_op.alter_column("tag_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("tag_mask")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch rebuild of items would cascade
    # the drop of the old table to annotations and assignments.
    op.drop_column("item_scores", "proba")
    op.drop_column("item_scores", "predicted_mask")
    op.drop_column("items", "adjudicated_mask")
    op.drop_column("items", "label_mask")
    op.drop_index("ix_tags_project_bit", table_name="tags")
    op.drop_column("tags", "bit")
    op.drop_column("projects", "multi_label")
