"""steered queues (issue 13)

- ``assignments.steered``: the lease was served from a steered queue (search, similar, likely,
  unsure, random), never an audit draw; false for every existing row. Not counted as served by
  the model's order when deciding which held-out audit items that order reached.
- ``steer_reached``: held-out audit items a steered queue walked past (they ranked before the item
  it served in that queue's list): they count as reached, as if that queue had picked them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 14:20:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("steered", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "steer_reached",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("reached_at", labelloop.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_steer_reached_item_id_items"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_steer_reached_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_steer_reached")),
    )
    op.create_index("ix_steer_reached_project", "steer_reached", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_steer_reached_project", table_name="steer_reached")
    op.drop_table("steer_reached")
    op.drop_column("assignments", "steered")
