"""Multi-label rounds: the learn side without a database (compute_round on label sets), and
rounds of a multi-label project on SQLite and PostgreSQL (sets in; thresholds, per-tag figures,
predicted sets and probabilities out; audit, stability, the queue)."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select, update

from labelloop.errors import InvalidInputError
from labelloop.orchestrator import compute_round, run_round
from labelloop.orchestrator.loop import Waits, _due
from labelloop.store import queue as store_queue
from labelloop.store import reading, writing
from labelloop.store import runs as store_runs
from labelloop.store.schema import item_scores, items, tags

from sets_helpers import SET_TAGS, make_debian, set_label


@pytest.fixture
def deb(engine, settings):
    return make_debian(engine, settings)


def texts_of(engine, ids: list[int]) -> list[str]:
    with reading(engine) as conn:
        found = dict(conn.execute(select(items.c.id, items.c.text).where(items.c.id.in_(ids))).all())
    return [found[i] for i in ids]


def synthetic(n: int = 300, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Features 0-2 switch tags a-c on (each item has 0-3 tags), plus noise features."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < [0.5, 0.3, 0.1]).astype(np.int8)
    X = np.hstack([Y * 2.0, rng.random((n, 20)) * 0.5])
    return sp.csr_matrix(X), Y


def test_multi_label_rounds_fit_tags_with_an_intercept():
    X, Y = synthetic()
    out = compute_round(X, np.arange(100), Y[:100], model="tfidf-logreg", strategy="max_uncertainty", seed=0)
    fitted = [est for est in out.classifier.estimators_ if not isinstance(est, float)]
    assert fitted and all(est.fit_intercept and est.solver == "liblinear" for est in fitted)
    assert out.proba.shape == (200, 3) and out.proba.dtype == np.float32
    assert out.thresholds.shape == (3,)


# ---------------------------------------------------------------------------------------------
# A round against a real database (SQLite and PostgreSQL)


def set_scores(engine, run_id: int) -> dict[int, tuple[float, float, int, bytes, int | None]]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(item_scores.c.item_id, item_scores.c.priority, item_scores.c.confidence,
                   item_scores.c.predicted_mask, item_scores.c.proba, item_scores.c.predicted_tag_id)
            .where(item_scores.c.run_id == run_id)
        ).all()
    return {r[0]: (r[1], r[2], r[3], None if r[4] is None else bytes(r[4]), r[5]) for r in rows}


def test_a_round_on_label_sets_records_thresholds_per_tag_figures_and_sets(deb):
    result = run_round(deb.engine, deb.settings, project="deb")
    assert (result.status, result.state, result.labels_used) == ("complete", "model", 60)
    project = deb.project()
    with reading(deb.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
    m = run.metrics
    assert run.strategy == "max_uncertainty"  # a multi-label project's default, not the single-label one
    assert m["multi_label"] is True and m["tags"] == SET_TAGS
    assert m["bits"] == [project.tag_bits[t] for t in SET_TAGS]
    assert set(m["thresholds"]) == set(SET_TAGS) and all(0 < t < 1 for t in m["thresholds"].values())
    cv = m["cv"]
    assert cv["folds"] == 5 and cv["n_labels"] == 60 and cv["labels"] == SET_TAGS
    assert set(cv["per_tag"]) == set(SET_TAGS) and {"precision", "recall", "f1", "support"} <= set(cv["per_tag"]["interface::x11"])
    for name in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"):
        lo, hi = cv["ci95"][name]
        assert lo <= cv[name] <= hi and m[name] == cv[name]
    assert cv["accuracy"] == cv["subset_accuracy"] and cv["micro_f1"] > 0.3
    truth_sets = [deb.truth[i] for i in deb.labelled]
    assert m["labels"] == {t: sum(t in s for s in truth_sets) for t in SET_TAGS}
    assert m["empty_sets"] == sum(not s for s in truth_sets)
    model = store_runs.current_model  # status --json reads cv accuracy/macro_f1 of any run
    with reading(deb.engine) as conn:
        assert model(conn, project_id=project.id)["cv"]["accuracy"] == cv["subset_accuracy"]

    # The model file predicts each tag's probability; the score rows hold them and the sets.
    bundle = joblib.load(run.path)
    assert bundle["metadata"]["tags"] == SET_TAGS and bundle["metadata"]["thresholds"] == m["thresholds"]
    scores = set_scores(deb.engine, run.id)
    unlabelled = sorted(set(deb.truth) - deb.labelled)
    assert sorted(scores) == unlabelled
    sample = unlabelled[:20]
    expected = bundle["pipeline"].predict_proba(texts_of(deb.engine, sample))
    thresholds = np.array([m["thresholds"][t] for t in SET_TAGS])
    bits = np.array(m["bits"])
    for i, row in zip(sample, expected):
        _, confidence, mask, blob, tag_id = scores[i]
        proba = np.frombuffer(blob, dtype="<f4")
        assert tag_id is None and proba.shape == (6,) and np.allclose(proba, row, atol=1e-6)
        assert mask == int(sum(1 << int(b) for b, p, t in zip(bits, proba, thresholds) if p >= t))
        span = np.where(proba >= thresholds, 1 - thresholds, thresholds)
        assert confidence == pytest.approx(float(np.min(np.abs(proba - thresholds) / span)), abs=1e-6)
    # The model learned each tag it saw a few times (works-with::text has 4 of 60: not yet):
    # the tag's probability is higher on the items that have it.
    proba = np.array([np.frombuffer(scores[i][3], dtype="<f4") for i in unlabelled])
    true = np.array([[t in deb.truth[i] for t in SET_TAGS] for i in unlabelled])
    learned = [j for j, tag in enumerate(SET_TAGS) if m["labels"][tag] >= 6]
    assert len(learned) == 5
    for j in learned:
        assert proba[true[:, j], j].mean() > proba[~true[:, j], j].mean(), SET_TAGS[j]

    # The queue serves the new order: highest priority first.
    ranked = sorted(scores, key=lambda i: -scores[i][0])
    uid = deb.user("ann")
    with writing(deb.engine) as conn:
        served = store_queue.next_item(conn, project=deb.project(), user_id=uid, lease_seconds=60).item_id
    assert served == ranked[0]


def test_single_label_strategy_names_are_refused_on_label_sets(deb):
    with pytest.raises(InvalidInputError, match="multi-label: its query strategy must be one of max_uncertainty"):
        run_round(deb.engine, deb.settings, project="deb", strategy="margin")
    result = run_round(deb.engine, deb.settings, project="deb", strategy="mean_uncertainty")
    assert result.state == "model"


def test_a_second_round_compares_predicted_sets_and_new_sets_make_a_round_due(deb):
    first = run_round(deb.engine, deb.settings, project="deb")
    project = deb.project()
    assert _due(deb.engine, "deb", None, Waits()) is None
    for item_id in sorted(set(deb.truth) - deb.labelled)[:10]:  # ten new sets
        set_label(deb.engine, project_id=project.id, item_id=item_id, mask=deb.mask(deb.truth[item_id]))
    assert _due(deb.engine, "deb", None, Waits()) == "10 new labels"
    second = run_round(deb.engine, deb.settings, project="deb")
    with reading(deb.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        before = store_runs.get_run(conn, run_id=first.run_id)
    assert second.labels_used == 70 and run.metrics["human_labels"] == 70
    stop = run.metrics["stop_set"]
    assert stop["ids"] == sorted(deb.truth) and len(stop["masks"]) == len(deb.truth)
    stability = run.metrics["stability"]
    assert stability["previous_version"] == 1 and stability["compared"] == len(deb.truth)
    bits = before.metrics["bits"]
    old = np.array([[m >> b & 1 for b in bits] for m in before.metrics["stop_set"]["masks"]]).ravel()
    new = np.array([[m >> b & 1 for b in bits] for m in stop["masks"]]).ravel()
    assert stability["kappa"] == pytest.approx(cohen_kappa_score(old, new))
    assert run.metrics["advice"]["stop"] is False and "audit items" in run.metrics["advice"]["message"]
    assert _due(deb.engine, "deb", None, Waits()) is None


def test_audit_sets_are_held_out_and_scored_with_intervals(deb):
    run_round(deb.engine, deb.settings, project="deb")
    project = deb.project()
    audit_ids = sorted(set(deb.truth) - deb.labelled)[-40:]
    for item_id in audit_ids:
        set_label(deb.engine, project_id=project.id, item_id=item_id, mask=deb.mask(deb.truth[item_id]), audit=True)
    result = run_round(deb.engine, deb.settings, project="deb")
    assert result.labels_used == 60  # held out
    with reading(deb.engine) as conn:
        run = store_runs.current_run(conn, project_id=project.id)
        scored = set(conn.execute(select(item_scores.c.item_id).where(item_scores.c.run_id == run.id)).scalars())
    assert set(audit_ids) <= scored
    audit = run.metrics["audit"]
    bundle = joblib.load(run.path)
    thresholds = np.array([run.metrics["thresholds"][t] for t in SET_TAGS])
    predicted = (bundle["pipeline"].predict_proba(texts_of(deb.engine, audit_ids)) >= thresholds).astype(int)
    true = np.array([[t in deb.truth[i] for t in SET_TAGS] for i in audit_ids], dtype=int)
    exact = int((predicted == true).all(axis=1).sum())
    assert (audit["labelled"], audit["correct"]) == (40, exact)
    assert audit["accuracy"] == audit["subset_accuracy"] == exact / 40
    ci = binomtest(exact, 40).proportion_ci(confidence_level=0.95, method="wilsoncc")
    assert audit["ci95"] == [pytest.approx(ci.low), pytest.approx(ci.high)]
    assert audit["micro_f1"] == pytest.approx(2 * (predicted & true).sum() / (predicted.sum() + true.sum()))
    for name in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"):
        lo, hi = audit["intervals"][name]
        assert lo <= audit[name] <= hi
    assert set(audit["per_tag"]) == set(SET_TAGS)
    assert result.audit == audit
    with reading(deb.engine) as conn:  # the readers of every run's audit read it as usual
        assert store_runs.quality_summary(conn, project_id=project.id)["audit"]["accuracy"] == exact / 40


def test_retired_tags_leave_the_model(deb):
    with writing(deb.engine) as conn:
        conn.execute(update(tags).where(tags.c.name == "works-with::text").values(retired=True))
    result = run_round(deb.engine, deb.settings, project="deb")
    with reading(deb.engine) as conn:
        run = store_runs.current_run(conn, project_id=deb.project().id)
    assert result.state == "model" and run.metrics["tags"] == SET_TAGS[:5]
    blob = set_scores(deb.engine, run.id)
    assert all(len(v[3]) == 4 * 5 for v in blob.values())


def test_too_few_sets_serve_a_cold_start_order(engine, settings):
    deb = make_debian(engine, settings, n=40, labelled=1)
    result = run_round(deb.engine, deb.settings, project="deb")
    assert result.state == "not_enough_labels" and "same answer" in result.message
    scores = set_scores(deb.engine, result.run_id)
    assert len(scores) == 39 and all(v[1:] == (None, None, None, None) for v in scores.values())
