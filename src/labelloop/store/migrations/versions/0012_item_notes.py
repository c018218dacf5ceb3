"""comments, flags and skip reasons: ``item_notes``

What a labeller says about an item beside a label or a skip (issue 14). A table of its own,
written only when a request carries a note, so that the labelling hot path's statements (and the
PostgreSQL functions of 0003 and 0005) stay as they are.

Revision ID: 0012
Revises: 0016
Create Date: 2026-12-05 19:30:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0012"
down_revision = "0016"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "item_notes",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _BIGID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('comment', 'unsure', 'skip')", name=op.f("ck_item_notes_kind")),
        sa.CheckConstraint("reason IS NULL OR reason IN ('unclear', 'off-topic', 'needs-context', 'other')",
                           name=op.f("ck_item_notes_reason")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_item_notes_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_item_notes_item_id_items"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_item_notes_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resolved_by"], ["users.id"], name=op.f("fk_item_notes_resolved_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_notes")),
    )
    with op.batch_alter_table("item_notes", schema=None) as batch_op:
        batch_op.create_index("ix_item_notes_project", ["project_id", "resolved_at", "id"], unique=False)
        batch_op.create_index("ix_item_notes_item", ["item_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("item_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_item_notes_item")
        batch_op.drop_index("ix_item_notes_project")
    op.drop_table("item_notes")
