"""PostgreSQL: the labelling hot path as server-side functions (one round trip per claim and label)

``labelloop_claim`` renews the user's live lease or leases the first of a list of candidate
items available to them; ``labelloop_label`` checks that an item is the user's to label,
records the label and refreshes the item's final label. Each does what
``labelloop.store.queue`` (claims) and ``labelloop.store.labelling`` (labels) do in 3-5
statements, statement for statement (each statement of a VOLATILE PL/pgSQL function takes a
fresh snapshot under READ COMMITTED, like the separate statements did), so the queue's rules
are unchanged. Refusals are returned, never raised (an
error would abort the caller's transaction, which holds other requests' work).

Every statement in them finds its rows by key, so they are planned with ``enable_seqscan =
off``: a function's plans are cached for the life of the connection (the server's writers
keep theirs), and plans made while ``assignments`` was nearly empty (a new project, or the
first minutes after a reset) would otherwise scan the whole table on every call as it grows.

SQLite: nothing to do (its queue runs the separate statements inside one ``BEGIN IMMEDIATE``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:15:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Lease the first of p_items available to the user (the checks of labelloop.store.queue.try_claim),
# after renewing the user's live lease in the project instead when p_renew and they hold one.
# Returns one row: the item leased or renewed (o_item null if none), whether it was a renewal,
# how many candidates were tried (from the front of p_items) and which of those the user
# labelled or skipped already (never theirs again).
CLAIM = r"""
CREATE OR REPLACE FUNCTION labelloop_claim(
    p_project integer, p_user integer, p_items bigint[], p_now timestamptz, p_expires timestamptz,
    p_audit boolean, p_wait boolean, p_renew boolean)
RETURNS TABLE (o_item bigint, o_external_id varchar, o_display jsonb, o_is_audit boolean,
               o_renewed boolean, o_tried integer, o_not_for_you bigint[])
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $fn$
DECLARE
    v_item bigint;
    v_ext varchar;
    v_display jsonb;
    v_audit boolean;
    v_n integer;
    v_target integer;
    v_held bigint;
    v_mine varchar;
    v_tried integer := 0;
    v_not_for_you bigint[] := '{}';
BEGIN
    IF p_renew THEN
        SELECT a.item_id, i.external_id, i.display, a.is_audit INTO v_item, v_ext, v_display, v_audit
        FROM assignments a JOIN items i ON i.id = a.item_id
        WHERE a.project_id = p_project AND a.user_id = p_user AND a.state = 'leased' AND a.expires_at > p_now
        ORDER BY a.leased_at DESC, a.id DESC LIMIT 1;
        IF FOUND THEN
            UPDATE assignments SET expires_at = p_expires WHERE item_id = v_item AND user_id = p_user;
            RETURN QUERY SELECT v_item, v_ext, v_display, v_audit, true, 0, v_not_for_you;
            RETURN;
        END IF;
    END IF;
    FOREACH v_item IN ARRAY coalesce(p_items, '{}'::bigint[]) LOOP
        v_tried := v_tried + 1;
        -- Lock the item only if it looks available (items held by others are never locked).
        IF p_wait THEN
            SELECT i.external_id, i.display, i.n_labels, i.target_labels INTO v_ext, v_display, v_n, v_target
            FROM items i
            WHERE i.id = v_item AND i.project_id = p_project AND i.n_labels < i.target_labels
              AND i.n_labels + (SELECT count(*) FROM assignments o WHERE o.item_id = v_item AND o.state = 'leased'
                                AND o.expires_at > p_now AND o.user_id <> p_user) < i.target_labels
            FOR UPDATE;
        ELSE
            SELECT i.external_id, i.display, i.n_labels, i.target_labels INTO v_ext, v_display, v_n, v_target
            FROM items i
            WHERE i.id = v_item AND i.project_id = p_project AND i.n_labels < i.target_labels
              AND i.n_labels + (SELECT count(*) FROM assignments o WHERE o.item_id = v_item AND o.state = 'leased'
                                AND o.expires_at > p_now AND o.user_id <> p_user) < i.target_labels
            FOR UPDATE SKIP LOCKED;
        END IF;
        CONTINUE WHEN NOT FOUND;
        -- Checked again under the lock, in a fresh statement (a new snapshot).
        SELECT (SELECT count(*) FROM assignments o WHERE o.item_id = v_item AND o.state = 'leased'
                AND o.expires_at > p_now AND o.user_id <> p_user),
               (SELECT m.state FROM assignments m WHERE m.item_id = v_item AND m.user_id = p_user)
        INTO v_held, v_mine;
        CONTINUE WHEN v_n + v_held >= v_target;
        IF v_mine IS NOT NULL AND v_mine <> 'leased' THEN
            v_not_for_you := v_not_for_you || v_item;
            CONTINUE;
        END IF;
        IF v_mine IS NOT NULL THEN
            UPDATE assignments SET leased_at = p_now, expires_at = p_expires, is_audit = p_audit
            WHERE item_id = v_item AND user_id = p_user;
        ELSE
            INSERT INTO assignments (project_id, item_id, user_id, state, is_audit, leased_at, expires_at)
            VALUES (p_project, v_item, p_user, 'leased', p_audit, p_now, p_expires);
        END IF;
        RETURN QUERY SELECT v_item, v_ext, v_display, p_audit, false, v_tried, v_not_for_you;
        RETURN;
    END LOOP;
    RETURN QUERY SELECT NULL::bigint, NULL::varchar, NULL::jsonb, NULL::boolean, false, v_tried, v_not_for_you;
END
$fn$
"""

# Record the user's label p_tag on the item (the checks of labelloop.store.labelling._held, then the
# annotation, the assignment's end and the item's final label by the rule of
# labelloop.store.labels.final_label: adjudicated > majority > conflict on a tie; labels with a
# retired tag do not count). Returns 'ok' or the refusal: 'unknown' (no such item in the
# project), 'not_leased', 'labelled', 'skipped', 'expired' (and taken by someone else); a
# refusal writes nothing.
LABEL = r"""
CREATE OR REPLACE FUNCTION labelloop_label(
    p_project integer, p_user integer, p_item bigint, p_tag integer, p_now timestamptz)
RETURNS varchar
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $fn$
DECLARE
    v_n integer;
    v_target integer;
    v_adjudicated integer;
    v_assignment bigint;
    v_state varchar;
    v_expires timestamptz;
    v_audit boolean;
    v_held bigint;
    v_total integer;
    v_top integer;
    v_first bigint;
    v_second bigint;
BEGIN
    SELECT i.n_labels, i.target_labels, i.adjudicated_tag_id, a.id, a.state, a.expires_at, a.is_audit,
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
    INSERT INTO annotations (project_id, item_id, user_id, tag_id, source, is_audit, created_at, updated_at)
    VALUES (p_project, p_item, p_user, p_tag, 'human', v_audit, p_now, p_now);
    UPDATE assignments SET state = 'labelled', finished_at = p_now WHERE id = v_assignment;
    SELECT coalesce(sum(s.c), 0), (array_agg(s.tag_id ORDER BY s.c DESC))[1],
           (array_agg(s.c ORDER BY s.c DESC))[1], (array_agg(s.c ORDER BY s.c DESC))[2]
    INTO v_total, v_top, v_first, v_second
    FROM (SELECT an.tag_id, count(*) AS c FROM annotations an JOIN tags tg ON tg.id = an.tag_id
          WHERE an.item_id = p_item AND NOT tg.retired GROUP BY an.tag_id) s;
    UPDATE items SET n_labels = v_total,
        label_tag_id = CASE WHEN v_adjudicated IS NOT NULL THEN v_adjudicated
                            WHEN v_total = 0 OR v_first = v_second THEN NULL ELSE v_top END,
        label_source = CASE WHEN v_adjudicated IS NOT NULL THEN 'human' WHEN v_total = 0 THEN NULL
                            WHEN v_first = v_second THEN 'conflict' ELSE 'human' END,
        updated_at = p_now
    WHERE id = p_item;
    RETURN 'ok';
END
$fn$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Sent as they are (no bind-parameter parsing of the PL/pgSQL text).
    bind.exec_driver_sql(CLAIM)
    bind.exec_driver_sql(LABEL)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS labelloop_label(integer, integer, bigint, integer, timestamptz)")
    op.execute(
        "DROP FUNCTION IF EXISTS labelloop_claim(integer, integer, bigint[], timestamptz, timestamptz, "
        "boolean, boolean, boolean)"
    )
