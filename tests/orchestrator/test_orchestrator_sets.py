"""Multi-label rounds: the learn side without a database (compute_round on label sets)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from labelloop.orchestrator import compute_round


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
