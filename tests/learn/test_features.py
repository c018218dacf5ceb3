"""Featurizers: tf-idf on the whole pool, WordLlama embeddings, laziness and picklability."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from labelloop.errors import ConfigError, InvalidInputError
from labelloop.learn import features as features_module
from labelloop.learn.features import EmbedFeaturizer, TfidfFeaturizer, make_featurizer
from labelloop.learn.models import get_model_spec

needs_wordllama = pytest.mark.skipif(
    importlib.util.find_spec("wordllama") is None, reason="optional wordllama package not installed"
)


def test_tfidf_is_float32_sparse_with_bigrams_and_drops_singletons(corpus):
    texts, _ = corpus
    featurizer = make_featurizer("tfidf")
    X = featurizer.fit_transform(texts)
    assert isinstance(featurizer, TfidfFeaturizer)
    assert sp.issparse(X) and X.dtype == np.float32 and X.shape[0] == len(texts)
    assert featurizer.min_df_ == 2
    vocabulary = set(featurizer.get_feature_names_out())
    assert "rocket" in vocabulary
    assert any(" " in term for term in vocabulary)  # word bigrams
    # rows are L2-normalised; transform of the same texts gives the same matrix
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    assert abs(featurizer.transform(texts) - X).max() == 0


def test_tfidf_falls_back_to_min_df_1_on_a_tiny_corpus():
    featurizer = make_featurizer("tfidf")
    X = featurizer.fit_transform(["apples and pears", "rockets to orbit"])
    assert featurizer.min_df_ == 1
    assert X.shape[0] == 2 and X.shape[1] > 0


def test_tfidf_caps_the_feature_space(corpus):
    X = TfidfFeaturizer(max_features=10).fit_transform(corpus[0])
    assert X.shape[1] == 10


@pytest.mark.parametrize("texts", [[], ["", "  ", "a"]])
def test_tfidf_without_words_is_a_clear_error(texts):
    with pytest.raises(InvalidInputError, match="cannot build features"):
        make_featurizer("tfidf").fit_transform(texts)


def test_unknown_featurizer():
    with pytest.raises(InvalidInputError, match="known: tfidf, embed"):
        make_featurizer("bert")


def test_importing_learn_loads_no_wordllama():
    code = "import sys, labelloop.learn; assert 'wordllama' not in sys.modules, 'loaded at import'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_wordllama_is_a_config_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "wordllama", None)  # makes "import wordllama" fail
    monkeypatch.setattr(features_module, "_WORDLLAMA_CACHE", {})
    hint = r"pip install 'labelloop\[embeddings\]'"
    with pytest.raises(ConfigError, match=hint):
        make_featurizer("embed")
    with pytest.raises(ConfigError, match=hint):
        get_model_spec("embed-logreg")
    with pytest.raises(ConfigError, match=hint):
        EmbedFeaturizer().transform(["hello"])


@needs_wordllama
def test_embeddings_are_normalised_float32_and_empty_text_is_zero():
    featurizer = make_featurizer("embed").fit(["anything"])
    X = featurizer.transform(["rocket launch", "", "butter and flour"])
    assert X.shape == (3, 256) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), [1.0, 0.0, 1.0], atol=1e-5)
    assert featurizer.transform([]).shape == (0, 256)


@needs_wordllama
def test_embeddings_put_similar_texts_close():
    texts = ["the rocket reached orbit", "a spacecraft launched into space", "bake the cake in the oven"]
    X = make_featurizer("embed").fit_transform(texts)
    assert X[0] @ X[1] > X[0] @ X[2]


@needs_wordllama
def test_embed_featurizer_pickles_without_the_model_and_reloads_it():
    featurizer = make_featurizer("embed").fit(None)
    expected = featurizer.transform(["moon landing"])
    blob = pickle.dumps(featurizer)
    assert len(blob) < 2_000  # the 256-d WordLlama weights are not inside
    features_module._WORDLLAMA_CACHE.clear()  # as in a fresh process
    np.testing.assert_allclose(pickle.loads(blob).transform(["moon landing"]), expected, rtol=1e-6)
    assert "model" in features_module._WORDLLAMA_CACHE  # loaded again, lazily, and cached
