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

PostgreSQL: ``labelloop_label_set`` records a multi-label annotation in one round trip, as
``labelloop_label`` (0003) does for one tag: the same checks and refusals, statement for
statement (see labelloop.store.labelling), then the item's final set by the rule of
labelloop.store.labels.final_set (adjudicated set > per active tag majority; a tie on any active
tag is a conflict; every annotation counts in n_labels, retired bits are ignored).

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


LABEL_SET = r"""
CREATE OR REPLACE FUNCTION labelloop_label_set(
    p_project integer, p_user integer, p_item bigint, p_mask bigint, p_now timestamptz)
RETURNS varchar
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $fn$
DECLARE
    v_n integer;
    v_target integer;
    v_adjudicated bigint;
    v_assignment bigint;
    v_state varchar;
    v_expires timestamptz;
    v_audit boolean;
    v_held bigint;
    v_total integer;
    v_mask bigint;
    v_tie boolean;
    v_active bigint;
BEGIN
    SELECT i.n_labels, i.target_labels, i.adjudicated_mask, a.id, a.state, a.expires_at, a.is_audit,
           (SELECT count(*) FROM assignments o WHERE o.item_id = p_item AND o.state = 'leased'
            AND o.expires_at > p_now AND o.user_id <> p_user)
    INTO v_n, v_target, v_adjudicated, v_assignment, v_state, v_expires, v_audit, v_held
    FROM items i LEFT JOIN assignments a ON a.item_id = i.id AND a.user_id = p_user
    WHERE i.id = p_item AND i.project_id = p_project
    FOR UPDATE OF i;
    IF NOT FOUND THEN
        RETURN 'unknown';
    ELSIF v_assignment IS NULL THEN
        RETURN 'not_leased';
    ELSIF v_state = 'labelled' THEN
        RETURN 'labelled';
    ELSIF v_state = 'skipped' THEN
        RETURN 'skipped';
    ELSIF v_expires <= p_now AND v_n + v_held >= v_target THEN
        RETURN 'expired';
    END IF;
    INSERT INTO annotations (project_id, item_id, user_id, tag_mask, source, is_audit, created_at, updated_at)
    VALUES (p_project, p_item, p_user, p_mask, 'human', v_audit, p_now, p_now);
    UPDATE assignments SET state = 'labelled', finished_at = p_now WHERE id = v_assignment;
    SELECT count(*) INTO v_total FROM annotations an WHERE an.item_id = p_item AND an.tag_mask IS NOT NULL;
    -- Per active tag: how many of the item's labellers chose it (c); in if 2c > total, tie if 2c = total.
    SELECT coalesce(bit_or(CASE WHEN 2 * s.c > v_total THEN s.b ELSE 0 END), 0), coalesce(bool_or(2 * s.c = v_total), false),
           coalesce(bit_or(s.b), 0)
    INTO v_mask, v_tie, v_active
    FROM (SELECT (1::bigint << tg.bit) AS b,
                 (SELECT count(*) FROM annotations an WHERE an.item_id = p_item AND an.tag_mask IS NOT NULL
                  AND an.tag_mask & (1::bigint << tg.bit) <> 0) AS c
          FROM tags tg WHERE tg.project_id = p_project AND NOT tg.retired AND tg.bit IS NOT NULL) s;
    UPDATE items SET n_labels = v_total,
        label_mask = CASE WHEN v_adjudicated IS NOT NULL THEN v_adjudicated & v_active
                          WHEN v_total = 0 OR v_tie THEN NULL ELSE v_mask END,
        label_source = CASE WHEN v_adjudicated IS NOT NULL THEN 'human' WHEN v_total = 0 THEN NULL
                            WHEN v_tie THEN 'conflict' ELSE 'human' END,
        updated_at = p_now
    WHERE id = p_item;
    RETURN 'ok';
END
$fn$
"""


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
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(LABEL_SET)  # sent as it is (no bind-parameter parsing)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS labelloop_label_set(integer, integer, bigint, bigint, timestamptz)")
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
