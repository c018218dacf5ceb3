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
from labelloop.store import labelling as store_labelling
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


def claim_and_label(bbc, user, n, *, audit_fraction, tag_of=None):
    """``n`` claims by ``user`` through the queue (audit draws at ``audit_fraction``), each
    labelled with its true topic or ``tag_of(item_id, i)``; returns [(item id, tag, is_audit)]."""
    with writing(bbc.engine) as conn:
        store_projects.update_settings(conn, project_id=bbc.project().id, values={"audit_fraction": audit_fraction})
    project = bbc.project()
    rng = random.Random(0)
    done = []
    for i in range(n):
        with writing(bbc.engine) as conn:
            lease = store_queue.next_item(conn, project=project, user_id=user, lease_seconds=60, rng=rng)
            tag = tag_of(lease.item_id, i) if tag_of else bbc.truth[lease.item_id]
            store_labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id, tag=tag)
            done.append((lease.item_id, tag, lease.is_audit))
    return done


def label_audit_items(bbc, n, *, wrong_every=0):
    """Label ``n`` audit items (audit fraction 1) with their true topic (or a wrong one every
    ``wrong_every``), plus one overlap item that ends in a conflict; returns (its id, [(id, tag)])."""
    project = bbc.project()
    ann, bob = bbc.user("ann"), bbc.user("bob")
    with writing(bbc.engine) as conn:  # the first item in the seeded order wants two labellers
        first = conn.execute(select(items.c.id).where(items.c.project_id == project.id, items.c.n_labels == 0)
                             .order_by(items.c.rand).limit(1)).scalar_one()
        conn.execute(update(items).where(items.c.id == first).values(target_labels=2))
    for user, tag in ((ann, TAGS[0]), (bob, TAGS[1])):
        [(item_id, _, is_audit)] = claim_and_label(bbc, user, 1, audit_fraction=1.0, tag_of=lambda _i, _n: tag)
        assert item_id == first and is_audit

    def tag_of(item_id, i):
        tag = bbc.truth[item_id]
        return TAGS[(TAGS.index(tag) + 1) % len(TAGS)] if wrong_every and i % wrong_every == 0 else tag

    labelled = claim_and_label(bbc, ann, n, audit_fraction=1.0, tag_of=tag_of)
    assert all(is_audit for _, _, is_audit in labelled)
    return first, [(i, t) for i, t, _ in labelled]


def test_audit_items_are_held_out_and_scored_into_the_run(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    conflict, audited = label_audit_items(bbc, 24, wrong_every=6)
    audit_ids = sorted(i for i, _ in audited)
    project = bbc.project()
    with reading(bbc.engine) as conn:
        snap = store_runs.label_snapshot(conn, project_id=project.id)
    assert snap["audit_ids"].tolist() == audit_ids  # the conflict has no final label: not counted
    assert snap["audit_all_ids"].tolist() == sorted([*audit_ids, conflict])
    assert not set(audit_ids) & set(snap["train_ids"].tolist()) and conflict not in snap["train_ids"]

    result = run_round(bbc.engine, bbc.settings, project="bbc")
    assert result.labels_used == 40  # no serving order reached them (no item was served by priority)
    with reading(bbc.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        scored = set(conn.execute(select(item_scores.c.item_id).where(item_scores.c.run_id == run.id)).scalars())
        due = store_runs.round_due(conn, project=project, min_new_labels=1)
    assert set(audit_ids) <= scored  # scored, to see whether the next order reaches them
    assert run.metrics["audit_reached"] == []
    assert due is None  # audit labels were counted when the round started
    assert run.metrics["human_labels"] == 40 + len(audit_ids)
    cy = bbc.user("cy")
    with writing(bbc.engine) as conn:  # labelled, so never served, whatever their priority
        served = store_queue.next_item(conn, project=bbc.project(), user_id=cy, lease_seconds=60)
    assert served.item_id not in audit_ids

    # By hand: the saved model's predictions on the audit items against their labels.
    pipeline = joblib.load(run.path)["pipeline"]
    given = dict(audited)
    proba = pipeline.predict_proba(texts(bbc.engine, audit_ids))
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    correct = int(sum(p == given[i] for p, i in zip(predicted, audit_ids)))
    audit = run.metrics["audit"]
    assert (audit["labelled"], audit["correct"]) == (len(audit_ids), correct)
    assert audit["accuracy"] == correct / len(audit_ids)
    ci = binomtest(correct, len(audit_ids)).proportion_ci(confidence_level=0.95, method="wilsoncc")
    assert audit["ci95"] == [ci.low, ci.high]
    assert 0 < correct < len(audit_ids)  # the wrong labels cost something

    # The stop set: every item here (fewer than 1,000), with the model's predicted tag ids.
    tag_id = {t.name: t.id for t in project.tags}
    stop = run.metrics["stop_set"]
    assert stop["ids"] == sorted(bbc.truth)
    stop_pred = pipeline.classes_[pipeline.predict_proba(texts(bbc.engine, stop["ids"])).argmax(axis=1)]
    assert stop["tags"] == [tag_id[t] for t in stop_pred]
    assert run.metrics["stability"]["previous_version"] == 1
    assert run.metrics["advice"]["stop"] is False
    assert result.audit == audit and result.advice == run.metrics["advice"]


def test_audit_items_the_serving_order_reaches_join_the_training_set(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    _, audited = label_audit_items(bbc, 30)
    second = run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        priority = {i: p for i, p in conn.execute(select(item_scores.c.item_id, item_scores.c.priority)
                                                  .where(item_scores.c.run_id == second.run_id))}
    served = claim_and_label(bbc, bbc.user("dee"), 12, audit_fraction=0.0)  # by priority, under version 2
    audit_ids = {i for i, _ in audited}
    # By hand: the 12th best item that is not an audit item marks how deep the queue went.
    watermark = sorted((p for i, p in priority.items() if i not in audit_ids), reverse=True)[11]
    assert {i for i, _, _ in served} == {i for i, p in priority.items() if p >= watermark and i not in audit_ids}
    reached = sorted(i for i in audit_ids if priority[i] >= watermark)
    assert 0 < len(reached) < len(audit_ids)
    third = run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        run = store_runs.get_run(conn, run_id=third.run_id)
        superseded = store_runs.get_run(conn, run_id=second.run_id)
    assert run.metrics["audit_reached"] == reached
    assert "audit_reached" not in superseded.metrics and superseded.metrics["audit"] is not None  # stored once
    assert third.labels_used == 40 + len(reached) + 12
    assert run.metrics["audit"]["labelled"] == len(audit_ids) - len(reached)
    # The held-out ones are what the model left alone: on average easier than what it reached.
    assert max(priority[i] for i in audit_ids - set(reached)) < min(priority[i] for i in reached)


def test_audit_labels_before_any_version_are_training_labels(bbc):
    claim_and_label(bbc, bbc.user("ann"), 10, audit_fraction=1.0)
    result = run_round(bbc.engine, bbc.settings, project="bbc")
    assert result.labels_used == 50 and result.audit["labelled"] == 0


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
