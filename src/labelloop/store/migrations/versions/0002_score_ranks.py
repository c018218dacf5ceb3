"""score_ranks: a run's serving order in a table of its own; item_scores WITHOUT ROWID on SQLite

A round used to insert its million rows into ``ix_item_scores_run_priority`` in random order
and delete the previous run's rows from it in random order again (on SQLite, most of a round's
database time). Now each table is appended to in its own key order: ``item_scores`` by item,
``score_ranks`` by rank; existing runs get their ranks from their priorities.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "score_ranks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_id", _BIG_ID, nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "rank", name=op.f("pk_score_ranks")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO score_ranks (run_id, rank, item_id, priority) "
        "SELECT run_id, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY priority DESC, item_id) - 1, "
        "item_id, priority FROM item_scores"
    )
    with op.batch_alter_table("item_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_item_scores_run_priority")
    if sqlite:  # the same table, without its rowid b-tree
        op.create_table(
            "item_scores_new",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("item_id", _BIG_ID, nullable=False),
            sa.Column("priority", sa.Float(), nullable=False),
            sa.Column("predicted_tag_id", sa.Integer(), nullable=True),
            sa.Column("confidence", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("run_id", "item_id", name=op.f("pk_item_scores")),
            sqlite_with_rowid=False,
        )
        op.execute("INSERT INTO item_scores_new SELECT run_id, item_id, priority, predicted_tag_id, confidence "
                   "FROM item_scores")
        op.drop_table("item_scores")
        op.rename_table("item_scores_new", "item_scores")


def downgrade() -> None:
    with op.batch_alter_table("item_scores", schema=None) as batch_op:
        batch_op.create_index("ix_item_scores_run_priority", ["run_id", "priority"], unique=False)
    op.drop_table("score_ranks")
