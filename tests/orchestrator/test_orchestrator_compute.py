"""The learn side of a round without a database (what simulations call)."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.io.demo_data import read_articles
from labelloop.learn import make_featurizer
from labelloop.orchestrator import InMemoryFeatures, compute_round
from labelloop.orchestrator.features import ShardedFeatures, _save_shard


@pytest.fixture(scope="module")
def corpus():
    """240 BBC news articles (every 9th of the demo corpus) as TF-IDF rows, and their topics."""
    rows = list(read_articles())[::9][:240]
    X = make_featurizer("tfidf").fit_transform([r["title"] + "\n\n" + r["body"] for r in rows])
    y = np.array([r["topic"] for r in rows], dtype=object)
    return X, y


def test_a_model_round_ranks_the_pool_and_predicts_it(corpus):
    X, y = corpus
    train = np.arange(0, 240, 4)
    out = compute_round(X, train, y[train], model="tfidf-logreg", strategy="margin", seed=1)
    pool = np.setdiff1d(np.arange(240), train)
    assert out.state == "model" and out.pool_rows.tolist() == pool.tolist()
    assert sorted(out.priorities.tolist()) == list(range(1, len(pool) + 1))
    assert np.mean(out.predicted == y[pool]) > 0.7
    assert out.cv is not None and out.cv["folds"] == 5 and out.cv["n_labels"] == 60
    # the first served item is among the most uncertain ones (exploration only from position 10)
    first = int(np.argmax(out.priorities))
    assert out.scores[first] >= np.sort(out.scores)[-len(pool) // 10]
    assert out.top[0]["row"] == first and out.top[0]["score_rank"] <= len(pool) // 10
    assert set(out.timings) == {"fit", "cv", "predict"}


def test_same_seed_same_order_and_shards_change_nothing(corpus, tmp_path):
    X, y = corpus
    train = np.arange(0, 240, 3)
    a = compute_round(X, train, y[train], seed=5)
    b = compute_round(InMemoryFeatures(X, chunk_rows=50), train, y[train], seed=5)
    for k, start in enumerate(range(0, 240, 70)):
        _save_shard(tmp_path, f"s{k}", X[start : start + 70])
    shards = [{"name": f"s{k}", "start": s, "stop": min(240, s + 70)} for k, s in enumerate(range(0, 240, 70))]
    sharded = ShardedFeatures(tmp_path, {"shards": shards, "n_rows": 240, "n_features": X.shape[1], "kind": "sparse"})
    c = compute_round(sharded, train, y[train], seed=5)
    assert a.priorities.tolist() == b.priorities.tolist() == c.priorities.tolist()
    assert np.array_equal(a.predicted, c.predicted)


def test_one_tag_gives_the_cold_start_order(corpus):
    X, y = corpus
    train = np.flatnonzero(y == "sports")[:10]
    out = compute_round(X, train, y[train], seed=0)
    assert out.state == "not_enough_labels" and "need at least 2 different tags" in out.message
    assert out.predicted is None and out.cv is None
    assert sorted(out.priorities.tolist()) == list(range(1, 231))


def test_too_few_labels_per_tag_for_cv_still_trains(corpus):
    X, y = corpus
    tags = sorted(set(y))
    train = np.array([int(np.flatnonzero(y == t)[0]) for t in tags] + [int(np.flatnonzero(y == tags[0])[1])])
    out = compute_round(X, train, y[train], seed=0)
    assert out.state == "model" and out.cv is None and "cross-validation needs at least 2" in out.cv_message


def test_held_out_and_stop_rows_get_the_most_probable_class_in_or_out_of_the_pool(corpus):
    X, y = corpus
    train = np.arange(0, 240, 4)
    unscored = np.arange(2, 240, 8)  # neither trained on nor in the pool
    pool = np.setdiff1d(np.arange(240), np.concatenate([train, unscored]))
    held = np.sort(np.concatenate([np.arange(1, 240, 8), unscored]))  # half in the pool, half not
    stop = np.sort(np.concatenate([np.arange(3, 240, 16), np.arange(0, 240, 16), unscored[:5]]))
    out = compute_round(X, train, y[train], pool_rows=pool, seed=1, eval_rows=held, eval_y=y[held], stop_rows=stop)

    def most_probable(rows):
        return out.classes[out.classifier.predict_proba(X[rows]).argmax(axis=1)]

    assert out.stop_predicted.tolist() == most_probable(stop).tolist()
    assert out.audit["labelled"] == len(held)
    assert out.audit["correct"] == int(np.sum(most_probable(held) == y[held]))
    assert out.audit["correct"] < len(held)  # a real estimate, not every row right by construction
