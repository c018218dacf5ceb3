"""The likely / unsure / similar lists of a round (issue 13), on SQLite and PostgreSQL:
written by the round, in the right order, served by store/steerlists.py's four queries."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sqlalchemy import func, select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.orchestrator import run_round
from labelloop.orchestrator.compute import RoundOutput
from labelloop.orchestrator.round import feature_cache
from labelloop.orchestrator.steering import tag_lists
from labelloop.store import reading, writing
from labelloop.store import steerlists
from labelloop.store.schema import item_scores, item_vectors, items, model_runs, steer_lists, tags, vector_sets

from orch_helpers import TAGS, make_bbc
from sets_helpers import make_debian


def texts_of(engine, ids):
    with reading(engine) as conn:
        found = dict(conn.execute(select(items.c.id, items.c.text).where(items.c.id.in_(ids))).all())
    return [found[i] for i in ids]


def q(engine, fn, **kw):
    with reading(engine) as conn:
        return fn(conn, **kw)


def test_a_round_writes_likely_and_unsure_lists_in_probability_order(bbc):
    result = run_round(bbc.engine, bbc.settings, project="bbc")
    project = bbc.project()
    unlabelled = sorted(set(bbc.truth) - bbc.labelled)
    proba = joblib.load(result.path)["pipeline"]
    classes = list(proba.classes_)
    P = proba.predict_proba(texts_of(bbc.engine, unlabelled))
    p_of = {i: row for i, row in zip(unlabelled, P)}
    for tag in TAGS:
        j = classes.index(tag)
        likely = q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag=tag, limit=1000)
        unsure = q(bbc.engine, steerlists.unsure_ids, project_id=project.id, tag=tag, limit=1000)
        # every unlabelled item (the pool is smaller than a list), none labelled
        assert sorted(likely) == unlabelled and sorted(unsure) == unlabelled
        p = np.array([p_of[i][j] for i in likely])
        assert np.all(np.diff(p) <= 1e-5), tag  # descending probability of the tag
        margin = np.array([abs(p_of[i][j] - np.delete(p_of[i], j).max()) for i in unsure])
        assert np.all(np.diff(margin) >= -1e-5), tag  # nearest the boundary first
        # the head really is the most probable: the likely list's first items are mostly the tag
        head = likely[:10]
        assert sum(bbc.truth[i] == tag for i in head) >= 7
        assert q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag=tag, limit=5) == likely[:5]
    with reading(bbc.engine) as conn:
        runs = set(conn.execute(select(steer_lists.c.run_id).distinct()).scalars())
    assert runs == {result.run_id}


def test_open_only_drops_labelled_and_finished_items_and_keeps_the_order(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    project = bbc.project()
    likely = q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag="sports", limit=20)
    done, partly = likely[1], likely[3]
    with writing(bbc.engine) as conn:
        conn.execute(update(items).where(items.c.id == done).values(n_labels=items.c.target_labels))
        conn.execute(update(items).where(items.c.id == partly).values(target_labels=2, n_labels=1))
    labelled = sorted(bbc.labelled)[:2]
    asked = list(reversed(likely)) + labelled + [10**9]
    got = q(bbc.engine, steerlists.open_only, project_id=project.id, ids=asked)
    assert got == [i for i in reversed(likely) if i != done]  # partly labelled items stay open
    other = make_bbc(bbc.engine, bbc.settings, n=20, labelled=0, name="other")
    assert q(bbc.engine, steerlists.open_only, project_id=other.project().id, ids=likely) == []
    assert q(bbc.engine, steerlists.open_only, project_id=project.id, ids=[]) == []


def test_no_model_run_answers_nothing_and_an_unknown_tag_is_a_clear_error(bbc):
    project = bbc.project()
    first = min(bbc.truth)
    assert q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag="sports", limit=10) == []
    assert q(bbc.engine, steerlists.unsure_ids, project_id=project.id, tag="sports", limit=10) == []
    assert q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=first, limit=10) == []
    with pytest.raises(InvalidInputError, match="unknown tag 'sprots'.*sports"):
        q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag="sprots", limit=10)
    run_round(bbc.engine, bbc.settings, project="bbc")
    with pytest.raises(InvalidInputError, match="unknown tag"):
        q(bbc.engine, steerlists.unsure_ids, project_id=project.id, tag="nope", limit=10)
    with writing(bbc.engine) as conn:
        conn.execute(update(tags).where(tags.c.project_id == project.id, tags.c.name == "tech").values(retired=True))
    with pytest.raises(InvalidInputError, match="unknown tag 'tech'"):
        q(bbc.engine, steerlists.likely_ids, project_id=project.id, tag="tech", limit=10)
    with pytest.raises(NotFoundError):
        q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=10**9, limit=10)
    with pytest.raises(NotFoundError):
        q(bbc.engine, steerlists.likely_ids, project_id=10**6, tag="sports", limit=10)


def test_a_new_round_replaces_the_lists_and_keeps_unchanged_vectors(bbc):
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        sets_before = list(conn.execute(select(vector_sets.c.id)).scalars())
    second = run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        runs = set(conn.execute(select(steer_lists.c.run_id).distinct()).scalars())
        sets_after = list(conn.execute(select(vector_sets.c.id)).scalars())
    assert runs == {second.run_id} != {first.run_id}
    assert sets_before == sets_after and len(sets_after) == 1  # same features: the same vectors


def test_similar_returns_the_true_cosine_neighbours(engine, settings):
    """50 items: the projection keeps every inner product, so the neighbours are the TF-IDF
    cosine neighbours (float16 vectors: scores within 2e-3)."""
    small = make_bbc(engine, settings, n=50, labelled=20, name="small")
    run_round(engine, settings, project="small")
    project = small.project()
    features, ids, _, _ = feature_cache(settings, project, "tfidf").ensure(engine, project_id=project.id)
    X = features.rows(np.arange(len(ids))).toarray().astype(np.float64)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    cos = X @ X.T
    steerlists.VECTORS.clear()
    for row in (0, 17, 49):
        got = q(engine, steerlists.similar_ids, project_id=project.id, item_id=int(ids[row]), limit=10)
        assert len(got) == 10 and int(ids[row]) not in got
        true = np.delete(cos[row], row)
        best = np.sort(true)[::-1][:10]
        mine = np.array([cos[row, int(np.searchsorted(ids, i))] for i in got])
        assert np.allclose(mine, best, atol=2e-3), (mine, best)
        assert np.all(np.diff(mine) <= 2e-3)


def test_similar_scans_the_stored_vectors_exactly(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    project = bbc.project()
    with reading(bbc.engine) as conn:
        latest = steerlists.latest_vector_set(conn, project_id=project.id)
        ids, V = steerlists.load_vectors(conn, set_id=latest.id)
    assert latest.n_items == len(bbc.truth) == len(ids) and latest.dims == V.shape[1] <= 64
    assert np.allclose(np.linalg.norm(V, axis=1), 1, atol=1e-2)
    for row in (3, 80):
        got = q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=int(ids[row]), limit=15)
        scores = V @ V[row]
        scores[row] = -np.inf
        want = ids[np.lexsort((ids, -scores))[:15]]
        assert got == want.tolist()
    # a topic's neighbours are mostly of the same topic
    same = [np.mean([bbc.truth[j] == bbc.truth[int(i)] for j in
                     q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=int(i), limit=5)])
            for i in ids[:40]]
    assert np.mean(same) > 0.6


def test_new_vectors_reach_the_cache_when_the_features_change(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    project = bbc.project()
    some = min(bbc.truth)
    before = q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=some, limit=5)
    with writing(bbc.engine) as conn:
        old = conn.execute(select(vector_sets.c.id)).scalar_one()
    from labelloop.io import ImportOptions, MappingSource, import_source

    import_source(bbc.engine, project="bbc", settings=bbc.settings,
                  source=MappingSource([{"id": "new-1", "title": "x", "body": "football match goal", "label": ""}]),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"], label_column="label"))
    run_round(bbc.engine, bbc.settings, project="bbc")
    with reading(bbc.engine) as conn:
        sets = list(conn.execute(select(vector_sets.c.id, vector_sets.c.n_items)).all())
        orphans = conn.execute(select(func.count()).select_from(item_vectors)
                               .where(item_vectors.c.set_id != sets[0].id)).scalar_one()
        new_id = conn.execute(select(items.c.id).where(items.c.external_id == "new-1")).scalar_one()
    assert len(sets) == 1 and sets[0].id != old and sets[0].n_items == len(bbc.truth) + 1 and orphans == 0
    assert len(q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=new_id, limit=5)) == 5
    assert len(q(bbc.engine, steerlists.similar_ids, project_id=project.id, item_id=some, limit=5)) == len(before)


def test_multi_label_lists_follow_each_tags_probability_and_threshold(engine, settings):
    deb = make_debian(engine, settings)
    result = run_round(engine, settings, project="deb")
    assert result.state == "model"
    project = deb.project()
    with reading(engine) as conn:
        metrics = conn.execute(select(model_runs.c.metrics).where(model_runs.c.id == result.run_id)).scalar_one()
        rows = conn.execute(select(item_scores.c.item_id, item_scores.c.proba)
                            .where(item_scores.c.run_id == result.run_id)).all()
    proba = {r.item_id: np.frombuffer(r.proba, dtype="<f4") for r in rows}
    for j, tag in enumerate(metrics["tags"]):
        threshold = metrics["thresholds"][tag]
        likely = q(engine, steerlists.likely_ids, project_id=project.id, tag=tag, limit=500)
        unsure = q(engine, steerlists.unsure_ids, project_id=project.id, tag=tag, limit=500)
        assert sorted(likely) == sorted(proba) == sorted(unsure)
        assert np.all(np.diff([proba[i][j] for i in likely]) <= 0)
        assert np.all(np.diff([abs(float(proba[i][j]) - threshold) for i in unsure]) >= -1e-6)
    some = sorted(proba)[0]
    assert len(q(engine, steerlists.similar_ids, project_id=project.id, item_id=some, limit=7)) == 7


def test_a_tag_the_classifier_has_not_seen_gets_the_novelty_order(bbc):
    project = bbc.project()
    P = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.7, 0.3]], dtype=np.float32)
    out = RoundOutput("model", np.array([0, 1, 2, 3]), np.zeros(4), classes=np.array(["business", "sports"]),
                      class_proba=P)
    ids = np.array([10, 11, 12, 13])
    lists = tag_lists(project, out, ids)
    tag = {t.name: t.id for t in project.tags}
    assert lists[(tag["sports"], "likely")].tolist() == [12, 11, 13, 10]
    assert lists[(tag["business"], "unsure")].tolist() == [11, 13, 12, 10]
    assert lists[(tag["tech"], "likely")].tolist() == [11, 13, 12, 10]  # least well placed first
    cold = RoundOutput("not_enough_labels", np.array([0, 1]), np.zeros(2))
    assert tag_lists(project, cold, ids) == {}
