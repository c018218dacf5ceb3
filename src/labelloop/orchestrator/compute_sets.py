"""The learn side of a multi-label round: label sets in, serving order out (no database).

:func:`labelloop.orchestrator.compute_round` comes here when its labels are a 2-d 0/1 matrix
(one row per labelled item, one column per tag). The round fits a
:class:`~labelloop.learn.multilabel.OneVsRest` of the project's model (one binary classifier
per tag, see :func:`~labelloop.learn.multilabel.tag_classifier`), cross-validates it, which also chooses each tag's decision threshold (0.5 until CV is
possible), scores every pool row with a set strategy
(:func:`~labelloop.learn.multilabel.set_uncertainty`) and orders the pool with the same
diversity and exploration as a single-label round. Held-out audit rows are scored with
:func:`~labelloop.learn.multilabel.audit_sets`, and stop rows get their predicted sets.

Every pool row's tag probabilities come back as a float32 matrix (``proba``), so that export
can write ``p_<tag>`` columns and the model's set without predicting again; ``confidence`` is
:func:`certainty` (no ``classes`` / ``predicted_index``: a set is not one class).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelloop.errors import InvalidInputError, NotEnoughLabelsError
from labelloop.learn import get_model_spec, priorities_from_order, queue_order
from labelloop.learn.multilabel import (
    SET_STRATEGIES,
    OneVsRest,
    audit_sets,
    can_train_sets,
    cross_validate_sets,
    set_uncertainty,
    tag_classifier,
)

__all__ = ["DEFAULT_SET_STRATEGY", "SET_STRATEGY_NAMES", "compute_sets", "set_strategy"]

# Project setting `strategy` of a multi-label project -> how set_uncertainty aggregates.
SET_STRATEGY_NAMES = {"max_uncertainty": "max", "mean_uncertainty": "mean", "random": "random"}
DEFAULT_SET_STRATEGY = "max_uncertainty"
assert set(SET_STRATEGY_NAMES.values()) == set(SET_STRATEGIES)


def set_strategy(name: str) -> str:
    """How :func:`set_uncertainty` aggregates for a multi-label strategy name; a clear error
    for a single-label name or an unknown one."""
    if name in SET_STRATEGY_NAMES:
        return SET_STRATEGY_NAMES[name]
    raise InvalidInputError(
        f"unknown query strategy {name!r} for a multi-label project; known: {', '.join(SET_STRATEGY_NAMES)}"
    )


def compute_sets(ctx: Any, Y: np.ndarray) -> Any:
    """A multi-label round; ``ctx`` carries what :func:`compute_round` resolved (see there)."""
    from labelloop.orchestrator.compute import RoundOutput, cold_start, head_features, top_positions

    source, train_rows, pool_rows, rng, clock, check = ctx.source, ctx.train_rows, ctx.pool_rows, ctx.rng, \
        ctx.clock, ctx.check
    Y = np.asarray(Y, dtype=np.int8)
    how = set_strategy(ctx.strategy)
    spec = get_model_spec(ctx.model, class_weight=ctx.class_weight)
    n_tags = Y.shape[1]
    reason = can_train_sets(Y)
    if reason is not None:
        order = cold_start(source, pool_rows, rng)
        clock.lap("predict")
        return RoundOutput("not_enough_labels", pool_rows, priorities_from_order(order), message=reason,
                           timings=clock.wall, cpu=clock.cpu)

    def make_model() -> OneVsRest:
        return OneVsRest(tag_classifier(spec.make_classifier()))

    X_train = source.rows(train_rows)
    classifier = make_model().fit(X_train, Y)
    clock.lap("fit")
    check()
    cv, cv_message = None, None
    tags = list(range(n_tags))
    if ctx.evaluate:
        try:
            cv = cross_validate_sets(make_model, X_train, Y, tags=tags, seed=int(rng.integers(2**31 - 1)))
            classifier.thresholds_ = np.array([cv["thresholds"][j] for j in tags])
        except NotEnoughLabelsError as exc:
            cv_message = str(exc)
    clock.lap("cv")
    del X_train
    check()

    n = len(pool_rows)
    proba = np.empty((n, n_tags), dtype=np.float32)
    scores = np.empty(n, dtype=np.float64)
    for start, block in source.chunks():
        lo, hi = np.searchsorted(pool_rows, [start, start + block.shape[0]])
        if hi > lo:
            P = classifier.predict_proba(block[pool_rows[lo:hi] - start])
            proba[lo:hi] = P
            scores[lo:hi] = set_uncertainty(P, classifier.thresholds_, how=how, rng=rng)
        del block
    check()
    head = head_features(source, pool_rows, scores)
    order = queue_order(scores, features=head, exploration=ctx.exploration, diversity=True, rng=rng)
    priorities = priorities_from_order(order)
    confidence = certainty(proba, classifier.thresholds_)
    audit = stop_predicted = None
    if ctx.eval_rows is not None:
        eval_Y = np.asarray(ctx.eval_y, dtype=np.int8).reshape(-1, n_tags)
        audit = audit_sets(eval_Y, _sets_of(source, ctx.eval_rows, classifier, pool_rows, proba), tags)
    if ctx.stop_rows is not None:
        stop_predicted = _sets_of(source, ctx.stop_rows, classifier, pool_rows, proba)
    clock.lap("predict")
    out = RoundOutput(
        "model", pool_rows, priorities, confidence=confidence, scores=scores, classifier=classifier, cv=cv, cv_message=cv_message,
        top=top_positions(order, scores), audit=audit, stop_predicted=stop_predicted, proba=proba,
        thresholds=np.asarray(classifier.thresholds_, dtype=np.float64), timings=clock.wall, cpu=clock.cpu,
    )
    return out


def certainty(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How sure the model is of each row's whole set: the certainty of its least certain tag,
    per tag 0 at the threshold and 1 at probability 0 or 1 (1 - the ``max`` set uncertainty).
    Computed block by block, so a million rows never hold a float64 copy of ``proba``."""
    out = np.empty(proba.shape[0], dtype=np.float64)
    if proba.shape[1] == 0:
        out[:] = 1.0
        return out
    for start in range(0, proba.shape[0], 100_000):
        block = proba[start:start + 100_000]
        out[start:start + len(block)] = 1.0 - set_uncertainty(block, thresholds, how="max")
    return out


def _sets_of(source: Any, rows: np.ndarray, classifier: OneVsRest, pool_rows: np.ndarray,
             proba: np.ndarray) -> np.ndarray:
    """The predicted set (a 0/1 row over the tags) of each of ``rows``: from the pool's
    probabilities for rows in the pool, predicted anew for the others."""
    rows = np.asarray(rows, dtype=np.int64)
    at = np.searchsorted(pool_rows, rows)
    in_pool = np.zeros(len(rows), dtype=bool)
    if len(pool_rows):
        in_pool = pool_rows[np.minimum(at, len(pool_rows) - 1)] == rows
    P = np.empty((len(rows), proba.shape[1]), dtype=np.float64)
    P[in_pool] = proba[at[in_pool]]
    if not in_pool.all():
        P[~in_pool] = classifier.predict_proba(source.rows(rows[~in_pool]))
    return (P >= classifier.thresholds_).astype(np.int8)
