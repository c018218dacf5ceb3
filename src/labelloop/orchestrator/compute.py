"""The learn side of a round, without a database: features + labels in, serving order out.

:func:`compute_round` is what :func:`labelloop.orchestrator.run_round` runs between the
snapshot and the write-back, and what a simulation calls directly on an in-memory matrix::

    out = compute_round(X, train_rows, y, model="tfidf-logreg", strategy="margin", seed=0)
    out.priorities   # one per pool row (higher = serve sooner); out.pool_rows says which rows

Before a model can be trained (fewer than 2 tags labelled) the order is the diverse
cold-start order of :func:`labelloop.learn.cold_start_order`, with ``state`` =
``"not_enough_labels"`` and the reason in ``message``. With a model but too few labels per tag
for stratified cross-validation, the model still serves and ``cv`` is None (``cv_message``
says why).

Labels ``y`` may also be a 2-d 0/1 matrix, one row per labelled item and one column per tag: a
multi-label round (:mod:`labelloop.orchestrator.compute_sets`), which also returns every pool
row's tag probabilities (``proba``) and the tags' decision thresholds.

Optionally a round also predicts held-out rows: ``eval_rows`` with their labels ``eval_y``
(the audit items, never trained on) give ``audit`` (:func:`labelloop.learn.audit_estimate`),
and ``stop_rows`` (the stop set) give ``stop_predicted`` for the stability check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from labelloop.errors import InvalidInputError, NotEnoughLabelsError
from labelloop.learn import (
    audit_estimate,
    can_train,
    cold_start_order,
    cross_validate,
    get_model_spec,
    get_strategy,
    priorities_from_order,
    queue_order,
)
from labelloop.orchestrator.features import FeatureSource, InMemoryFeatures

COLD_START_MAX_ROWS = 200_000  # beyond this, the cold-start order covers a random sample first
DIVERSITY_CANDIDATES = 1000  # queue_order's default head size
TOP_RECORDED = 100  # positions whose score is kept in the run's metrics (queue preview)


@dataclass
class RoundOutput:
    """What a round computed for the pool rows ``pool_rows`` (ascending row indices)."""

    state: str  # "model" or "not_enough_labels"
    pool_rows: np.ndarray
    priorities: np.ndarray
    message: str | None = None
    classes: np.ndarray | None = None  # the classifier's classes (tags)
    predicted_index: np.ndarray | None = None  # index into ``classes`` of each pool row's prediction
    confidence: np.ndarray | None = None  # its probability
    scores: np.ndarray | None = None  # the strategy's informativeness per pool row
    classifier: Any = None
    cv: dict[str, Any] | None = None
    cv_message: str | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, Any] | None = None  # accuracy on eval_rows (labelled, correct, accuracy, ci95)
    stop_predicted: np.ndarray | None = None  # the predicted tag of each of stop_rows
    proba: np.ndarray | None = None  # multi-label: each pool row's probability per tag (float32)
    thresholds: np.ndarray | None = None  # multi-label: each tag's decision threshold
    class_proba: np.ndarray | None = None  # single-label: each pool row's probability per class (float32)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds: fit, cv, predict
    cpu: dict[str, float] = field(default_factory=dict)  # the same phases in process CPU seconds

    @property
    def predicted(self) -> np.ndarray | None:
        """The predicted class (tag) of each pool row."""
        return None if self.classes is None else self.classes[self.predicted_index]


def compute_round(
    features: FeatureSource | Any,
    train_rows: np.ndarray,
    y: np.ndarray,
    *,
    pool_rows: np.ndarray | None = None,
    model: str = "tfidf-logreg",
    strategy: str = "margin",
    exploration: float = 0.1,
    class_weight: Any = None,
    seed: Any = 0,
    evaluate: bool = True,
    check: Callable[[], None] | None = None,
    threads: int | None = 1,
    eval_rows: np.ndarray | None = None,
    eval_y: np.ndarray | None = None,
    stop_rows: np.ndarray | None = None,
) -> RoundOutput:
    """Fit, cross-validate and rank ``pool_rows`` (default: every row not in ``train_rows``).

    ``features``: a :class:`~labelloop.orchestrator.features.FeatureSource` or any matrix;
    ``y``: the label (tag) of each of ``train_rows``; ``seed``: anything
    ``numpy.random.default_rng`` takes. ``check()`` is called between phases and may raise to
    abandon the round. ``threads``: BLAS/OpenMP threads during the round (1 by default: on a
    busy 2-core machine OpenBLAS's spinning threads made L-BFGS 4x slower; None: as is).
    ``eval_rows``/``eval_y``: held-out rows and their labels, scored into ``audit``;
    ``stop_rows``: rows whose predictions go to ``stop_predicted`` (both only with a model)."""
    held_out = _HeldOut(eval_rows, eval_y, stop_rows)
    args = (features, train_rows, y, pool_rows, model, strategy, exploration, class_weight, seed, evaluate, check,
            held_out)
    if threads is None:
        return _compute(*args)
    with threadpool_limits(limits=threads):
        return _compute(*args)


@dataclass(frozen=True)
class _HeldOut:
    eval_rows: np.ndarray | None
    eval_y: np.ndarray | None
    stop_rows: np.ndarray | None


def _compute(features: Any, train_rows: Any, y: Any, pool_rows: Any, model: str, strategy: str,
             exploration: float, class_weight: Any, seed: Any, evaluate: bool,
             check: Callable[[], None] | None, held_out: _HeldOut) -> RoundOutput:
    source = features if hasattr(features, "chunks") else InMemoryFeatures(features)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    y = np.asarray(y)
    if train_rows.shape != y.shape[:1] or y.ndim > 2:
        raise InvalidInputError(f"{len(train_rows)} labelled rows but {len(y)} labels")
    if (held_out.eval_rows is None) != (held_out.eval_y is None) or (
        held_out.eval_rows is not None and len(held_out.eval_rows) != len(held_out.eval_y)  # type: ignore[arg-type]
    ):
        raise InvalidInputError("give eval_rows and eval_y together, one label per row")
    if pool_rows is None:
        pool_rows = np.setdiff1d(np.arange(source.n_rows), train_rows)
    pool_rows = np.unique(np.asarray(pool_rows, dtype=np.int64))
    rng = np.random.default_rng(seed)
    check = check or (lambda: None)
    clock = _Clock()
    if y.ndim == 2:  # label sets: a multi-label round
        from labelloop.orchestrator.compute_sets import compute_sets

        ctx = SimpleNamespace(source=source, train_rows=train_rows, pool_rows=pool_rows, rng=rng, clock=clock,
                              check=check, model=model, strategy=strategy, exploration=exploration,
                              class_weight=class_weight, evaluate=evaluate, eval_rows=held_out.eval_rows,
                              eval_y=held_out.eval_y, stop_rows=held_out.stop_rows)
        return compute_sets(ctx, y)
    spec = get_model_spec(model, class_weight=class_weight)
    score_fn = get_strategy(strategy)

    reason = can_train(y)
    if reason is not None:
        order = cold_start(source, pool_rows, rng)
        clock.lap("predict")
        return RoundOutput("not_enough_labels", pool_rows, priorities_from_order(order), message=reason,
                           timings=clock.wall, cpu=clock.cpu)

    X_train = source.rows(train_rows)
    classifier = spec.make_classifier().fit(X_train, y)
    clock.lap("fit")
    check()

    cv, cv_message = None, None
    if evaluate:
        try:
            cv = cross_validate(spec.make_classifier, X_train, y, seed=int(rng.integers(2**31 - 1)))
        except NotEnoughLabelsError as exc:
            cv_message = str(exc)
    clock.lap("cv")
    del X_train
    check()

    scores, predicted, confidence, class_proba = _predict(source, pool_rows, classifier, score_fn, rng)
    check()
    head = head_features(source, pool_rows, scores)
    order = queue_order(scores, features=head, exploration=exploration, diversity=True,
                        candidates=DIVERSITY_CANDIDATES, rng=rng)
    priorities = priorities_from_order(order)
    audit = stop_predicted = None
    if held_out.eval_rows is not None:
        audit = audit_estimate(np.asarray(held_out.eval_y, dtype=object),
                               _labels_of(source, held_out.eval_rows, classifier, pool_rows, predicted))
    if held_out.stop_rows is not None:
        stop_predicted = _labels_of(source, held_out.stop_rows, classifier, pool_rows, predicted)
    clock.lap("predict")
    return RoundOutput(
        "model", pool_rows, priorities, classes=np.asarray(classifier.classes_), predicted_index=predicted,
        confidence=confidence, scores=scores, classifier=classifier, cv=cv, cv_message=cv_message,
        top=top_positions(order, scores), audit=audit, stop_predicted=stop_predicted, class_proba=class_proba,
        timings=clock.wall, cpu=clock.cpu,
    )


def _labels_of(source: FeatureSource, rows: np.ndarray, classifier: Any, pool_rows: np.ndarray,
               predicted: np.ndarray) -> np.ndarray:
    """The classifier's label (its most probable class, as for the pool) of each of ``rows``:
    the pool's prediction (``predicted``, per row of ``pool_rows``) for rows in the pool (in a
    database round, the held-out audit items always are), a new one for the others."""
    rows = np.asarray(rows, dtype=np.int64)
    classes = np.asarray(classifier.classes_, dtype=object)
    at = np.searchsorted(pool_rows, rows)
    in_pool = np.zeros(len(rows), dtype=bool)
    if len(pool_rows):
        in_pool = pool_rows[np.minimum(at, len(pool_rows) - 1)] == rows
    index = np.empty(len(rows), dtype=np.int64)
    index[in_pool] = predicted[at[in_pool]]
    if not in_pool.all():
        index[~in_pool] = classifier.predict_proba(source.rows(rows[~in_pool])).argmax(axis=1)
    return classes[index]


class _Clock:
    """Wall and process-CPU seconds per phase."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.wall[name] = wall - self._wall
        self.cpu[name] = cpu - self._cpu
        self._wall, self._cpu = wall, cpu


def _predict(source: FeatureSource, pool_rows: np.ndarray, classifier: Any, score_fn: Any,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Strategy scores, predicted class index and its probability per pool row, and every
    class's probability (float32, for the steering lists), chunk by chunk."""
    n = len(pool_rows)
    class_proba = np.empty((n, len(classifier.classes_)), dtype=np.float32)
    scores = np.empty(n, dtype=np.float64)
    predicted = np.empty(n, dtype=np.int32)
    confidence = np.empty(n, dtype=np.float64)
    for start, block in source.chunks():
        lo, hi = np.searchsorted(pool_rows, [start, start + block.shape[0]])
        if hi > lo:
            proba = classifier.predict_proba(block[pool_rows[lo:hi] - start])
            scores[lo:hi] = score_fn(proba, rng=rng)
            best = proba.argmax(axis=1)
            predicted[lo:hi] = best
            confidence[lo:hi] = proba[np.arange(hi - lo), best]
            class_proba[lo:hi] = proba
        del block
    return scores, predicted, confidence, class_proba


def head_features(source: FeatureSource, pool_rows: np.ndarray, scores: np.ndarray) -> Any:
    """Features for queue_order's diversity step, with only the rows it can look at filled in
    (the best-scored candidates and their ties), so the pool's matrix is never in memory."""
    n = len(pool_rows)
    m = min(DIVERSITY_CANDIDATES, n)
    if m == 0:
        return None
    keys = np.where(np.isnan(scores), -np.inf, scores)
    threshold = np.partition(keys, n - m)[n - m]
    head = np.flatnonzero(keys >= threshold)
    if len(head) > 20 * m:  # a sea of ties: the head is then any of them anyway
        head = head[np.argsort(-keys[head], kind="stable")[: 20 * m]]
    rows = source.rows(pool_rows[head])
    rows = sp.csr_matrix(rows, dtype=np.float32)
    placed = sp.csr_matrix(
        (np.ones(len(head), np.float32), (head, np.arange(len(head)))), shape=(n, len(head))
    )
    return (placed @ rows).tocsr()


def cold_start(source: FeatureSource, pool_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cold-start order of the pool; beyond COLD_START_MAX_ROWS, a random sample is ordered
    first and the rest follows in random order (nobody labels 200,000 items before a model)."""
    n = len(pool_rows)
    if n <= COLD_START_MAX_ROWS:
        return cold_start_order(source.rows(pool_rows), rng=rng)
    sample = np.sort(rng.choice(n, size=COLD_START_MAX_ROWS, replace=False))
    head = sample[cold_start_order(source.rows(pool_rows[sample]), rng=rng)]
    rest = np.setdiff1d(np.arange(n), sample)
    return np.concatenate([head, rng.permutation(rest)]).astype(np.intp)


def top_positions(order: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """The first positions of the order with their score and rank by score (1 = best): a rank
    far below the position means an exploration pick or a diversity move."""
    first = order[:TOP_RECORDED]
    keys = np.where(np.isnan(scores), -np.inf, scores)
    ranks = [int((keys > keys[i]).sum()) + 1 for i in first]
    return [{"row": int(i), "score": float(scores[i]), "score_rank": r} for i, r in zip(first, ranks)]
