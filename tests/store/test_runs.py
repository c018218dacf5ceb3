"""The model-run registry, bulk score writes, the atomic switch, recovery and the lock row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select, update

from labelloop.errors import ConflictError
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store.items import rand_key
from labelloop.store.schema import item_scores, items, score_ranks

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def project(engine):
    with writing(engine) as conn:
        proj = store_projects.create_project(conn, name="p", labels=["a", "b"], seed=3)
        conn.execute(
            insert(items),
            [
                {"project_id": proj.id, "external_id": f"x{i}", "display": {"t": str(i)}, "text": f"text {i}",
                 "rand": rand_key(3, f"x{i}"), "created_at": T0, "updated_at": T0}
                for i in range(50)
            ],
        )
    return proj


def item_ids(engine, project) -> np.ndarray:
    with reading(engine) as conn:
        return np.array(sorted(conn.execute(select(items.c.id).where(items.c.project_id == project.id)).scalars()))


def label(engine, ids, tag_id, *, source="human", target=None) -> None:
    values = {"label_tag_id": tag_id, "label_source": source, "n_labels": 1}
    if target is not None:
        values["target_labels"] = target
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id.in_([int(i) for i in ids])).values(**values))


def start(engine, project, labels_used=0, now=T0):
    with writing(engine) as conn:
        return store_runs.start_run(conn, project_id=project.id, model_name="m", strategy="margin",
                                    labels_used=labels_used, now=now)


def test_versions_count_up_and_the_switch_moves_the_current_run(engine, project):
    first = start(engine, project)
    second = start(engine, project)
    assert (first.version, second.version, first.status) == (1, 2, "running")
    with writing(engine) as conn:
        assert store_runs.switch_to_run(conn, project_id=project.id, run_id=first.id,
                                        metrics={"state": "model", "cv": None}, path="/m/1") is None
    with writing(engine) as conn:
        previous = store_runs.switch_to_run(conn, project_id=project.id, run_id=second.id,
                                            metrics={"state": "model", "cv": {"accuracy": 0.5, "macro_f1": 0.4}},
                                            path="/m/2")
    assert previous.id == first.id
    with reading(engine) as conn:
        current = store_runs.current_run(conn, project_id=project.id)
        model = store_runs.current_model(conn, project_id=project.id)
        history = store_runs.list_runs(conn, project_id=project.id)
    assert current.id == second.id and current.status == "complete" and current.finished_at is not None
    assert model == {"version": 2, "created_at": T0.isoformat(), "labels_used": 0,
                     "cv": {"accuracy": 0.5, "macro_f1": 0.4}, "path": "/m/2"}
    assert [r.version for r in history] == [2, 1]


def test_a_failed_run_cannot_be_switched_to(engine, project):
    run = start(engine, project)
    with writing(engine) as conn:
        store_runs.fail_run(conn, run_id=run.id, error="boom")
    with pytest.raises(ConflictError, match="no longer running"), writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics={}, path=None)
    with reading(engine) as conn:
        assert store_runs.current_run(conn, project_id=project.id) is None
        assert store_runs.get_run(conn, run_id=run.id).error == "boom"


def test_cold_start_runs_are_not_a_model(engine, project):
    run = start(engine, project)
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id,
                                 metrics={"state": "not_enough_labels", "cv": None}, path=None)
    with reading(engine) as conn:
        assert store_runs.current_run(conn, project_id=project.id).id == run.id
        assert store_runs.current_model(conn, project_id=project.id) is None


@pytest.mark.parametrize("with_predictions", [True, False])
def test_scores_are_written_in_chunks_and_read_back_exactly(engine, project, with_predictions):
    ids = item_ids(engine, project)
    run = start(engine, project)
    rng = np.random.default_rng(0)
    prio = rng.permutation(len(ids)).astype(np.float64) + 0.25
    pred = np.where(np.arange(len(ids)) % 2 == 0, project.tags[0].id, project.tags[1].id)
    conf = rng.random(len(ids))
    seen = []
    written = store_scores.write_scores(
        engine, run_id=run.id, item_ids=ids, priorities=prio,
        predicted_tag_ids=pred if with_predictions else None, confidences=conf if with_predictions else None,
        chunk_rows=7, after_chunk=lambda done, total: seen.append((done, total)),
    )
    assert written == len(ids) and seen[0] == (7, 50) and seen[-1] == (50, 50) and len(seen) == 8
    with reading(engine) as conn:
        rows = conn.execute(
            select(item_scores.c.item_id, item_scores.c.priority, item_scores.c.predicted_tag_id,
                   item_scores.c.confidence).where(item_scores.c.run_id == run.id).order_by(item_scores.c.item_id)
        ).all()
    assert [r[0] for r in rows] == ids.tolist()
    assert [r[1] for r in rows] == prio.tolist()
    if with_predictions:
        assert [r[2] for r in rows] == pred.tolist() and [r[3] for r in rows] == conf.tolist()
    else:
        assert all(r[2] is None and r[3] is None for r in rows)
    # The queue preview shows the top priorities first; only the current run's rows are others'.
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics={"state": "model"}, path=None)
        preview = store_scores.queue_preview(conn, project=project, run_id=run.id, limit=3)
    assert [p["priority"] for p in preview] == sorted(prio.tolist(), reverse=True)[:3]
    assert preview[0]["predicted"] == (project.tag_name(int(pred[np.argmax(prio)])) if with_predictions else None)


def serving_order(engine, run_id: int) -> list[tuple[int, int, float]]:
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(score_ranks.c.rank, score_ranks.c.item_id, score_ranks.c.priority)
            .where(score_ranks.c.run_id == run_id).order_by(score_ranks.c.rank))]


def test_serving_order_is_by_priority_then_item_id_whatever_the_input_order(engine, project):
    ids = item_ids(engine, project)
    rng = np.random.default_rng(5)
    shuffled = rng.permutation(ids)
    prio = rng.choice([0.1, 0.5, 0.9], size=len(ids))  # many ties
    expected = [(rank, int(i), float(p)) for rank, (p, i) in
                enumerate(sorted(zip(prio.tolist(), shuffled.tolist()), key=lambda t: (-t[0], t[1])))]
    chunked, small = start(engine, project), start(engine, project)
    store_scores.write_scores(engine, run_id=chunked.id, item_ids=shuffled, priorities=prio, chunk_rows=6)
    with writing(engine) as conn:  # the in-transaction writer gives the same rows
        store_scores.insert_scores(conn, run_id=small.id, item_ids=shuffled.tolist(), priorities=prio.tolist())
    assert serving_order(engine, chunked.id) == expected == serving_order(engine, small.id)
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=chunked.id, metrics={}, path=None)
        project = store_projects.get_project(conn, name="p")
        preview = store_scores.queue_preview(conn, project=project, run_id=chunked.id, limit=len(ids))
    assert [p["item_id"] for p in preview] == [i for _, i, _ in expected]


def test_deleting_scores_in_chunks_removes_only_that_run(engine, project):
    ids = item_ids(engine, project)
    keep, drop = start(engine, project), start(engine, project)
    for run in (keep, drop):
        store_scores.write_scores(engine, run_id=run.id, item_ids=ids, priorities=np.arange(len(ids), dtype=float))
    before = serving_order(engine, keep.id)
    assert store_scores.delete_scores(engine, run_ids=[drop.id], chunk_rows=8) == len(ids)
    with reading(engine) as conn:
        assert store_scores.count_scores(conn, run_id=drop.id) == 0
        assert store_scores.count_scores(conn, run_id=keep.id) == len(ids)
    assert serving_order(engine, drop.id) == [] and serving_order(engine, keep.id) == before
    assert len(before) == len(ids)


def test_deleting_a_partly_written_run(engine, project):
    """An abandoned write leaves the first chunks of both tables: they go too."""
    ids = item_ids(engine, project)
    run = start(engine, project)

    def stop_after_two(done: int, total: int) -> None:
        if done >= 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store_scores.write_scores(engine, run_id=run.id, item_ids=ids, priorities=np.arange(len(ids), dtype=float),
                                  chunk_rows=7, after_chunk=stop_after_two)
    with reading(engine) as conn:
        assert 14 <= store_scores.count_scores(conn, run_id=run.id) < len(ids)
    assert 14 <= len(serving_order(engine, run.id)) < len(ids)
    store_scores.delete_scores(engine, run_ids=[run.id], chunk_rows=5)
    with reading(engine) as conn:
        assert store_scores.count_scores(conn, run_id=run.id) == 0
    assert serving_order(engine, run.id) == []


def test_interrupted_runs_and_stale_scores_are_found(engine, project):
    ids = item_ids(engine, project)
    old, current, crashed = start(engine, project), start(engine, project), start(engine, project)
    for run in (old, current, crashed):
        store_scores.write_scores(engine, run_id=run.id, item_ids=ids[:10], priorities=np.arange(10.0))
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=old.id, metrics={}, path=None)
        store_runs.switch_to_run(conn, project_id=project.id, run_id=current.id, metrics={}, path=None)
    with reading(engine) as conn:
        assert store_runs.interrupted_runs(conn, project_id=project.id) == [crashed.id]
        # running runs are never "stale": their owner may still be writing
        assert store_runs.runs_with_stale_scores(conn, project_id=project.id) == [old.id]


def test_label_snapshot_takes_human_labels_and_excludes_conflicts(engine, project):
    ids = item_ids(engine, project)
    a, b = project.tags[0].id, project.tags[1].id
    label(engine, ids[:5], a)
    label(engine, ids[5:8], b, target=2)  # labelled once, wanted twice: trained on AND scored
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == int(ids[8])).values(label_source="conflict", n_labels=2,
                                                                            target_labels=2))
    with reading(engine) as conn:
        snap = store_runs.label_snapshot(conn, project_id=project.id)
        assert store_runs.count_human_labels(conn, project_id=project.id) == 8
    assert snap["train_ids"].tolist() == ids[:8].tolist()
    assert snap["train_tags"].tolist() == [a] * 5 + [b] * 3
    assert snap["closed_ids"].tolist() == ids[:5].tolist()


def test_round_due_reasons(engine, project):
    ids = item_ids(engine, project)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name="p")
        assert store_runs.round_due(conn, project=proj, min_new_labels=3) == "no version yet"
    run = start(engine, project, labels_used=0, now=T0)
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics={"items_total": 50}, path=None)
    with reading(engine) as conn:
        assert store_runs.round_due(conn, project=proj, min_new_labels=3) is None
    label(engine, ids[:2], project.tags[0].id)
    with reading(engine) as conn:
        assert store_runs.round_due(conn, project=proj, min_new_labels=3) is None
    label(engine, ids[2:3], project.tags[0].id)
    with reading(engine) as conn:
        assert store_runs.round_due(conn, project=proj, min_new_labels=3) == "3 new labels"
    with writing(engine) as conn:
        store_runs.request_retrain(conn, project_id=project.id, now=T0 + timedelta(seconds=1))
        assert store_runs.round_due(conn, project=proj, min_new_labels=100) == "retrain requested"
        store_runs.request_retrain(conn, project_id=project.id, now=T0 - timedelta(seconds=1))  # older than the run
        assert store_runs.round_due(conn, project=proj, min_new_labels=100) is None
        conn.execute(insert(items).values(project_id=project.id, external_id="new", display={}, text="t",
                                          rand=1, created_at=T0, updated_at=T0))
        assert store_runs.round_due(conn, project=proj, min_new_labels=100) == "+1 items since version 1"


def test_the_lock_row_is_exclusive_until_stale(engine, project):
    with writing(engine) as conn:
        assert store_runs.claim_lock_row(conn, project_id=project.id, holder="A", stale_after=30, now=T0) is None
    with writing(engine) as conn:
        owner = store_runs.claim_lock_row(conn, project_id=project.id, holder="B", stale_after=30,
                                          now=T0 + timedelta(seconds=20))
    assert owner == ("A", T0)
    with writing(engine) as conn:  # A keeps beating
        assert store_runs.heartbeat_lock_row(conn, project_id=project.id, holder="A", now=T0 + timedelta(seconds=25))
        assert store_runs.claim_lock_row(conn, project_id=project.id, holder="B", stale_after=30,
                                         now=T0 + timedelta(seconds=50)) is not None
    with writing(engine) as conn:  # A went silent for more than 30 s: B takes over
        assert store_runs.claim_lock_row(conn, project_id=project.id, holder="B", stale_after=30,
                                         now=T0 + timedelta(seconds=56)) is None
        assert not store_runs.heartbeat_lock_row(conn, project_id=project.id, holder="A")
        assert store_runs.holds_lock_row(conn, project_id=project.id, holder="B")
        store_runs.release_lock_row(conn, project_id=project.id, holder="A")  # not A's: no effect
        assert store_runs.lock_holder(conn, project_id=project.id)[0] == "B"
        store_runs.release_lock_row(conn, project_id=project.id, holder="B")
        assert store_runs.lock_holder(conn, project_id=project.id) is None


def test_stop_set_is_the_largest_rand_keys_and_recent_model_runs_skip_cold_starts(engine, project):
    with reading(engine) as conn:
        rows = conn.execute(select(items.c.id, items.c.rand).where(items.c.project_id == project.id)).all()
        stop = store_runs.stop_set_ids(conn, project_id=project.id, size=10)
    assert stop.tolist() == sorted(r.id for r in sorted(rows, key=lambda r: -r.rand)[:10])
    states = ["model", "not_enough_labels", "model", "model"]
    for state in states:
        run = start(engine, project)
        with writing(engine) as conn:
            store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics={"state": state}, path=None)
    failed = start(engine, project)
    with writing(engine) as conn:
        store_runs.fail_run(conn, run_id=failed.id, error="boom", metrics={"state": "model"})
        recent = store_runs.recent_model_runs(conn, project_id=project.id, limit=3)
        assert [r.version for r in store_runs.recent_model_runs(conn, project_id=project.id, limit=2)] == [4, 3]
    assert [r.version for r in recent] == [4, 3, 1]


def test_audit_items_reached_by_a_serving_order(engine, project):
    from labelloop.store import users as store_users
    from labelloop.store.schema import assignments

    ids = item_ids(engine, project)
    run = start(engine, project, now=T0)
    store_scores.write_scores(engine, run_id=run.id, item_ids=ids, priorities=np.arange(len(ids), dtype=float))
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics={}, path=None, now=T0)
        run = store_runs.get_run(conn, run_id=run.id)
        user = store_users.create_user(conn, name="u", role="labeller", password="a long password").id
    audit = [int(ids[49]), int(ids[30]), int(ids[5])]  # priorities 49, 30 and 5

    def serve(items_, *, when, is_audit=False):
        with writing(engine) as conn:
            conn.execute(insert(assignments), [
                {"project_id": project.id, "item_id": int(i), "user_id": user, "state": "labelled",
                 "is_audit": is_audit, "leased_at": when, "expires_at": when} for i in items_])

    def reached():
        with reading(engine) as conn:
            return store_runs.audit_items_reached(conn, project_id=project.id, run=run, audit_ids=audit).tolist()

    with reading(engine) as conn:
        assert store_runs.audit_items_reached(conn, project_id=project.id, run=None, audit_ids=audit).tolist() == audit
    assert reached() == []  # nothing served yet under this run
    serve(ids[40:45], when=T0 - timedelta(minutes=1))  # before the run served: not counted
    serve(ids[0:3], when=T0 + timedelta(minutes=1), is_audit=True)  # audit draws: not counted
    assert reached() == []
    serve(ids[45:48], when=T0 + timedelta(minutes=2))  # 3 items served: the 3rd best non-audit is 46
    assert reached() == [int(ids[49])]
    serve(list(ids[31:40]) + list(ids[20:28]), when=T0 + timedelta(minutes=3))  # 20 served: the 20th is 28
    assert reached() == sorted([int(ids[49]), int(ids[30])])


def test_run_quality_reads_the_audit_and_the_advice_defensively(engine, project):
    full = {"state": "model", "audit": {"labelled": 40, "correct": 36, "accuracy": 0.9, "ci95": [0.76, 0.96]},
            "advice": {"stop": True, "message": "enough"}}
    odd = {"state": "model", "audit": {"labelled": "40", "correct": True, "accuracy": None, "ci95": [0.1]},
           "advice": {"stop": "yes", "message": 7}}
    old = {"state": "model", "cv": {"accuracy": 0.8}}  # made before the audit existed
    cold = {"state": "not_enough_labels", "audit": full["audit"], "advice": full["advice"]}
    for metrics in (odd, old, cold, full):
        run = start(engine, project)
        with writing(engine) as conn:
            store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, metrics=metrics, path=None)
    with reading(engine) as conn:
        runs = {r.version: r for r in store_runs.list_runs(conn, project_id=project.id)}
        summary = store_runs.quality_summary(conn, project_id=project.id)
    assert store_runs.run_quality(runs[4]) == {"audit": {"labelled": 40, "correct": 36, "accuracy": 0.9,
                                                         "ci95": [0.76, 0.96]},
                                               "advice": {"stop": True, "message": "enough"}}
    assert summary == {"audit": {"labelled": 40, "accuracy": 0.9, "ci95": [0.76, 0.96]},
                       "advice": {"stop": True, "message": "enough"}}
    assert store_runs.run_quality(runs[1]) == {"audit": {"labelled": 0, "correct": 0, "accuracy": None, "ci95": None},
                                               "advice": {"stop": False, "message": "7"}}
    nothing = {"audit": None, "advice": None}
    assert store_runs.run_quality(runs[2]) == store_runs.run_quality(runs[3]) == store_runs.run_quality(None) == nothing


def test_forget_metrics_drops_only_the_named_keys(engine, project):
    run = start(engine, project)
    with writing(engine) as conn:
        store_runs.switch_to_run(conn, project_id=project.id, run_id=run.id, path=None,
                                 metrics={"state": "model", "audit_reached": [3, 5], "stop_set": {"ids": [1]}})
        done = store_runs.get_run(conn, run_id=run.id)
        store_runs.forget_metrics(conn, run=done, keys=["audit_reached", "absent"])
        store_runs.forget_metrics(conn, run=store_runs.get_run(conn, run_id=run.id), keys=["audit_reached"])
    with reading(engine) as conn:
        assert store_runs.get_run(conn, run_id=run.id).metrics == {"state": "model", "stop_set": {"ids": [1]}}
