"""What a round writes for the steered queues (issue 13): the ``likely`` / ``unsure`` lists and
the item vectors of ``similar``.

- :func:`tag_lists`: from a round's output, per active tag, the first
  :data:`~labelloop.store.steerlists.LIST_SIZE` pool rows of each order
  (:mod:`labelloop.learn.steering`), as item ids keyed ``(tag_id, kind)``. Single-label rounds
  use the classifier's probabilities (:attr:`RoundOutput.class_proba`); a tag that is not
  one of the classifier's classes yet (nobody labelled it) gets the novelty order for both
  kinds. Multi-label rounds use ``proba`` and the CV thresholds. Cold-start rounds: no lists.
- :func:`ensure_vectors`: a new vector set when the features changed since the newest one
  (their fingerprint: generation, row count and a hash of the item ids); older sets are deleted
  once it is complete.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Engine

from labelloop.learn.steering import (
    DIMS,
    fit_projection,
    likely_order,
    novelty_order,
    project_rows,
    single_label_margin,
    unsure_order,
)
from labelloop.orchestrator.compute import RoundOutput
from labelloop.store import reading
from labelloop.store import steerlists as store_lists
from labelloop.store.projects import Project

log = logging.getLogger("labelloop.orchestrator")

PROJECTION_SAMPLE = 20_000  # rows the truncated SVD is fitted on

__all__ = ["ensure_vectors", "tag_lists", "write_tag_lists"]


def tag_lists(project: Project, out: RoundOutput, ids: np.ndarray, *,
              limit: int = store_lists.LIST_SIZE) -> dict[tuple[int, str], np.ndarray]:
    """``{(tag_id, kind): item ids}`` of a round (see the module documentation)."""
    if out.state != "model":
        return {}
    pool_ids = np.asarray(ids)[out.pool_rows]
    lists: dict[tuple[int, str], np.ndarray] = {}
    if out.proba is not None and out.thresholds is not None:  # label sets: columns = active tags
        for j, name in enumerate(project.tag_bits):
            p = out.proba[:, j]
            lists[(project.tag_id(name), "likely")] = pool_ids[likely_order(p, limit)]
            distance = np.abs(p.astype(np.float64) - float(out.thresholds[j]))
            lists[(project.tag_id(name), "unsure")] = pool_ids[unsure_order(distance, limit)]
        return lists
    if out.class_proba is None or out.classes is None:
        return {}
    column = {str(c): j for j, c in enumerate(out.classes)}
    novel = None
    for name in project.tag_names:
        tag_id = project.tag_id(name)
        j = column.get(name)
        if j is None:
            novel = pool_ids[novelty_order(out.class_proba, limit)] if novel is None else novel
            lists[(tag_id, "likely")] = lists[(tag_id, "unsure")] = novel
            continue
        lists[(tag_id, "likely")] = pool_ids[likely_order(out.class_proba[:, j], limit)]
        lists[(tag_id, "unsure")] = pool_ids[unsure_order(single_label_margin(out.class_proba, j), limit)]
    return lists


def write_tag_lists(engine: Engine, project: Project, run_id: int, out: RoundOutput, ids: np.ndarray) -> int:
    """Write the round's lists under ``run_id`` (before its switch). Returns the rows written."""
    return store_lists.write_lists(engine, run_id=run_id, lists=tag_lists(project, out, ids))


def fingerprint_of(features: Any, ids: np.ndarray, featurizer: str) -> str:
    """What identifies a feature build: featurizer, cache generation, rows and their item ids."""
    generation = (getattr(features, "manifest", None) or {}).get("generation", 0)
    digest = hashlib.sha1(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()[:16]
    return f"{featurizer}:g{generation}:n{len(ids)}:{digest}"


def ensure_vectors(engine: Engine, project: Project, features: Any, ids: np.ndarray, featurizer: str, *,
                   dims: int = DIMS) -> str:
    """Write a new vector set of the project's items when the features changed since its newest
    one. Returns "cached" or "built"."""
    fp = fingerprint_of(features, ids, featurizer)
    with reading(engine) as conn:
        latest = store_lists.latest_vector_set(conn, project_id=project.id)
    if latest is not None and latest.fingerprint == fp:
        return "cached"
    set_id = store_lists.write_vector_set(engine, project_id=project.id, featurizer=featurizer, fingerprint=fp,
                                          chunks=vector_chunks(features, ids, dims=dims, seed=project.seed))
    store_lists.delete_vector_sets(engine, project_id=project.id, keep=set_id)
    return "built"


def vector_chunks(features: Any, ids: np.ndarray, *, dims: int = DIMS,
                  seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(item ids, unit-length vectors)`` of every row, :data:`~labelloop.store.steerlists.VECTOR_CHUNK`
    rows at a time; the projection is fitted on a sample of at most :data:`PROJECTION_SAMPLE` rows."""
    n = len(ids)
    if n == 0:
        return
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, PROJECTION_SAMPLE), replace=False))
    projection = fit_projection(features.rows(sample), dims, seed=seed)
    step = store_lists.VECTOR_CHUNK
    for start, block in features.chunks():
        vectors = project_rows(block, projection)
        for lo in range(0, len(vectors), step):
            rows = slice(start + lo, start + min(lo + step, len(vectors)))
            yield np.asarray(ids[rows], dtype=np.int64), vectors[lo:lo + step]
        del block
