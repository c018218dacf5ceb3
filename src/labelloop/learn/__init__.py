"""Pure machine learning for labelloop: featurizers, models, query strategies, selection,
evaluation (CV and the held-out audit estimate) and the stopping advice.

Imports only numpy, scipy, scikit-learn and joblib (plus, lazily, the optional ``wordllama``;
``krippendorff`` in :mod:`labelloop.learn.agreement`, the agreement between labellers) and
:mod:`labelloop.errors`; it knows nothing of databases or HTTP and never downloads.

A round, as the orchestrator runs it::

    spec = get_model_spec("tfidf-logreg")
    X = make_featurizer(spec.featurizer).fit_transform(all_texts)     # once per pool, cached
    if (reason := can_train(y)) is None:
        clf = spec.make_classifier().fit(X[labelled], y)
        scores = get_strategy("margin")(clf.predict_proba(X[unlabelled]))
        order = queue_order(scores, features=X[unlabelled], rng=rng)
        priorities = priorities_from_order(order)                       # higher = served first
    else:
        order = cold_start_order(X, rng=rng)
"""

from labelloop.learn.classifiers import AdaptiveMLPClassifier, CalibratedLinearSVC
from labelloop.learn.evaluation import (
    MAX_FOLDS,
    audit_estimate,
    can_cross_validate,
    can_train,
    cross_validate,
    evaluate,
    n_folds,
)
from labelloop.learn.features import (
    FEATURIZER_NAMES,
    EmbedFeaturizer,
    Featurizer,
    TfidfFeaturizer,
    load_wordllama,
    make_featurizer,
)
from labelloop.learn.models import DEFAULT_MODEL, MODEL_NAMES, ModelSpec, build_pipeline, get_model_spec
from labelloop.learn.selection import cold_start_order, priorities_from_order, queue_order
from labelloop.learn.stopping import (
    KAPPA_THRESHOLD,
    MIN_AUDIT_LABELS,
    STABLE_PAIRS,
    STOP_SET_SIZE,
    advise,
    stability,
)
from labelloop.learn.strategies import STRATEGIES, STRATEGY_NAMES, Strategy, get_strategy

__all__ = [
    "DEFAULT_MODEL",
    "FEATURIZER_NAMES",
    "KAPPA_THRESHOLD",
    "MAX_FOLDS",
    "MIN_AUDIT_LABELS",
    "MODEL_NAMES",
    "STABLE_PAIRS",
    "STOP_SET_SIZE",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "AdaptiveMLPClassifier",
    "CalibratedLinearSVC",
    "EmbedFeaturizer",
    "Featurizer",
    "ModelSpec",
    "Strategy",
    "TfidfFeaturizer",
    "advise",
    "audit_estimate",
    "build_pipeline",
    "can_cross_validate",
    "can_train",
    "cold_start_order",
    "cross_validate",
    "evaluate",
    "get_model_spec",
    "get_strategy",
    "load_wordllama",
    "make_featurizer",
    "n_folds",
    "priorities_from_order",
    "queue_order",
    "stability",
]
