"""model suggestions (issue 14)

``assignments.predicted_tag_id`` / ``predicted_mask``: the serving model's prediction when the
item was served (recorded only while the project's ``suggestions`` setting is on);
``assignments.suggest_mode``: how it was shown ('order' or 'preselect'), null when not shown.
Null for every existing row (no suggestion was ever shown).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("predicted_tag_id", sa.Integer(), nullable=True))
    op.add_column("assignments", sa.Column("predicted_mask", sa.BigInteger(), nullable=True))
    op.add_column("assignments", sa.Column("suggest_mode", sa.String(length=10), nullable=True))


def downgrade() -> None:
    op.drop_column("assignments", "suggest_mode")
    op.drop_column("assignments", "predicted_mask")
    op.drop_column("assignments", "predicted_tag_id")
