"""a multi-label label by one labeller skips the per-tag count

``labelloop_label_set`` (migration 0005) counted, for every active tag, the item's annotations
that chose it: one index scan per tag. Most items have one labeller, whose set *is* the majority
on every tag with no tie possible; the function now takes that set (masked to the active tags)
and counts per tag only for items with several labellers. Same answers and refusals, statement
for statement (tests/store/test_queue_statements.py, tests/store/test_multilabel_labelling.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 15:20:00
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0009"
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
    SELECT count(*), min(an.tag_mask) INTO v_total, v_mask FROM annotations an
    WHERE an.item_id = p_item AND an.tag_mask IS NOT NULL;
    IF v_total = 1 THEN
        -- One labeller (most items): their set, on the active tags; no tie is possible.
        SELECT coalesce(bit_or(1::bigint << tg.bit), 0) INTO v_active
        FROM tags tg WHERE tg.project_id = p_project AND NOT tg.retired AND tg.bit IS NOT NULL;
        v_mask := v_mask & v_active;
        v_tie := false;
    ELSE
        -- Per active tag: how many of the item's labellers chose it (c); in if 2c > total, tie if 2c = total.
        SELECT coalesce(bit_or(CASE WHEN 2 * s.c > v_total THEN s.b ELSE 0 END), 0), coalesce(bool_or(2 * s.c = v_total), false),
               coalesce(bit_or(s.b), 0)
        INTO v_mask, v_tie, v_active
        FROM (SELECT (1::bigint << tg.bit) AS b,
                     (SELECT count(*) FROM annotations an WHERE an.item_id = p_item AND an.tag_mask IS NOT NULL
                      AND an.tag_mask & (1::bigint << tg.bit) <> 0) AS c
              FROM tags tg WHERE tg.project_id = p_project AND NOT tg.retired AND tg.bit IS NOT NULL) s;
    END IF;
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
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(LABEL_SET)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(_previous_label_set())


def _previous_label_set() -> str:
    """0005's function text (the file name starts with a digit: loaded by path)."""
    spec = importlib.util.spec_from_file_location("_m0005", Path(__file__).with_name("0005_multi_label.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LABEL_SET
