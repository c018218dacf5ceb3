"""my history: ``label_history``, the changes of a labeller's own labels

A labeller may change any of their own labels while it is theirs (``store/history.py``); each
change keeps the value before and after here. The hot path's statements (``store/labelling.py``,
the PostgreSQL functions) are untouched.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05 19:10:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "label_history",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("annotation_id", _BIGID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _BIGID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("old_tag_id", sa.Integer(), nullable=True),
        sa.Column("old_mask", sa.BigInteger(), nullable=True),
        sa.Column("new_tag_id", sa.Integer(), nullable=True),
        sa.Column("new_mask", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", _TS, nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_label_history_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_label_history_item_id_items"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_label_history_user_id_users")),
        sa.ForeignKeyConstraint(["old_tag_id"], ["tags.id"], name=op.f("fk_label_history_old_tag_id_tags")),
        sa.ForeignKeyConstraint(["new_tag_id"], ["tags.id"], name=op.f("fk_label_history_new_tag_id_tags")),
        sa.ForeignKeyConstraint(["changed_by"], ["users.id"], name=op.f("fk_label_history_changed_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_history")),
    )
    with op.batch_alter_table("label_history", schema=None) as batch_op:
        batch_op.create_index("ix_label_history_item", ["item_id", "id"], unique=False)
        batch_op.create_index("ix_label_history_annotation", ["annotation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("label_history", schema=None) as batch_op:
        batch_op.drop_index("ix_label_history_annotation")
        batch_op.drop_index("ix_label_history_item")
    op.drop_table("label_history")
