"""Held-out audit items in a round: out of training and scoring, scored into the run's metrics;
the stop set, stability between rounds, the advice, and `status --json`."""

from __future__ import annotations

import json
import random

import joblib
from click.testing import CliRunner
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select, update

from labelloop.cli import main
from labelloop.orchestrator import run_round
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue as store_queue
from labelloop.store import runs as store_runs
from labelloop.store.schema import item_scores, items

from orch_helpers import TAGS


def texts(engine, ids):
    with reading(engine) as conn:
        found = dict(conn.execute(select(items.c.id, items.c.text).where(items.c.id.in_(ids))).all())
    return [found[i] for i in ids]


def label_audit_items(bbc, n, *, wrong_every=0):
    """Label ``n`` audit items (audit fraction 1) with their true topic (or a wrong one every
    ``wrong_every``), one of them an overlap item that ends in a conflict; returns their ids."""
    with writing(bbc.engine) as conn:
        store_projects.update_settings(conn, project_id=bbc.project().id, values={"audit_fraction": 1.0})
    project = bbc.project()
    ann, bob = bbc.user("ann"), bbc.user("bob")
    rng = random.Random(0)
    with writing(bbc.engine) as conn:  # the first item in the seeded order wants two labellers
        first = conn.execute(select(items.c.id).where(items.c.project_id == project.id, items.c.n_labels == 0)
                             .order_by(items.c.rand).limit(1)).scalar_one()
        conn.execute(update(items).where(items.c.id == first).values(target_labels=2))
    labelled = []
    for user, tag in ((ann, TAGS[0]), (bob, TAGS[1])):
        with writing(bbc.engine) as conn:
            lease = store_queue.next_item(conn, project=project, user_id=user, lease_seconds=60, rng=rng)
            assert lease.item_id == first and lease.is_audit
            store_queue.label_item(conn, project=project, user_id=user, item_id=first, tag=tag)
    for i in range(n):
        with writing(bbc.engine) as conn:
            lease = store_queue.next_item(conn, project=project, user_id=ann, lease_seconds=60, rng=rng)
            assert lease.is_audit
            tag = bbc.truth[lease.item_id]
            if wrong_every and i % wrong_every == 0:
                tag = TAGS[(TAGS.index(tag) + 1) % len(TAGS)]
            store_queue.label_item(conn, project=project, user_id=ann, item_id=lease.item_id, tag=tag)
            labelled.append((lease.item_id, tag))
    return first, labelled


def test_audit_items_are_held_out_and_scored_into_the_run(bbc):
    conflict, audited = label_audit_items(bbc, 24, wrong_every=6)
    audit_ids = sorted(i for i, _ in audited)
    project = bbc.project()
    with reading(bbc.engine) as conn:
        snap = store_runs.label_snapshot(conn, project_id=project.id)
    assert snap["audit_ids"].tolist() == audit_ids  # the conflict has no final label: not counted
    assert not set(audit_ids) & set(snap["train_ids"].tolist()) and conflict not in snap["train_ids"]
    assert set(audit_ids) | {conflict} <= set(snap["closed_ids"].tolist())

    result = run_round(bbc.engine, bbc.settings, project="bbc")
    assert result.labels_used == 40  # the imported labels only
    with reading(bbc.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        scored = set(conn.execute(select(item_scores.c.item_id).where(item_scores.c.run_id == run.id)).scalars())
        due = store_runs.round_due(conn, project=project, min_new_labels=1)
    assert not scored & (set(audit_ids) | {conflict})  # held out: not scored
    assert due is None  # audit labels were counted when the round started
    assert run.metrics["human_labels"] == 40 + len(audit_ids)

    # By hand: the saved model's predictions on the audit items against their labels.
    pipeline = joblib.load(run.path)["pipeline"]
    given = dict(audited)
    proba = pipeline.predict_proba(texts(bbc.engine, audit_ids))
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    correct = int(sum(p == given[i] for p, i in zip(predicted, audit_ids)))
    audit = run.metrics["audit"]
    assert (audit["labelled"], audit["correct"]) == (len(audit_ids), correct)
    assert audit["accuracy"] == correct / len(audit_ids)
    ci = binomtest(correct, len(audit_ids)).proportion_ci(confidence_level=0.95, method="wilson")
    assert audit["ci95"] == [ci.low, ci.high]
    assert 0 < correct < len(audit_ids)  # the wrong labels cost something

    # The stop set: every item here (fewer than 1,000), with the model's predicted tag ids.
    tag_id = {t.name: t.id for t in project.tags}
    stop = run.metrics["stop_set"]
    assert stop["ids"] == sorted(bbc.truth)
    stop_pred = pipeline.classes_[pipeline.predict_proba(texts(bbc.engine, stop["ids"])).argmax(axis=1)]
    assert stop["tags"] == [tag_id[t] for t in stop_pred]
    assert run.metrics["stability"] == {"kappa": None, "compared": 0, "previous_version": None}
    assert run.metrics["advice"]["stop"] is False
    assert run.metrics["advice"]["message"].startswith("keep labelling: predictions compared between 0 of 3")
    assert result.audit == audit and result.advice == run.metrics["advice"]


def test_stability_between_two_rounds_and_status_json(bbc, db_url):
    run_round(bbc.engine, bbc.settings, project="bbc")
    label_audit_items(bbc, 30)
    project = bbc.project()
    with writing(bbc.engine) as conn:  # more training labels, so the second model differs
        extra = conn.execute(select(items.c.id).where(items.c.project_id == project.id, items.c.n_labels == 0)
                             .order_by(items.c.id).limit(30)).scalars().all()
        for item_id in extra:
            conn.execute(update(items).where(items.c.id == item_id).values(
                label_tag_id=project.tag_id(bbc.truth[item_id]), label_source="human", n_labels=1))
    run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        first, second = sorted(store_runs.list_runs(conn, project_id=project.id), key=lambda r: r.version)
    a, b = first.metrics["stop_set"], second.metrics["stop_set"]
    assert a["ids"] == b["ids"]
    expected = 1.0 if a["tags"] == b["tags"] else cohen_kappa_score(a["tags"], b["tags"])
    assert second.metrics["stability"] == {"kappa": expected, "compared": len(a["ids"]), "previous_version": 1}
    assert a["tags"] != b["tags"] and expected < 1.0
    assert second.metrics["audit"]["labelled"] == 30

    out = CliRunner().invoke(main, ["status", "bbc", "--json", "--db", db_url], catch_exceptions=False)
    status = json.loads(out.stdout)
    audit = second.metrics["audit"]
    assert status["audit"] == {"labelled": 30, "accuracy": audit["accuracy"], "ci95": audit["ci95"]}
    assert status["advice"] == second.metrics["advice"]
    table = CliRunner().invoke(main, ["status", "bbc", "--db", db_url], catch_exceptions=False).stdout
    assert f"audit estimate: {audit['accuracy']:.1%} accurate" in table
    assert "advice: keep labelling: predictions compared between 1 of 3" in table
