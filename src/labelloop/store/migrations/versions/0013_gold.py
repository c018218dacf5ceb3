"""gold items: ``gold_items`` (an item's known answer) and ``gold_answers`` (labellers' answers)

Gold answers live apart from ``annotations`` so that ``n_labels``, agreement, the audit and the
queue's rules (``store/labelling.py``, the PostgreSQL functions) stay as they are; a gold item
is kept out of the queue by ``items.target_labels`` 0 (store/gold.py).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05 19:30:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gold_items",
        sa.Column("item_id", _BIGID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("tag_mask", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("(tag_id IS NULL) <> (tag_mask IS NULL)", name=op.f("ck_gold_items_tag_or_mask")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_gold_items_item_id_items"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_gold_items_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_gold_items_tag_id_tags")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_gold_items_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_gold_items")),
    )
    with op.batch_alter_table("gold_items", schema=None) as batch_op:
        batch_op.create_index("ix_gold_items_project", ["project_id", "item_id"], unique=False)
    op.create_table(
        "gold_answers",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _BIGID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("tag_mask", sa.BigInteger(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("(tag_id IS NULL) <> (tag_mask IS NULL)", name=op.f("ck_gold_answers_tag_or_mask")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_gold_answers_item_id_items"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_gold_answers_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_gold_answers_tag_id_tags")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_gold_answers_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_answers")),
        sa.UniqueConstraint("item_id", "user_id", name=op.f("uq_gold_answers_item_id")),
    )
    with op.batch_alter_table("gold_answers", schema=None) as batch_op:
        batch_op.create_index("ix_gold_answers_project_user", ["project_id", "user_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gold_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_gold_answers_project_user")
    op.drop_table("gold_answers")
    with op.batch_alter_table("gold_items", schema=None) as batch_op:
        batch_op.drop_index("ix_gold_items_project")
    op.drop_table("gold_items")
