"""bulk labelling by admins: ``bulk_ops`` and their items, ``bulk_labels``

Bulk labels live apart from ``annotations`` so that agreement, overlap, ``n_labels`` and the
queue's rules (``store/labelling.py``, the PostgreSQL functions of 0003 and 0005) stay as they
are: the final-label rule (``store/labels.py``) gives an item with no human label its bulk tag
(``items.label_source = 'bulk'``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bulk_ops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("undone_at", _TS, nullable=True),
        sa.Column("undone_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("action IN ('add', 'remove')", name=op.f("ck_bulk_ops_action")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_bulk_ops_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bulk_ops_user_id_users")),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_bulk_ops_tag_id_tags")),
        sa.ForeignKeyConstraint(["undone_by"], ["users.id"], name=op.f("fk_bulk_ops_undone_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_ops")),
    )
    with op.batch_alter_table("bulk_ops", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_ops_project_id", ["project_id", "id"], unique=False)
    op.create_table(
        "bulk_labels",
        sa.Column("bulk_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _BIGID, nullable=False),
        sa.ForeignKeyConstraint(["bulk_id"], ["bulk_ops.id"], name=op.f("fk_bulk_labels_bulk_id_bulk_ops"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_bulk_labels_item_id_items"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bulk_id", "item_id", name=op.f("pk_bulk_labels")),
    )
    with op.batch_alter_table("bulk_labels", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_labels_item", ["item_id", "bulk_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulk_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_labels_item")
    op.drop_table("bulk_labels")
    with op.batch_alter_table("bulk_ops", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_ops_project_id")
    op.drop_table("bulk_ops")
