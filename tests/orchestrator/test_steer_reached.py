"""Steered queues and the held-out audit (issue 13): an audit item a steered claim walks past
counts as reached (it joins training, leaves the audit), as if that queue had picked it; steered
claims never move the default order's watermark; items still held out stay held out."""

from __future__ import annotations

from collections import deque

import numpy as np

from labelloop.orchestrator import run_round
from labelloop.orchestrator.heldout import read_labels
from labelloop.server.steering import _List, claim_in_list
from labelloop.store import labelling as store_labelling
from labelloop.store import reading, writing
from labelloop.store import runs as store_runs
from labelloop.store import steerqueue as steer
from labelloop.store.schema import score_ranks
from sqlalchemy import select

from test_orchestrator_heldout import claim_and_label


def steered_claim(bbc, user, order):
    project = bbc.project()
    with reading(bbc.engine) as conn:
        source = steer.source(conn, project=project, order=order)
    entry = _List(source, project.current_run_id, deque(source.open_ids))
    with writing(bbc.engine) as conn:
        lease = claim_in_list(conn, project=project, user_id=user, lease_seconds=60, entry=entry)
        store_labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id,
                                   tag=bbc.truth[lease.item_id])
    return lease


def test_a_steered_claim_reaches_the_audit_items_it_walks_past(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    ann, bob = bbc.user("ann"), bbc.user("bob")
    audited = [i for i, _t, is_audit in claim_and_label(bbc, ann, 6, audit_fraction=1.0) if is_audit]
    assert len(audited) == 6
    with reading(bbc.engine) as conn:
        open_ids = [i for i in steer.random_order(conn, project=bbc.project(), limit=50)]
    # A steered list: two audit items, then an open item (served), then two more audit items.
    order = [audited[0], audited[1], open_ids[0], audited[2], audited[3]]
    lease = steered_claim(bbc, bob, order)
    assert lease.item_id == open_ids[0] and not lease.is_audit
    with reading(bbc.engine) as conn:
        assert steer.reached_ids(conn, project_id=bbc.project().id).tolist() == sorted(audited[:2])
        labels = read_labels(conn, project=bbc.project())
        # No default claims since the run: the default order reached nothing; the steered list did.
        assert set(audited[:2]) <= set(labels.reached.tolist())
        assert set(audited[:2]) <= set(labels.train_ids.tolist())
        assert not set(audited[:2]) & set(labels.audit_ids.tolist())
        assert set(audited[2:]) <= set(labels.audit_ids.tolist())  # never passed: still held out


def test_steered_claims_do_not_move_the_default_orders_watermark(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    ann, bob = bbc.user("ann"), bbc.user("bob")
    audited = [i for i, _t, _a in claim_and_label(bbc, ann, 4, audit_fraction=1.0)]
    project = bbc.project()
    with reading(bbc.engine) as conn:
        ranked = conn.execute(select(score_ranks.c.item_id).where(score_ranks.c.run_id == project.current_run_id)
                              .order_by(score_ranks.c.rank)).scalars().all()
    first_audit = min(ranked.index(i) for i in audited)
    others = [i for i in ranked if i not in audited][: first_audit + 3]
    # As many steered claims as it takes for the default order's watermark to pass an audit item
    # if they counted (they walk lists without audit items: nothing reached by them either).
    for item_id in others:
        steered_claim(bbc, bob, [item_id])
    project = bbc.project()
    with reading(bbc.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        reached = store_runs.audit_items_reached(conn, project_id=project.id, run=run,
                                                 audit_ids=np.array(audited, dtype=np.int64))
    assert reached.tolist() == []  # k counts default claims only: there were none
