"""Audit draws in the queue: uniformly random among open items, flagged, never priority-chosen."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import insert, select, update

from labelloop.store import labelling
from labelloop.store import reading, writing
from labelloop.store import scores as store_scores
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items, model_runs, projects

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(engine):
    """1,500 items, and a model run whose priorities are a known order independent of rand."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=5,
                                                settings={"audit_fraction": 0.2})
        user = store_users.create_user(conn, name="ann", role="labeller", password="a long password").id
        other = store_users.create_user(conn, name="bob", role="labeller", password="a long password").id
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"t{i}",
             "rand": rand_key(project.seed, f"e{i}"), "created_at": T0, "updated_at": T0}
            for i in range(1500)
        ])
        rows = conn.execute(select(items.c.id, items.c.rand).where(items.c.project_id == project.id)).all()
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="m", strategy="margin", created_at=T0,
        )).inserted_primary_key[0]
        priority = dict(zip([r.id for r in rows], np.random.default_rng(99).permutation(len(rows)).tolist()))
        store_scores.insert_scores(conn, run_id=run_id, item_ids=list(priority), priorities=list(priority.values()))
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
        project = store_projects.get_project(conn, name="p")
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum would gather: a plan for 1,500 rows
        with writing(engine) as conn:
            conn.exec_driver_sql("ANALYZE items, score_ranks, item_scores, assignments")
    return engine, project, user, other, priority, {r.id: r.rand for r in rows}


def claim(engine, project, user, rng):
    with writing(engine) as conn:
        return queue.next_item(conn, project=project, user_id=user, lease_seconds=600, now=T0, rng=rng)


def label(engine, project, user, item_id, tag="A"):
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=user, item_id=item_id, tag=tag, now=T0)


def test_audit_items_are_uniform_over_the_open_pool_and_the_rest_are_top_priorities(world):
    engine, project, user, _, priority, rand = world
    rng = random.Random(2024)
    open_items = set(priority)
    audit_positions, n_claims, n_audit = [], 500, 0
    for _ in range(n_claims):
        lease = claim(engine, project, user, rng)
        ranked = sorted(open_items, key=lambda i: -priority[i])
        if lease.is_audit:
            n_audit += 1
            assert lease.item_id == min(open_items, key=lambda i: rand[i])  # first in the seeded order
            audit_positions.append(ranked.index(lease.item_id) / len(ranked))
        else:
            assert lease.item_id == ranked[0]  # the model's top priority
        label(engine, project, user, lease.item_id)
        open_items.remove(lease.item_id)
    # About audit_fraction of the claims were audit draws (binomial, 4 sigma).
    assert abs(n_audit / n_claims - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n_claims)
    # Their positions in the priority order are uniform over the open pool.
    assert stats.kstest(audit_positions, "uniform").pvalue > 0.01
    counts, _ = np.histogram(audit_positions, bins=5, range=(0, 1))
    assert stats.chisquare(counts).pvalue > 0.01
    # Annotations inherit the flag from their assignment.
    with reading(engine) as conn:
        flagged = conn.execute(select(annotations.c.is_audit, assignments.c.is_audit).join(
            assignments, (assignments.c.item_id == annotations.c.item_id)
            & (assignments.c.user_id == annotations.c.user_id))).all()
    assert len(flagged) == n_claims and all(a == b for a, b in flagged)
    assert sum(a for a, _ in flagged) == n_audit


def test_no_rng_or_fraction_0_means_no_audit_draws(world):
    engine, project, user, _, priority, _ = world
    top = sorted(priority, key=lambda i: -priority[i])
    lease = claim(engine, project, user, None)
    assert (lease.item_id, lease.is_audit) == (top[0], False)
    label(engine, project, user, lease.item_id)
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=project.id, values={"audit_fraction": 0.0})
        project = store_projects.get_project(conn, name="p")
    rng = random.Random(0)
    for expected in top[1:20]:
        lease = claim(engine, project, user, rng)
        assert (lease.item_id, lease.is_audit) == (expected, False)
        label(engine, project, user, lease.item_id)


def test_undo_keeps_the_audit_flag_and_skipped_audit_items_are_the_next_draw(world):
    engine, project, user, other, _, rand = world
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=project.id, values={"audit_fraction": 1.0})
        project = store_projects.get_project(conn, name="p")
    rng = random.Random(1)
    first = claim(engine, project, user, rng)
    assert first.is_audit and first.item_id == min(rand, key=rand.get)
    label(engine, project, user, first.item_id, tag="B")
    with writing(engine) as conn:
        again = labelling.undo_last(conn, project=project, user_id=user, lease_seconds=600, now=T0)
        row = conn.execute(select(assignments.c.is_audit, assignments.c.state).where(
            assignments.c.item_id == first.item_id, assignments.c.user_id == user)).one()
    assert (again.what, again.lease.item_id, again.lease.is_audit) == ("label", first.item_id, True)
    assert tuple(row) == (True, "leased")
    assert claim(engine, project, user, rng).is_audit  # the renewed lease keeps its flag
    label(engine, project, user, first.item_id, tag="A")
    with reading(engine) as conn:
        assert conn.execute(select(annotations.c.is_audit).where(annotations.c.item_id == first.item_id)).scalar_one()
    # A skipped audit item goes back and is the next audit draw of someone else.
    second = claim(engine, project, user, rng)
    with writing(engine) as conn:
        labelling.skip_item(conn, project=project, user_id=user, item_id=second.item_id, now=T0)
    taken = claim(engine, project, other, rng)
    assert (taken.item_id, taken.is_audit) == (second.item_id, True)

