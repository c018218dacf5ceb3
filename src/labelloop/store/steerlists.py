"""The steering lists (``likely``, ``unsure``) and item vectors (``similar``) of issue 13.

A model round (:mod:`labelloop.orchestrator.steering`) writes, before its switch, per active
tag the first :data:`LIST_SIZE` items of two orders of its pool into ``steer_lists``:

- ``likely``: unlabelled items by descending probability of the tag;
- ``unsure``: items by distance to the tag's decision boundary, nearest first (single-label:
  ``|p_tag - max other p|``; multi-label: ``|p_tag - the tag's CV threshold|``).

The lists belong to their run: they become visible with the switch and are deleted with the
run's scores. A round whose features changed also writes a new *vector set*: every item's
reduced, unit-length feature vector (float16) in chunks of consecutive items (``item_vectors``);
:func:`similar_ids` answers from a process-wide cache of the project's newest complete set
(loaded once as a float32 matrix, reloaded when a newer set appears) by one matrix-vector
product and a partial sort.

The four queries other parts call (keyword-only, on any connection):

- :func:`likely_ids`, :func:`unsure_ids`: the run's list for a tag, in order (items labelled
  since the round are still in it: filter with :func:`open_only`);
- :func:`similar_ids`: an item's nearest neighbours by cosine, the item left out;
- :func:`open_only`: the given ids still open for labelling (``n_labels < target_labels``), in
  the given order.

All answer ``[]`` while the project has no model run (or the item no vector yet); an unknown or
retired tag is an :class:`~labelloop.errors.InvalidInputError`, an unknown project or an item of
another project a :class:`~labelloop.errors.NotFoundError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.engine import writing
from labelloop.store.schema import item_vectors, items, model_runs, projects, steer_lists, tags, utcnow, vector_sets

__all__ = [
    "KINDS",
    "LIST_SIZE",
    "VECTOR_CHUNK",
    "delete_lists",
    "delete_stale_lists",
    "delete_vector_sets",
    "latest_vector_set",
    "likely_ids",
    "load_vectors",
    "open_only",
    "similar_ids",
    "unsure_ids",
    "write_lists",
    "write_vector_set",
]

LIST_SIZE = 5000  # items kept per run, tag and kind
KINDS = ("likely", "unsure")
VECTOR_CHUNK = 10_000  # items per item_vectors row
_INSERT_ROWS = 20_000  # rows per insert statement
_IN_CHUNK = 2000  # ids per IN (...) of open_only


# ------------------------------------------------------------------------------ writing lists
def write_lists(engine: Engine, *, run_id: int, lists: Mapping[tuple[int, str], Sequence[int] | np.ndarray]) -> int:
    """Write a run's lists: ``{(tag_id, kind): item ids in order}`` (at most :data:`LIST_SIZE`
    each are kept). Returns the number of rows written."""
    rows = []
    for (tag_id, kind), ids in lists.items():
        if kind not in KINDS:
            raise ValueError(f"unknown list kind {kind!r}")
        ids = np.asarray(ids, dtype=np.int64)[:LIST_SIZE]
        rows.extend({"run_id": run_id, "tag_id": int(tag_id), "kind": kind, "rank": r, "item_id": i}
                    for r, i in enumerate(ids.tolist()))
    for start in range(0, len(rows), _INSERT_ROWS):
        with writing(engine) as conn:
            conn.execute(insert(steer_lists), rows[start:start + _INSERT_ROWS])
    return len(rows)


def delete_lists(engine: Engine, *, run_ids: Iterable[int]) -> None:
    """Delete the lists of these runs."""
    run_ids = [int(r) for r in run_ids]
    if run_ids:
        with writing(engine) as conn:
            conn.execute(delete(steer_lists).where(steer_lists.c.run_id.in_(run_ids)))


def delete_stale_lists(engine: Engine, *, project_id: int) -> None:
    """Delete the lists of every run of the project but its current one (and of runs that are
    gone: a deleted run's lists have no owner left)."""
    with writing(engine) as conn:
        current = conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).scalar()
        others = select(model_runs.c.id).where(model_runs.c.project_id == project_id)
        if current is not None:
            others = others.where(model_runs.c.id != current)
        conn.execute(delete(steer_lists).where(steer_lists.c.run_id.in_(others)))


# ------------------------------------------------------------------------------ reading lists
def _current_run(conn: Connection, project_id: int) -> int | None:
    row = conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).first()
    if row is None:
        raise NotFoundError(f"no project with id {project_id}")
    return row.current_run_id


def _tag_id(conn: Connection, project_id: int, tag: str) -> int:
    rows = conn.execute(select(tags.c.id, tags.c.name, tags.c.retired).where(tags.c.project_id == project_id)).all()
    for r in rows:
        if r.name == tag and not r.retired:
            return int(r.id)
    known = ", ".join(r.name for r in rows if not r.retired)
    raise InvalidInputError(f"unknown tag {tag!r}: use one of the project's tags ({known})")


def _list(conn: Connection, project_id: int, tag: str, kind: str, limit: int) -> list[int]:
    run_id = _current_run(conn, project_id)
    tag_id = _tag_id(conn, project_id, tag)  # checked even without a run: a typo is an error
    if run_id is None or limit <= 0:
        return []
    rows = conn.execute(
        select(steer_lists.c.item_id)
        .where(steer_lists.c.run_id == run_id, steer_lists.c.tag_id == tag_id, steer_lists.c.kind == kind)
        .order_by(steer_lists.c.rank).limit(int(limit))
    ).scalars().all()
    return [int(i) for i in rows]


def likely_ids(conn: Connection, *, project_id: int, tag: str, limit: int) -> list[int]:
    """The current run's ``likely`` list for ``tag``: items by descending probability of the
    tag, at most ``limit`` (single-label, a tag nobody labelled yet: the items the model places
    least well, see :mod:`labelloop.learn.steering`)."""
    return _list(conn, project_id, tag, "likely", limit)


def unsure_ids(conn: Connection, *, project_id: int, tag: str, limit: int) -> list[int]:
    """The current run's ``unsure`` list for ``tag``: items nearest the tag's decision boundary
    first, at most ``limit``."""
    return _list(conn, project_id, tag, "unsure", limit)


def open_only(conn: Connection, *, project_id: int, ids: list[int]) -> list[int]:
    """The ``ids`` of the project's items still open for labelling (``n_labels <
    target_labels``), in the given order."""
    wanted = [int(i) for i in ids]
    open_: set[int] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        part = wanted[start:start + _IN_CHUNK]
        open_.update(conn.execute(
            select(items.c.id).where(items.c.project_id == project_id, items.c.id.in_(part),
                                     items.c.n_labels < items.c.target_labels)
        ).scalars())
    return [i for i in wanted if i in open_]


# ------------------------------------------------------------------------------ vectors
def write_vector_set(engine: Engine, *, project_id: int, featurizer: str, fingerprint: str,
                     chunks: Iterable[tuple[np.ndarray, np.ndarray]], now: datetime | None = None) -> int:
    """Write a vector set from ``(item ids, unit-length vectors)`` chunks, each in its own short
    transaction, and mark it complete. Returns the set's id (older sets stay until
    :func:`delete_vector_sets`)."""
    with writing(engine) as conn:
        set_id = conn.execute(insert(vector_sets).values(
            project_id=project_id, featurizer=featurizer, fingerprint=fingerprint, dims=0, n_items=0,
            complete=False, created_at=now or utcnow()).returning(vector_sets.c.id)).scalar_one()
    total, dims = 0, 0
    try:
        for k, (ids, vectors) in enumerate(chunks):
            ids = np.asarray(ids, dtype="<i8")
            vectors = np.asarray(vectors, dtype="<f2")
            dims = vectors.shape[1]
            with writing(engine) as conn:
                conn.execute(insert(item_vectors).values(set_id=set_id, chunk=k, item_ids=ids.tobytes(),
                                                         vectors=np.ascontiguousarray(vectors).tobytes()))
            total += len(ids)
        with writing(engine) as conn:
            conn.execute(update(vector_sets).where(vector_sets.c.id == set_id)
                         .values(dims=dims, n_items=total, complete=True))
    except BaseException:
        delete_vector_sets(engine, project_id=project_id, set_ids=[set_id])
        raise
    return int(set_id)


@dataclass(frozen=True)
class VectorSet:
    id: int
    featurizer: str
    fingerprint: str
    dims: int
    n_items: int


def latest_vector_set(conn: Connection, *, project_id: int) -> VectorSet | None:
    """The project's newest complete vector set."""
    row = conn.execute(
        select(vector_sets.c.id, vector_sets.c.featurizer, vector_sets.c.fingerprint, vector_sets.c.dims,
               vector_sets.c.n_items)
        .where(vector_sets.c.project_id == project_id, vector_sets.c.complete.is_(True))
        .order_by(vector_sets.c.id.desc()).limit(1)
    ).first()
    return None if row is None else VectorSet(int(row.id), row.featurizer, row.fingerprint, int(row.dims),
                                              int(row.n_items))


def delete_vector_sets(engine: Engine, *, project_id: int, set_ids: Iterable[int] | None = None,
                       keep: int | None = None) -> None:
    """Delete vector sets of the project: ``set_ids``, or every one but ``keep``."""
    with writing(engine) as conn:
        query = select(vector_sets.c.id).where(vector_sets.c.project_id == project_id)
        if set_ids is not None:
            query = query.where(vector_sets.c.id.in_([int(s) for s in set_ids]))
        if keep is not None:
            query = query.where(vector_sets.c.id != keep)
        doomed = [int(s) for s in conn.execute(query).scalars()]
        if doomed:
            conn.execute(delete(item_vectors).where(item_vectors.c.set_id.in_(doomed)))
            conn.execute(delete(vector_sets).where(vector_sets.c.id.in_(doomed)))


def load_vectors(conn: Connection, *, set_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(item ids ascending, float32 unit-length vectors) of a vector set."""
    id_parts, vector_parts = [], []
    dims = conn.execute(select(vector_sets.c.dims).where(vector_sets.c.id == set_id)).scalar_one()
    for row in conn.execute(select(item_vectors.c.item_ids, item_vectors.c.vectors)
                            .where(item_vectors.c.set_id == set_id).order_by(item_vectors.c.chunk)):
        id_parts.append(np.frombuffer(row.item_ids, dtype="<i8"))
        vector_parts.append(np.frombuffer(row.vectors, dtype="<f2").reshape(-1, dims))
    if not id_parts:
        return np.zeros(0, np.int64), np.zeros((0, dims), np.float32)
    ids = np.concatenate(id_parts).astype(np.int64)
    matrix = np.empty((len(ids), dims), dtype=np.float32)
    at = 0
    for part in vector_parts:  # no float16 copy of the whole matrix
        matrix[at:at + len(part)] = part
        at += len(part)
    order = np.argsort(ids, kind="stable")
    if not np.all(order[:-1] < order[1:]):
        ids, matrix = ids[order], matrix[order]
    return ids, matrix


class _VectorCache:
    """Per process: each project's newest vector set as a float32 matrix (one load per set),
    keyed by database (the engine's URL) and project."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._sets: dict[tuple[str, int], tuple[int, np.ndarray, np.ndarray]] = {}

    def get(self, conn: Connection, project_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        latest = conn.execute(
            select(func.max(vector_sets.c.id))
            .where(vector_sets.c.project_id == project_id, vector_sets.c.complete.is_(True))
        ).scalar()
        if latest is None:
            return None
        key = (str(conn.engine.url), project_id)
        held = self._sets.get(key)
        if held is not None and held[0] == latest:
            return held[1], held[2]
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per project at a time; the others wait for it
            held = self._sets.get(key)
            if held is None or held[0] != latest:
                ids, matrix = load_vectors(conn, set_id=latest)
                self._sets[key] = held = (latest, ids, matrix)
        return held[1], held[2]

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()


VECTORS = _VectorCache()


def similar_ids(conn: Connection, *, project_id: int, item_id: int, limit: int) -> list[int]:
    """The ``limit`` items nearest ``item_id`` by cosine of their vectors, best first (ties by
    item id), the item itself left out; [] while the item has no vector (no round since it came,
    or an empty text)."""
    row = conn.execute(select(items.c.project_id).where(items.c.id == int(item_id))).first()
    if row is None or row.project_id != project_id:
        raise NotFoundError(f"no item with id {item_id} in this project")
    if limit <= 0:
        return []
    held = VECTORS.get(conn, project_id)
    if held is None:
        return []
    ids, matrix = held
    at = int(np.searchsorted(ids, item_id))
    if at >= len(ids) or ids[at] != item_id:
        return []
    query = matrix[at]
    if not query.any():
        return []
    scores = matrix @ query
    scores[at] = -np.inf
    n = len(scores)
    k = min(int(limit), n - 1)
    if k <= 0:
        return []
    keys = -scores
    cut = np.partition(keys, k - 1)[k - 1]
    candidates = np.flatnonzero(keys <= cut)
    order = candidates[np.argsort(keys[candidates], kind="stable")][:k]
    order = order[np.isfinite(scores[order]) & (scores[order] > -np.inf)]
    zero = ~matrix[order].any(axis=1)
    return [int(i) for i in ids[order[~zero]]]
