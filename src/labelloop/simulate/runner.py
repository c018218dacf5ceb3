"""Simulated labelling runs: one run per (configuration, seed), in parallel processes.

A run plays round 0 with no labels (the cold-start order) and lets the oracle label its first
``initial`` rows; then it repeats: play a round (:func:`labelloop.simulate.rounds.play_round`:
the orchestrator's round), evaluate its classifier on the test set, and let the oracle label
the top ``batch`` rows of the serving order (what ``/next`` would hand out), until ``budget``
labels. While no classifier can be trained (one tag seen so far), the round serves a
cold-start order again, as in a live project.

Features are computed once per model in the parent process and inherited by the workers; each
run uses one BLAS thread, so a curve is bit-identical whatever the number of processes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from labelloop.learn import evaluate, get_model_spec, make_featurizer
from labelloop.learn.multilabel import OneVsRest, cross_validate_sets, evaluate_sets, tag_classifier
from labelloop.simulate.data import Dataset
from labelloop.simulate.presets import QuerySettings
from labelloop.simulate.rounds import RoundOutcome, play_round

__all__ = ["Job", "Shared", "compute_features", "available_cores", "run_jobs", "steps_per_run"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Shared:
    """What every run needs, computed once: features per model, tags, the loop's parameters."""

    features: dict[str, tuple[Any, Any]]  # model -> (pool matrix, test matrix)
    pool_tags: np.ndarray
    test_tags: np.ndarray
    tags: tuple[str, ...]
    initial: int
    batch: int
    budget: int
    cv_every: int
    class_weight: Any
    multi_label: bool = False  # pool_tags/test_tags are 0/1 matrices; curves hold micro-F1, not accuracy


@dataclass(frozen=True)
class Job:
    """A run (``query`` and ``seed`` set) or, with ``query=None``, the full-pool reference."""

    model: str
    query: QuerySettings | None = None
    seed: int = 0


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def compute_features(dataset: Dataset, models: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """Fit each model's featurizer once on the pool's texts; return (pool, test) matrices."""
    features: dict[str, tuple[Any, Any]] = {}
    by_featurizer: dict[str, tuple[Any, Any]] = {}
    for model in models:
        name = get_model_spec(model).featurizer
        if name not in by_featurizer:
            featurizer = make_featurizer(name)
            pool = featurizer.fit_transform(dataset.pool_texts)
            by_featurizer[name] = (pool, featurizer.transform(dataset.test_texts))
        features[model] = by_featurizer[name]
    return features


def steps_per_run(shared: Shared) -> int:
    """Evaluations per run: the initial labels, then one per batch up to the budget."""
    return 1 + -(-(shared.budget - shared.initial) // shared.batch)


def first_metric(shared: Shared) -> str:
    """The metric of a curve's second column: accuracy, or micro-F1 for label sets."""
    return "micro_f1" if shared.multi_label else "accuracy"


def _metrics(shared: Shared, predicted: np.ndarray) -> tuple[float, float]:
    if shared.multi_label:
        result = evaluate_sets(shared.test_tags, predicted, list(shared.tags))
        return result["micro_f1"], result["macro_f1"]
    result = evaluate(shared.test_tags.astype(object), predicted.astype(object), shared.tags)
    return result["accuracy"], result["macro_f1"]


def run_full_pool(shared: Shared, job: Job) -> dict[str, Any]:
    """The reference: the model trained on every pool row, scored on the test set (label sets:
    with each tag's threshold chosen by cross-validation on the pool, as a project's model)."""
    X, X_test = shared.features[job.model]
    spec = get_model_spec(job.model, class_weight=shared.class_weight)
    if shared.multi_label:
        def make() -> OneVsRest:
            return OneVsRest(tag_classifier(spec.make_classifier()))

        classifier = make().fit(X, shared.pool_tags)
        cv = cross_validate_sets(make, X, shared.pool_tags, tags=list(shared.tags))
        classifier.thresholds_ = np.array([cv["thresholds"][t] for t in shared.tags])
    else:
        classifier = spec.make_classifier().fit(X, shared.pool_tags)
    first, macro_f1 = _metrics(shared, np.asarray(classifier.predict(X_test)))
    return {"model": job.model, "labels": int(X.shape[0]), first_metric(shared): first, "macro_f1": macro_f1}


def run_one(shared: Shared, job: Job, progress: Progress | None = None) -> dict[str, Any]:
    """One simulated labelling run; returns its learning curve and CV curve."""
    assert job.query is not None
    started = time.perf_counter()
    X, X_test = shared.features[job.model]
    budget = min(shared.budget, X.shape[0])
    no_rows = np.zeros(0, dtype=np.intp)
    outcome = _round(shared, job, X, no_rows, step=0, with_cv=False)  # the cold-start order
    labelled = [int(i) for i in outcome.order[: shared.initial]]
    curve: list[list[float]] = []
    cv_curve: list[list[float | None]] = []
    while True:
        rows = np.asarray(labelled, dtype=np.intp)
        evaluation = len(curve)
        with_cv = shared.cv_every > 0 and evaluation % shared.cv_every == 0
        outcome = _round(shared, job, X, rows, step=evaluation + 1, with_cv=with_cv)
        if outcome.classifier is None and shared.multi_label:  # no tag varies yet: predict the common set
            predicted = np.tile(shared.pool_tags[rows[0]], (len(shared.test_tags), 1))
        elif outcome.classifier is None:  # a single tag so far: that is all a model could say
            predicted = np.full(len(shared.test_tags), shared.pool_tags[rows[0]], dtype=object)
        else:
            predicted = np.asarray(outcome.classifier.predict(X_test))
        accuracy, macro_f1 = _metrics(shared, predicted)
        curve.append([len(labelled), accuracy, macro_f1])
        cv = outcome.cv
        cv_curve.append([len(labelled), cv[first_metric(shared)] if cv else None, cv["macro_f1"] if cv else None])
        if progress is not None:
            progress(1)
        if len(labelled) >= budget:
            break
        labelled.extend(int(i) for i in outcome.order[: min(shared.batch, budget - len(labelled))])
    return {
        "strategy": job.query.name,
        "model": job.model,
        "seed": job.seed,
        "query": job.query.as_dict(),
        "curve": curve,
        "cv": cv_curve,
        "labelled": labelled,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _round(shared: Shared, job: Job, X: Any, rows: np.ndarray, *, step: int, with_cv: bool) -> RoundOutcome:
    assert job.query is not None
    return play_round(
        X, rows, shared.pool_tags[rows], model=job.model, query=job.query, class_weight=shared.class_weight,
        seed=job.seed, step=step, with_cv=with_cv or shared.multi_label,  # sets: CV picks the thresholds
        tag_names=shared.tags if shared.multi_label else None,
    )


def _execute(shared: Shared, job: Job, progress: Progress | None) -> dict[str, Any]:
    with threadpool_limits(limits=1):
        if job.query is None:
            return run_full_pool(shared, job)
        return run_one(shared, job, progress)


# Worker-process state, set once per worker by _init_worker (never at import time).
_WORKER: dict[str, Any] = {}


def _init_worker(shared: Shared, progress_queue: Any) -> None:
    _WORKER["shared"] = shared
    _WORKER["queue"] = progress_queue


def _work(job: Job) -> dict[str, Any]:
    progress_queue = _WORKER["queue"]
    return _execute(_WORKER["shared"], job, lambda n: progress_queue.put(n))


def run_jobs(
    shared: Shared,
    jobs: Sequence[Job],
    *,
    processes: int = 1,
    progress: Progress | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``jobs`` (results in the same order), in up to ``processes`` worker processes.

    ``on_result(i, result)`` is called as soon as job ``i`` is done (e.g. to cache it)."""
    processes = max(1, min(processes, len(jobs)))
    on_result = on_result or (lambda i, result: None)
    if processes == 1:
        serial = []
        for i, job in enumerate(jobs):
            serial.append(_execute(shared, job, progress))
            on_result(i, serial[-1])
        return serial
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    progress_queue = context.Queue()
    results: dict[int, dict[str, Any]] = {}
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=context, initializer=_init_worker, initargs=(shared, progress_queue)
    ) as pool:
        pending: dict[Future[dict[str, Any]], int] = {pool.submit(_work, job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, progress)
            for future in done:
                i = pending.pop(future)
                results[i] = future.result()
                on_result(i, results[i])
        _drain(progress_queue, progress)
    return [results[i] for i in range(len(jobs))]


def _drain(progress_queue: Any, progress: Progress | None) -> None:
    while True:
        try:
            n = progress_queue.get_nowait()
        except queue_module.Empty:
            return
        if progress is not None:
            progress(n)
