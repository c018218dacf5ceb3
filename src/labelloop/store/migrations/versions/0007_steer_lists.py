"""steering lists and item vectors (issue 13: the likely, unsure and similar queues)

- ``steer_lists``: per model run, tag and kind ('likely', 'unsure') the first items in order,
  written by the round before its switch and deleted with the run's scores.
- ``vector_sets`` / ``item_vectors``: a project's reduced, unit-length feature vectors
  (float16, in chunks of consecutive items) for the ``similar`` queue, written by a round when
  the features changed.

New tables only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "steer_lists",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rank", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_id", _BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "tag_id", "kind", "rank", name=op.f("pk_steer_lists")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "vector_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("featurizer", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_vector_sets_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_sets")),
    )
    with op.batch_alter_table("vector_sets", schema=None) as batch_op:
        batch_op.create_index("ix_vector_sets_project", ["project_id", "id"], unique=False)
    op.create_table(
        "item_vectors",
        sa.Column("set_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_ids", sa.LargeBinary(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", "chunk", name=op.f("pk_item_vectors")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("item_vectors")
    with op.batch_alter_table("vector_sets", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_sets_project")
    op.drop_table("vector_sets")
    op.drop_table("steer_lists")
