"""Run a whole simulation and assemble ``results.json``.

Schema (``version`` 1)::

    {
      "version": 1,
      "dataset":  {file, test_file, text_columns, label_column, test_fraction, split_seed,
                   pool_size, test_size, tags},
      "settings": {model, initial, batch, budget, seeds, cv_every, class_weight, target_share},
      "full_pool": {model, labels, accuracy, macro_f1},
      "runs": [{strategy, model, seed, query: {name, strategy, exploration, diversity},
                curve: [[labels, accuracy, macro_f1], ...],     # on the test set; label sets
                                                                # (multi_label): micro_f1, not accuracy
                cv:    [[labels, accuracy, macro_f1], ...],     # CV on the labelled rows alone;
                                                                # nulls where not computed/possible
                labelled: [pool row, ...], seconds}],
      "summary": {strategy: {aulc_macro_f1, aulc_accuracy, labels_to_95pct,
                             labels_to_95pct_accuracy, ... (see summary.summarize)}}
    }
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from labelloop.errors import InvalidInputError
from labelloop.simulate.data import Dataset
from labelloop.simulate.presets import QuerySettings, default_model
from labelloop.simulate.runner import Job, Shared, available_cores, compute_features, run_jobs, steps_per_run
from labelloop.simulate.summary import TARGET_SHARE, summarize
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS

__all__ = ["RESULTS_VERSION", "build_results", "simulate"]

RESULTS_VERSION = 1

#: called with (total steps) once, then with (done steps) after each step
ProgressHooks = tuple[Callable[[int], None], Callable[[int], None]]


def _check(*, initial: int, batch: int, budget: int, seeds: int, pool_size: int, cv_every: int) -> None:
    if initial < 1:
        raise InvalidInputError(f"--initial must be at least 1, not {initial}")
    if batch < 1:
        raise InvalidInputError(f"--batch must be at least 1, not {batch}")
    if seeds < 1:
        raise InvalidInputError(f"--seeds must be at least 1, not {seeds}")
    if cv_every < 0:
        raise InvalidInputError(f"--cv-every must be 0 (never) or more, not {cv_every}")
    if budget < initial:
        raise InvalidInputError(f"--budget ({budget}) must be at least --initial ({initial})")
    if budget > pool_size:
        raise InvalidInputError(f"--budget ({budget}) is larger than the pool ({pool_size} items)")


def simulate(
    dataset: Dataset,
    queries: Sequence[QuerySettings],
    *,
    model: str | None = None,
    seeds: int = 3,
    initial: int = 10,
    batch: int = 10,
    budget: int = 500,
    cv_every: int = 1,
    processes: int | None = None,
    progress: ProgressHooks | None = None,
) -> dict[str, Any]:
    """Simulate labelling ``dataset`` with each configuration and seed; return the results.

    ``model`` defaults to a new project's model; ``processes`` to the available cores.
    ``cv_every`` = k cross-validates the labelled rows every k-th round (0: never).
    """
    model = model or default_model()
    _check(initial=initial, batch=batch, budget=budget, seeds=seeds, pool_size=len(dataset.pool_texts), cv_every=cv_every)
    if not queries:
        raise InvalidInputError("give at least one strategy")
    for query in queries:
        if query.tag is not None and query.tag not in dataset.tags:
            raise InvalidInputError(f"strategy {query.name!r}: unknown tag {query.tag!r}; "
                                    f"the file's tags: {', '.join(dataset.tags)}")
    started = time.perf_counter()
    class_weight = PROJECT_SETTINGS_DEFAULTS["class_weight"]
    shared = Shared(
        features=compute_features(dataset, [model]),
        pool_tags=dataset.pool_tags,
        test_tags=dataset.test_tags,
        tags=dataset.tags,
        initial=initial,
        batch=batch,
        budget=budget,
        cv_every=cv_every,
        class_weight=class_weight,
        multi_label=dataset.multi_label,
    )
    jobs = [Job(model)] + [Job(model, query, seed) for query in queries for seed in range(seeds)]
    if progress is not None:
        progress[0](steps_per_run(shared) * (len(jobs) - 1))
    outcomes = run_jobs(
        shared, jobs, processes=processes or available_cores(), progress=progress[1] if progress else None
    )
    return build_results(dataset, shared, model=model, seeds=seeds, full_pool=outcomes[0], runs=outcomes[1:],
                         seconds=time.perf_counter() - started)


def build_results(dataset: Dataset, shared: Shared, *, model: str, seeds: int, full_pool: dict[str, Any],
                  runs: list[dict[str, Any]], seconds: float | None = None) -> dict[str, Any]:
    """The results document (see the module documentation) of finished runs."""
    return {
        "version": RESULTS_VERSION,
        "dataset": {
            **dataset.description,
            "pool_size": len(dataset.pool_texts),
            "test_size": len(dataset.test_texts),
            "tags": list(dataset.tags),
        },
        "settings": {
            "model": model,
            "initial": shared.initial,
            "batch": shared.batch,
            "budget": shared.budget,
            "seeds": list(range(seeds)),
            "cv_every": shared.cv_every,
            "class_weight": shared.class_weight,
            "target_share": TARGET_SHARE,
            "multi_label": shared.multi_label,
        },
        "full_pool": full_pool,
        "runs": runs,
        "summary": summarize(runs, full_pool, multi_label=shared.multi_label),
        "seconds": None if seconds is None else round(seconds, 3),
    }
