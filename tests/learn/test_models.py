"""Model factories, the robust classifiers, and saving a pipeline that predicts raw text."""

from __future__ import annotations

import importlib.util

import joblib
import numpy as np
import pytest

from labelloop.errors import InvalidInputError, NotEnoughLabelsError
from labelloop.learn.classifiers import AdaptiveMLPClassifier, CalibratedLinearSVC
from labelloop.learn.features import make_featurizer
from labelloop.learn.models import DEFAULT_MODEL, MODEL_NAMES, build_pipeline, get_model_spec

from .conftest import make_corpus

HAS_WORDLLAMA = importlib.util.find_spec("wordllama") is not None
needs_wordllama = pytest.mark.skipif(not HAS_WORDLLAMA, reason="optional wordllama package not installed")

ALL_MODELS = [
    pytest.param(name, marks=needs_wordllama) if name.startswith("embed") else name for name in MODEL_NAMES
] + ["sklearn.naive_bayes:ComplementNB"]


@pytest.fixture(scope="module")
def held_out():
    return make_corpus(per_topic=5, seed=99)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_learns_the_topics(name, corpus, held_out):
    texts, tags = corpus
    spec = get_model_spec(name)
    featurizer = make_featurizer(spec.featurizer)
    X = featurizer.fit_transform(texts)
    classifier = spec.make_classifier().fit(X, tags)
    X_new = featurizer.transform(held_out[0])
    proba = classifier.predict_proba(X_new)
    assert proba.shape == (15, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(classifier.classes_) == ["food", "space", "sport"]
    assert np.mean(classifier.predict(X_new) == held_out[1]) >= 0.9


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_copes_with_one_label_per_tag(name, corpus):
    texts, tags = corpus
    spec = get_model_spec(name)
    X = make_featurizer(spec.featurizer).fit_transform(texts)
    first = [int(np.flatnonzero(tags == tag)[0]) for tag in ("food", "space", "sport")]
    classifier = spec.make_classifier().fit(X[first], tags[first])
    proba = classifier.predict_proba(X)
    assert proba.shape == (len(texts), 3)
    assert np.all(np.isfinite(proba))
    # two tags, one example each: the smallest trainable label set
    classifier = spec.make_classifier().fit(X[first[:2]], tags[first[:2]])
    assert classifier.predict_proba(X).shape == (len(texts), 2)


def test_make_classifier_returns_a_fresh_unfitted_object_each_time(corpus):
    spec = get_model_spec(DEFAULT_MODEL)
    first, second = spec.make_classifier(), spec.make_classifier()
    assert first is not second
    assert not hasattr(first, "classes_")
    assert spec.featurizer == "tfidf" and spec.name == "tfidf-logreg"


def test_class_weight_and_random_state_reach_the_estimators_that_take_them():
    logreg = get_model_spec("tfidf-logreg", class_weight="balanced", random_state=7).make_classifier()
    assert logreg.get_params()["class_weight"] == "balanced"
    assert logreg.get_params()["random_state"] == 7
    svm = get_model_spec("tfidf-svm", class_weight="balanced").make_classifier()
    assert svm.class_weight == "balanced"
    mlp = get_model_spec("tfidf-mlp", class_weight="balanced", random_state=3).make_classifier()
    assert mlp.random_state == 3 and "class_weight" not in mlp.get_params()
    forest = get_model_spec(
        "sklearn.ensemble:RandomForestClassifier", class_weight="balanced", random_state=5
    ).make_classifier()
    assert forest.class_weight == "balanced" and forest.random_state == 5
    assert get_model_spec("sklearn.naive_bayes:ComplementNB", class_weight="balanced").featurizer == "tfidf"


def test_balanced_class_weight_changes_the_fit(corpus):
    texts, tags = corpus
    X = make_featurizer("tfidf").fit_transform(texts)
    keep = np.flatnonzero((tags != "food") | (np.cumsum(tags == "food") <= 2))  # food: 2 of 35
    plain = get_model_spec("tfidf-logreg").make_classifier().fit(X[keep], tags[keep])
    balanced = get_model_spec("tfidf-logreg", class_weight="balanced").make_classifier().fit(X[keep], tags[keep])
    food = list(plain.classes_).index("food")
    food_rows = np.flatnonzero(tags == "food")
    assert balanced.predict_proba(X[food_rows])[:, food].mean() > plain.predict_proba(X[food_rows])[:, food].mean()


@pytest.mark.parametrize(
    "name, message",
    [
        ("tfidf-forest", "unknown model 'tfidf-forest'; known: tfidf-logreg, tfidf-svm, tfidf-mlp, embed-logreg"),
        ("no_such_module:Thing", "cannot import module 'no_such_module'"),
        ("sklearn.naive_bayes:NoSuchClass", "is not a scikit-learn estimator class"),
        ("os:system", "is not a scikit-learn estimator class"),
        ("sklearn.linear_model:Ridge", "is not a classifier"),
        ("sklearn.svm:SVC", "has no predict_proba"),
    ],
)
def test_bad_model_names_are_clear_errors(name, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        get_model_spec(name)


def test_bad_class_weight():
    with pytest.raises(InvalidInputError, match="class_weight"):
        get_model_spec("tfidf-logreg", class_weight="heavy")


# --- the robust classifiers ----------------------------------------------------------------


def test_svm_calibrates_when_every_tag_has_two_examples_and_falls_back_otherwise(corpus):
    texts, tags = corpus
    X = make_featurizer("tfidf").fit_transform(texts)
    two_each = np.concatenate([np.flatnonzero(tags == t)[:2] for t in ("food", "space", "sport")])
    calibrated = CalibratedLinearSVC().fit(X[two_each], tags[two_each])
    assert calibrated.calibrated_ is True
    one_food = np.concatenate([np.flatnonzero(tags == "food")[:1], np.flatnonzero(tags != "food")])
    fallback = CalibratedLinearSVC().fit(X[one_food], tags[one_food])
    assert fallback.calibrated_ is False
    proba = fallback.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(fallback.predict(X) == tags) >= 0.8
    # binary fallback: logistic squashing of the one-dimensional margin
    binary = np.concatenate([np.flatnonzero(tags == "food")[:1], np.flatnonzero(tags == "sport")])
    proba = CalibratedLinearSVC().fit(X[binary], tags[binary]).predict_proba(X)
    assert proba.shape == (len(texts), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("estimator", [CalibratedLinearSVC(), AdaptiveMLPClassifier()])
def test_robust_classifiers_refuse_a_single_tag(estimator, corpus):
    X = make_featurizer("tfidf").fit_transform(corpus[0][:5])
    with pytest.raises(NotEnoughLabelsError, match="need at least 2 different tags"):
        estimator.fit(X, ["food"] * 5)


def test_mlp_uses_early_stopping_only_with_enough_labels(corpus):
    texts, tags = corpus
    X = make_featurizer("tfidf").fit_transform(texts)
    assert AdaptiveMLPClassifier().fit(X, tags).early_stopping_ is False
    big = AdaptiveMLPClassifier(early_stopping_min_samples=30).fit(X, tags)
    assert big.early_stopping_ is True and big.model_.early_stopping is True


# --- saving a pipeline ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tfidf-logreg", "tfidf-svm", pytest.param("embed-logreg", marks=needs_wordllama)])
def test_saved_pipeline_predicts_raw_text(name, corpus, held_out, tmp_path):
    texts, tags = corpus
    spec = get_model_spec(name)
    featurizer = make_featurizer(spec.featurizer)
    classifier = spec.make_classifier().fit(featurizer.fit_transform(texts), tags)
    path = tmp_path / "model.joblib"
    joblib.dump(build_pipeline(featurizer, classifier), path)
    assert path.stat().st_size < 5_000_000

    loaded = joblib.load(path)
    assert [step for step, _ in loaded.steps] == ["features", "clf"]
    predicted = loaded.predict(held_out[0])
    np.testing.assert_array_equal(predicted, classifier.predict(featurizer.transform(held_out[0])))
    assert np.mean(predicted == held_out[1]) >= 0.9
    np.testing.assert_allclose(
        loaded.predict_proba(["rocket launch to the moon"]).sum(), 1.0, rtol=1e-6
    )
    assert loaded.predict(["rocket launch to the moon and a comet"])[0] == "space"
