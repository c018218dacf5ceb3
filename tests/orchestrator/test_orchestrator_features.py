"""The on-disk feature cache: built once, reused, updated incrementally, read shard by shard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.orchestrator import FeatureCache
from labelloop.store import reading, writing
from labelloop.store.labels import refresh_items
from labelloop.store.schema import annotations, items, utcnow


def cache_for(bbc, **kw) -> FeatureCache:
    return FeatureCache(bbc.settings.models_dir / "bbc" / "features" / "tfidf", "tfidf", **kw)


def pool_texts(bbc) -> tuple[np.ndarray, list[str]]:
    with reading(bbc.engine) as conn:
        rows = conn.execute(select(items.c.id, items.c.text).order_by(items.c.id)).all()
    return np.array([r[0] for r in rows]), [r[1] for r in rows]


def dense(m) -> np.ndarray:
    return m.toarray() if hasattr(m, "toarray") else np.asarray(m)


def test_built_once_then_reused_and_read_shard_by_shard(bbc):
    cache = cache_for(bbc, shard_rows=50)
    features, ids, featurizer, how = cache.ensure(bbc.engine, project_id=bbc.project().id)
    assert how == "built" and len(features.shards) == 4 and features.n_rows == len(bbc.truth)
    expected_ids, texts = pool_texts(bbc)
    assert ids.tolist() == expected_ids.tolist()
    full = featurizer.transform(texts)
    picks = np.array([120, 3, 57, 49, 50, 158])  # any order, across shards
    assert np.allclose(dense(features.rows(picks)), dense(full[picks]))
    stitched = [dense(block) for _, block in features.chunks()]
    assert np.allclose(np.vstack(stitched), dense(full))
    again = cache_for(bbc, shard_rows=50).ensure(bbc.engine, project_id=bbc.project().id)
    assert again[3] == "cached"


def test_labels_do_not_recompute_features(bbc):
    cache = cache_for(bbc)
    cache.ensure(bbc.engine, project_id=bbc.project().id)
    before = cache.manifest()
    project = bbc.project()
    item = sorted(set(bbc.truth) - bbc.labelled)[0]
    with writing(bbc.engine) as conn:  # a labeller's label moves items.updated_at
        conn.execute(annotations.insert().values(project_id=project.id, item_id=item, user_id=None,
                                                 tag_id=project.tags[0].id, source="human",
                                                 created_at=utcnow(), updated_at=utcnow()))
        refresh_items(conn, item_ids=[item])
    *_, how = cache.ensure(bbc.engine, project_id=project.id)
    after = cache.manifest()
    assert how == "updated" and after["fingerprint"] != before["fingerprint"]
    assert after["shards"] == before["shards"] and after["fitted_rows"] == before["fitted_rows"]


def test_new_items_are_appended_and_changed_texts_recomputed(bbc):
    cache = cache_for(bbc, shard_rows=100)
    project = bbc.project()
    _, ids, featurizer, _ = cache.ensure(bbc.engine, project_id=project.id)
    with reading(bbc.engine) as conn:
        external = conn.execute(select(items.c.external_id).where(items.c.id == int(ids[5]))).scalar_one()
    new = [{"id": f"new{i}", "title": f"Brand new story {i}", "body": "Markets rallied on the news."} for i in range(7)]
    changed = {"id": external, "title": "Rewritten", "body": "Football results and the league table."}
    options = ImportOptions(id_column="id", text_columns=["title", "body"])
    import_source(bbc.engine, project="bbc", source=MappingSource(new), options=options, settings=bbc.settings)
    import_source(bbc.engine, project="bbc", source=MappingSource([changed]),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"], update=True),
                  settings=bbc.settings)
    features, new_ids, same_featurizer, how = cache.ensure(bbc.engine, project_id=project.id)
    assert how == "updated" and features.n_rows == len(ids) + 7
    assert new_ids[: len(ids)].tolist() == ids.tolist()
    assert pickle_size(same_featurizer) == pickle_size(featurizer)  # not refitted
    all_ids, texts = pool_texts(bbc)
    assert new_ids.tolist() == all_ids.tolist()
    assert np.allclose(dense(features.rows(np.arange(features.n_rows))), dense(featurizer.transform(texts)))
    manifest = cache.manifest()
    assert [s["stop"] for s in manifest["shards"]] == [100, len(ids), len(ids) + 7]


def test_a_pool_that_grows_a_lot_gets_a_new_vocabulary(bbc):
    cache = cache_for(bbc)
    cache.ensure(bbc.engine, project_id=bbc.project().id)
    more = [{"id": f"more{i}", "title": f"Story {i}", "body": f"zyzzyva{i} quokka"} for i in range(100)]
    import_source(bbc.engine, project="bbc", source=MappingSource(more),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"]), settings=bbc.settings)
    features, ids, featurizer, how = cache.ensure(bbc.engine, project_id=bbc.project().id)
    assert how == "built" and features.n_rows == len(bbc.truth) + 100
    assert "quokka" in featurizer.get_feature_names_out()


@pytest.mark.parametrize("sample", [60])
def test_the_vocabulary_is_fitted_on_a_sample_of_a_large_pool(bbc, sample):
    cache = cache_for(bbc, fit_sample=sample, shard_rows=40)
    features, ids, featurizer, how = cache.ensure(bbc.engine, project_id=bbc.project().id)
    assert how == "built" and features.n_rows == len(bbc.truth) == len(ids)
    _, texts = pool_texts(bbc)
    assert np.allclose(dense(features.rows(np.arange(len(ids)))), dense(featurizer.transform(texts)))
    full_vocabulary = type(featurizer)().fit(texts).n_features_out_
    assert featurizer.n_features_out_ < full_vocabulary
    assert json.loads((cache.directory / "manifest.json").read_text())["fitted_rows"] == len(ids)


def pickle_size(obj) -> int:
    import pickle

    return len(pickle.dumps(obj))
