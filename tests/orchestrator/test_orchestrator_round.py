"""A round against a real database: model file, registry row, scores, the switch, the queue."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib
import numpy as np
import pytest
from sqlalchemy import func, select

from labelloop.orchestrator import RoundHooks, run_round
from labelloop.store import reading, writing
from labelloop.store import queue as store_queue
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store.schema import item_scores, items

from orch_helpers import TAGS, make_bbc


def scores_of(engine, run_id: int) -> dict[int, tuple[float, int | None, float | None]]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(item_scores.c.item_id, item_scores.c.priority, item_scores.c.predicted_tag_id,
                   item_scores.c.confidence).where(item_scores.c.run_id == run_id)
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def texts_of(engine, ids: list[int]) -> list[str]:
    with reading(engine) as conn:
        found = dict(conn.execute(select(items.c.id, items.c.text).where(items.c.id.in_(ids))).all())
    return [found[i] for i in ids]


def test_round_saves_a_model_registers_it_and_scores_every_unlabelled_item(bbc):
    result = run_round(bbc.engine, bbc.settings, project="bbc")
    assert (result.status, result.state, result.version, result.labels_used) == ("complete", "model", 1, 40)
    assert set(result.timings) >= {"snapshot", "features", "fit", "cv", "predict", "write", "switch", "total"}

    project = bbc.project()
    with reading(bbc.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        model = store_runs.current_model(conn, project_id=project.id)
    assert run.id == result.run_id and run.status == "complete" and run.model_name == "tfidf-logreg"
    assert run.strategy == "margin" and run.labels_used == 40
    assert 0.0 <= run.cv["accuracy"] <= 1.0 and 0.0 <= run.cv["macro_f1"] <= 1.0
    assert run.metrics["labels"] == {t: 8 for t in TAGS} or sum(run.metrics["labels"].values()) == 40
    assert model["version"] == 1 and model["path"] == run.path and model["cv"]["accuracy"] == run.cv["accuracy"]

    # The file: <UTC time>_<macro-F1>.joblib under models_dir/<project>, a pipeline on raw text.
    path = Path(run.path)
    assert path.parent == bbc.settings.models_dir / "bbc"
    stamp, f1 = path.stem.split("_")
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%SZ") and f1 == f"{run.cv['macro_f1']:.4f}"
    bundle = joblib.load(path)
    assert bundle["metadata"]["version"] == 1 and bundle["metadata"]["labels_used"] == 40

    # One score row per unlabelled item, none for labelled ones; predictions are the file's.
    unlabelled = sorted(set(bbc.truth) - bbc.labelled)
    scores = scores_of(bbc.engine, run.id)
    assert sorted(scores) == unlabelled
    tag_name = {t.id: t.name for t in project.tags}
    sample = unlabelled[:25]
    proba = bundle["pipeline"].predict_proba(texts_of(bbc.engine, sample))
    predicted = bundle["pipeline"].classes_[proba.argmax(axis=1)]
    assert [tag_name[scores[i][1]] for i in sample] == list(predicted)
    assert np.allclose([scores[i][2] for i in sample], proba.max(axis=1))
    # The model learned something: better than always guessing one topic (about 0.3 here).
    accuracy = np.mean([tag_name[scores[i][1]] == bbc.truth[i] for i in unlabelled])
    assert accuracy > 0.5
    # Priorities are a strict order.
    assert len({p for p, _, _ in scores.values()}) == len(scores)


def test_the_queue_serves_the_highest_priority_items(bbc):
    result = run_round(bbc.engine, bbc.settings, project="bbc")
    ranked = sorted(scores_of(bbc.engine, result.run_id).items(), key=lambda kv: -kv[1][0])
    project = bbc.project()
    served = []
    for name in ("ann", "bob", "cy"):
        uid = bbc.user(name)
        with writing(bbc.engine) as conn:
            served.append(store_queue.next_item(conn, project=project, user_id=uid, lease_seconds=60).item_id)
    assert served == [item_id for item_id, _ in ranked[:3]]


def test_a_second_round_switches_atomically_and_drops_the_old_scores(bbc):
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    second = run_round(bbc.engine, bbc.settings, project="bbc")
    assert second.version == 2 and second.features == "cached"
    project = bbc.project()
    assert project.current_run_id == second.run_id
    with reading(bbc.engine) as conn:
        assert store_scores.count_scores(conn, run_id=first.run_id) == 0
        assert store_scores.count_scores(conn, run_id=second.run_id) == len(bbc.truth) - len(bbc.labelled)
        assert [r.status for r in store_runs.list_runs(conn, project_id=project.id)] == ["complete", "complete"]


def test_not_enough_labels_serves_a_diverse_cold_start_order(engine, settings):
    bbc = make_bbc(engine, settings, labelled=40, only_tag="sports")
    result = run_round(engine, settings, project="bbc")
    assert (result.status, result.state, result.path) == ("complete", "not_enough_labels", None)
    assert "not enough labels yet" in result.message and "sports" in result.message
    project = bbc.project()
    with reading(engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        assert store_runs.current_model(conn, project_id=project.id) is None
    assert run.status == "complete" and run.metrics["state"] == "not_enough_labels" and run.path is None
    assert not list(settings.models_dir.glob("bbc/*.joblib"))
    scores = scores_of(engine, run.id)
    assert sorted(scores) == sorted(set(bbc.truth) - bbc.labelled)
    assert all(pred is None and conf is None for _, pred, conf in scores.values())
    head = [i for i, _ in sorted(scores.items(), key=lambda kv: -kv[1][0])[:15]]
    assert head != sorted(head)  # not file order
    assert len({bbc.truth[i] for i in head}) >= 3  # spread over the topics


def test_no_labels_at_all_is_not_an_error(engine, settings):
    make_bbc(engine, settings, n=60, labelled=0)
    result = run_round(engine, settings, project="bbc")
    assert result.state == "not_enough_labels" and "no item is labelled" in result.message
    assert result.scored == 60


def test_keeps_only_the_last_n_model_files(bbc):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    results = [run_round(bbc.engine, bbc.settings, project="bbc", now=start + timedelta(minutes=k)) for k in range(3)]
    files = sorted(p.name for p in (bbc.settings.models_dir / "bbc").glob("*.joblib"))
    assert len(files) == 2 == bbc.settings.keep_models
    assert files[0].startswith("20260101T000100Z_") and files[1].startswith("20260101T000200Z_")
    assert Path(results[-1].path).exists() and not Path(results[0].path).exists()


@pytest.mark.parametrize("how", ["error", "stop"])
def test_a_round_failing_midway_leaves_the_previous_version_serving(bbc, monkeypatch, how):
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    served_before = sorted(scores_of(bbc.engine, first.run_id).items(), key=lambda kv: -kv[1][0])[:5]
    monkeypatch.setattr(store_scores, "SQLITE_CHUNK_ROWS", 30)
    monkeypatch.setattr(store_scores, "POSTGRES_CHUNK_ROWS", 30)
    stop = threading.Event()
    chunks = []

    def after_chunk(written: int, total: int) -> None:
        chunks.append(written)
        if len(chunks) == 2:
            if how == "error":
                raise RuntimeError("disk full (simulated)")
            stop.set()

    if how == "error":
        with pytest.raises(RuntimeError, match="disk full"):
            run_round(bbc.engine, bbc.settings, project="bbc", hooks=RoundHooks(after_chunk=after_chunk))
    else:
        result = run_round(bbc.engine, bbc.settings, project="bbc", stop=stop,
                           hooks=RoundHooks(after_chunk=after_chunk))
        assert result.status == "abandoned" and result.version == 2
    assert chunks == [30, 60]  # rows were committed before the failure
    project = bbc.project()
    assert project.current_run_id == first.run_id
    with reading(bbc.engine) as conn:
        failed = store_runs.list_runs(conn, project_id=project.id)[0]
        leftover = conn.execute(select(func.count()).where(item_scores.c.run_id == failed.id)).scalar_one()
    assert failed.version == 2 and failed.status == "failed" and leftover == 0
    assert ("disk full" if how == "error" else "abandoned") in failed.error
    assert not Path(failed.path).exists()  # its model file is gone too
    assert sorted(p.name for p in (bbc.settings.models_dir / "bbc").glob("*.joblib")) == [Path(first.path).name]
    uid = bbc.user("ann")
    with writing(bbc.engine) as conn:
        lease = store_queue.next_item(conn, project=project, user_id=uid, lease_seconds=60)
    assert lease.item_id == served_before[0][0]


def test_an_unknown_model_is_rejected_before_anything_is_written(bbc):
    from labelloop.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown model 'nope'"):
        run_round(bbc.engine, bbc.settings, project="bbc", model="nope")
    with pytest.raises(InvalidInputError, match="unknown query strategy"):
        run_round(bbc.engine, bbc.settings, project="bbc", strategy="psychic")
    with reading(bbc.engine) as conn:
        assert store_runs.list_runs(conn, project_id=bbc.project().id) == []


def test_dense_embedding_features_work_the_same_way(bbc):
    pytest.importorskip("wordllama")
    result = run_round(bbc.engine, bbc.settings, project="bbc", model="embed-logreg")
    assert (result.status, result.state) == ("complete", "model")
    manifest = (bbc.settings.models_dir / "bbc" / "features" / "embed" / "manifest.json").read_text()
    assert '"kind": "dense"' in manifest
    scores = scores_of(bbc.engine, result.run_id)
    assert sorted(scores) == sorted(set(bbc.truth) - bbc.labelled)
    bundle = joblib.load(result.path)
    unlabelled = sorted(scores)[:10]
    predicted = bundle["pipeline"].predict(texts_of(bbc.engine, unlabelled))
    tag_name = {t.id: t.name for t in bbc.project().tags}
    assert [tag_name[scores[i][1]] for i in unlabelled] == list(predicted)
