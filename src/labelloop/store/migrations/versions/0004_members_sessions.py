"""project members, server-side sessions, orchestrator heartbeats

- ``project_members``: which labellers may see a project. Every existing labeller becomes a
  member of every existing project, so nobody loses access by upgrading.
- ``sessions``: a login's key (hashed), so that logout, a password reset or a disabled account
  end sessions on the server, not only in the browser. Cookies signed before this revision carry
  no session key and are refused (their users log in again).
- ``orchestrator_heartbeats``: when an orchestrator last checked a project, and how it runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

import labelloop.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = labelloop.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_project_members_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_project_members_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_members")),
    )
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_members_user_id"), ["user_id"], unique=False)
    op.execute(
        "INSERT INTO project_members (project_id, user_id, created_at) "
        "SELECT p.id, u.id, CURRENT_TIMESTAMP FROM projects p CROSS JOIN users u WHERE u.role = 'labeller'"
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_sessions_key_hash")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "orchestrator_heartbeats",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_orchestrator_heartbeats_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_orchestrator_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("orchestrator_heartbeats")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
    op.drop_table("sessions")
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_members_user_id"))
    op.drop_table("project_members")
