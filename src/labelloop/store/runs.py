"""The model-run registry: versions, the atomic switch, recovery, and the orchestrator lock row.

A round (see :mod:`labelloop.orchestrator`) goes through these states::

    start_run()          new model_runs row, status 'running' (its score rows are written next,
                         invisible to the queue, which only reads projects.current_run_id)
    switch_to_run()      ONE short transaction: status 'complete', projects.current_run_id
    fail_run()           status 'failed'; its score rows are deleted (store.scores)

A run left 'running' by a crash is found by :func:`interrupted_runs` once the next orchestrator
holds the project's lock, and failed. Bulk score writes and deletes live in
:mod:`labelloop.store.scores`.

The lock row (``orchestrator_locks``) names the orchestrator working on a project and carries
a heartbeat. On SQLite it *is* the lock (a row whose heartbeat is older than ``stale_after``
may be taken over); on PostgreSQL the lock is an advisory lock and the row only tells others
who holds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from labelloop.errors import ConflictError, NotFoundError
from labelloop.store.projects import Project
from labelloop.store.schema import (
    annotations,
    assignments,
    item_scores,
    items,
    model_runs,
    orchestrator_locks,
    projects,
    score_ranks,
    utcnow,
)

RUN_COLUMNS = (
    model_runs.c.id, model_runs.c.project_id, model_runs.c.version, model_runs.c.status,
    model_runs.c.model_name, model_runs.c.strategy, model_runs.c.labels_used, model_runs.c.metrics,
    model_runs.c.path, model_runs.c.error, model_runs.c.created_at, model_runs.c.finished_at,
)


@dataclass(frozen=True)
class ModelRun:
    """One row of ``model_runs``. ``metrics["state"]`` is ``"model"`` when a classifier was
    trained, ``"not_enough_labels"`` when the round served the cold-start order instead."""

    id: int
    project_id: int
    version: int
    status: str
    model_name: str
    strategy: str
    labels_used: int
    metrics: dict[str, Any] | None
    path: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def has_model(self) -> bool:
        return bool(self.metrics) and self.metrics.get("state") == "model"

    @property
    def cv(self) -> dict[str, Any] | None:
        return (self.metrics or {}).get("cv")

    @property
    def human_labels(self) -> int:
        """Final human labels when the run started (training + held-out audit labels; older
        runs did not record it: their training labels)."""
        return int((self.metrics or {}).get("human_labels", self.labels_used))


def _run(row: Any) -> ModelRun:
    return ModelRun(*row)


# ----------------------------------------------------------------------------- registry


def start_run(
    conn: Connection,
    *,
    project_id: int,
    model_name: str,
    strategy: str,
    labels_used: int,
    now: datetime | None = None,
) -> ModelRun:
    """Add the project's next version, status 'running'. Commit before writing its scores."""
    version = conn.execute(
        select(func.coalesce(func.max(model_runs.c.version), 0) + 1).where(model_runs.c.project_id == project_id)
    ).scalar_one()
    run_id = conn.execute(
        insert(model_runs).values(
            project_id=project_id, version=version, status="running", model_name=model_name,
            strategy=strategy, labels_used=labels_used, created_at=now or utcnow(),
        )
    ).inserted_primary_key[0]
    return get_run(conn, run_id=run_id)


def get_run(conn: Connection, *, run_id: int) -> ModelRun:
    row = conn.execute(select(*RUN_COLUMNS).where(model_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no model run with id {run_id}")
    return _run(row)


def list_runs(conn: Connection, *, project_id: int, limit: int | None = None, status: str | None = None
              ) -> list[ModelRun]:
    """The project's runs (only those with ``status``, if given), newest version first."""
    query = select(*RUN_COLUMNS).where(model_runs.c.project_id == project_id).order_by(model_runs.c.version.desc())
    if status is not None:
        query = query.where(model_runs.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    return [_run(r) for r in conn.execute(query)]


def current_run(conn: Connection, *, project_id: int) -> ModelRun | None:
    """The run the queue serves (``projects.current_run_id``), read fresh from the database."""
    run_id = conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).scalar_one_or_none()
    return None if run_id is None else get_run(conn, run_id=run_id)


def current_model(conn: Connection, *, project_id: int) -> dict[str, Any] | None:
    """The serving model for ``status --json``: version, created_at, labels_used, cv
    (accuracy, macro_f1; null without cross-validation) and path; None before the first
    complete round that trained a model (a cold-start order is not a model)."""
    run = current_run(conn, project_id=project_id)
    if run is None or not run.has_model:
        return None
    cv = run.cv
    return {
        "version": run.version,
        "created_at": run.created_at.isoformat(),
        "labels_used": run.labels_used,
        "cv": None if cv is None else {"accuracy": cv["accuracy"], "macro_f1": cv["macro_f1"]},
        "path": run.path,
    }


def switch_to_run(
    conn: Connection,
    *,
    project_id: int,
    run_id: int,
    metrics: dict[str, Any],
    path: str | None,
    now: datetime | None = None,
) -> ModelRun | None:
    """The atomic switch: mark the run complete and make it the project's current run.

    Call inside one short write transaction. Raises ConflictError when the run is no longer
    'running' (another orchestrator took the project over and failed it). Returns the run
    that was current before (None if none)."""
    done = conn.execute(
        update(model_runs)
        .where(model_runs.c.id == run_id, model_runs.c.status == "running")
        .values(status="complete", metrics=metrics, path=path, finished_at=now or utcnow())
    )
    if done.rowcount != 1:
        raise ConflictError(f"model run {run_id} is no longer running; not switching to it")
    previous = current_run(conn, project_id=project_id)
    conn.execute(update(projects).where(projects.c.id == project_id).values(current_run_id=run_id))
    return previous


def forget_metrics(conn: Connection, *, run: ModelRun, keys: Sequence[str]) -> None:
    """Remove ``keys`` from a finished run's metrics (as read into ``run``): figures its
    successor carries forward, which nothing reads from this run any more. No write when none
    of them is there."""
    metrics = run.metrics or {}
    if any(key in metrics for key in keys):
        kept = {key: value for key, value in metrics.items() if key not in keys}
        conn.execute(update(model_runs).where(model_runs.c.id == run.id).values(metrics=kept))


def set_run_path(conn: Connection, *, run_id: int, path: str) -> None:
    """Record the model file of a running run (so a crash can delete it)."""
    conn.execute(update(model_runs).where(model_runs.c.id == run_id).values(path=path))


def fail_run(conn: Connection, *, run_id: int, error: str, metrics: dict[str, Any] | None = None,
             now: datetime | None = None) -> None:
    """Mark a running run failed (its score rows must then be deleted: store.scores)."""
    values: dict[str, Any] = {"status": "failed", "error": error[:4000], "finished_at": now or utcnow()}
    if metrics is not None:
        values["metrics"] = metrics
    conn.execute(update(model_runs).where(model_runs.c.id == run_id, model_runs.c.status == "running").values(**values))


def interrupted_runs(conn: Connection, *, project_id: int) -> list[int]:
    """Ids of the project's runs still 'running' (only meaningful while holding its lock)."""
    return list(
        conn.execute(
            select(model_runs.c.id).where(model_runs.c.project_id == project_id, model_runs.c.status == "running")
        ).scalars()
    )


def runs_with_stale_scores(conn: Connection, *, project_id: int) -> list[int]:
    """Runs of the project, other than the current one, that still have score rows."""
    current = conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).scalar_one()
    run_ids = select(model_runs.c.id).where(
        model_runs.c.project_id == project_id, model_runs.c.status != "running"
    )
    if current is not None:
        run_ids = run_ids.where(model_runs.c.id != current)
    has_rows = select(item_scores.c.run_id).where(item_scores.c.run_id == model_runs.c.id).exists()
    return list(conn.execute(run_ids.where(has_rows)).scalars())


def paths_in_use(conn: Connection, *, project_id: int) -> set[str]:
    """Model file paths of the project's current and running runs (never to be pruned)."""
    current = conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).scalar_one()
    cond = model_runs.c.status == "running"
    if current is not None:
        cond = or_(cond, model_runs.c.id == current)
    rows = conn.execute(
        select(model_runs.c.path).where(model_runs.c.project_id == project_id, cond, model_runs.c.path.is_not(None))
    )
    return set(rows.scalars())


# ----------------------------------------------------------------------------- when to train


def request_retrain(conn: Connection, *, project_id: int, now: datetime | None = None) -> datetime:
    """Ask the orchestrator for a round now ("retrain now"); returns the request time."""
    now = now or utcnow()
    result = conn.execute(update(projects).where(projects.c.id == project_id).values(retrain_requested_at=now))
    if result.rowcount != 1:
        raise NotFoundError(f"no project with id {project_id}")
    return now


def retrain_pending(conn: Connection, *, project_id: int) -> datetime | None:
    """The time of an admin's "retrain now" that no round has started after yet, else None."""
    requested = conn.execute(
        select(projects.c.retrain_requested_at).where(projects.c.id == project_id)
    ).scalar_one_or_none()
    latest = conn.execute(
        select(func.max(model_runs.c.created_at)).where(model_runs.c.project_id == project_id)
    ).scalar_one()
    return requested if requested is not None and (latest is None or requested > latest) else None


def count_human_labels(conn: Connection, *, project_id: int) -> int:
    """Items with a final human label (the training set plus the held-out audit items); in a
    multi-label project, items with a final set."""
    multi = conn.execute(select(projects.c.multi_label).where(projects.c.id == project_id)).scalar()
    column = items.c.label_mask if multi else items.c.label_tag_id
    return conn.execute(
        select(func.count()).where(
            items.c.project_id == project_id, column.is_not(None), items.c.label_source == "human"
        )
    ).scalar_one()


def round_due(conn: Connection, *, project: Project, min_new_labels: int) -> str | None:
    """Why a round should run now, or None: no version yet, an admin's retrain request newer
    than the last run, at least ``min_new_labels`` new labels since the current version, or
    items added since it (they have no score yet)."""
    if retrain_pending(conn, project_id=project.id) is not None:
        return "retrain requested"
    current = current_run(conn, project_id=project.id)
    if current is None:
        return "no version yet"
    labels_now = count_human_labels(conn, project_id=project.id)
    if labels_now - current.human_labels >= min_new_labels:
        return f"{labels_now - current.human_labels} new labels"
    items_then = (current.metrics or {}).get("items_total")
    items_now = conn.execute(select(func.count()).where(items.c.project_id == project.id)).scalar_one()
    if items_then is not None and items_now != items_then:
        return f"{items_now - items_then:+d} items since version {current.version}"
    return None


# ----------------------------------------------------------------------------- snapshot


def label_snapshot(conn: Connection, *, project_id: int) -> dict[str, np.ndarray]:
    """The labels a round needs and the items not to be scored, in one read.

    Returns ``train_ids`` / ``train_tags`` (items with a final human label and no audit
    annotation; conflicts excluded); ``audit_ids`` / ``audit_tags`` (items with an audit
    annotation and a final human label) and ``audit_all_ids`` (every item with an audit
    annotation, conflicts too): the orchestrator decides which audit items stay held out; and
    ``closed_ids``: items needing no more labels and having a final label (audit items among
    them too). Only items with a label or an annotation are read, through indexes (never the
    whole pool)."""
    columns = (items.c.id, items.c.label_tag_id, items.c.label_source, items.c.n_labels < items.c.target_labels)
    labelled = conn.execute(
        select(*columns).where(items.c.project_id == project_id, items.c.label_tag_id.is_not(None))
    ).all()
    annotated = select(annotations.c.item_id).where(annotations.c.project_id == project_id).distinct().subquery()
    unresolved = conn.execute(  # labels but no final one (conflicts; imported labels are annotations too)
        select(*columns)
        .select_from(items.join(annotated, annotated.c.item_id == items.c.id))
        .where(items.c.label_tag_id.is_(None))
    ).all()
    audited = set(
        conn.execute(
            select(annotations.c.item_id)
            .where(annotations.c.project_id == project_id, annotations.c.is_audit.is_(True))
            .distinct()
        ).scalars()
    )
    rows = sorted(labelled + unresolved, key=lambda r: r[0])
    train = [(r[0], r[1]) for r in rows if r[1] is not None and r[2] == "human" and r[0] not in audited]
    held_out = [(r[0], r[1]) for r in rows if r[1] is not None and r[2] == "human" and r[0] in audited]
    closed = [r[0] for r in rows if r[1] is not None and not r[3]]
    return {
        "train_ids": np.array([t[0] for t in train], dtype=np.int64),
        "train_tags": np.array([t[1] for t in train], dtype=np.int64),
        "audit_ids": np.array([t[0] for t in held_out], dtype=np.int64),
        "audit_tags": np.array([t[1] for t in held_out], dtype=np.int64),
        "audit_all_ids": np.array(sorted(audited), dtype=np.int64),
        "closed_ids": np.array(closed, dtype=np.int64),
    }


def audit_items_reached(conn: Connection, *, project_id: int, run: ModelRun | None, audit_ids: Any) -> np.ndarray:
    """Which of the audit items ``audit_ids`` the serving order of ``run`` reached while it was
    the current run: those it ranked at or above the k-th best item that was not an audit item,
    k being the items served by the default queue (non-audit, non-steered claims; steered
    queues reach audit items by their own lists, :mod:`labelloop.store.steerqueue`) since the run
    became current: the rest were passed over by the model. With no run yet every audit item
    counts as reached (the serving order was the seeded random order the audit draws follow)."""
    wanted = np.asarray(audit_ids, dtype=np.int64)
    if run is None or len(wanted) == 0:
        return wanted
    since = run.finished_at or run.created_at
    k = conn.execute(
        select(func.count(func.distinct(assignments.c.item_id))).where(
            assignments.c.project_id == project_id, assignments.c.is_audit.is_(False),
            assignments.c.steered.is_(False),  # steered queues walk their own lists (store/steerqueue.py)
            assignments.c.leased_at >= since,
        )
    ).scalar_one()
    if not k:
        return np.zeros(0, dtype=np.int64)
    priority: dict[int, float] = {}
    for start in range(0, len(wanted), 1000):
        chunk = [int(i) for i in wanted[start : start + 1000]]
        priority.update((i, p) for i, p in conn.execute(
            select(item_scores.c.item_id, item_scores.c.priority)
            .where(item_scores.c.run_id == run.id, item_scores.c.item_id.in_(chunk))
        ))
    head = conn.execute(
        select(score_ranks.c.item_id, score_ranks.c.priority)
        .where(score_ranks.c.run_id == run.id)
        .order_by(score_ranks.c.rank)
        .limit(int(k) + len(priority))
    ).all()
    others = [p for i, p in head if i not in priority][: int(k)]
    watermark = others[-1] if len(others) == k else -np.inf
    return np.array(sorted(i for i, p in priority.items() if p >= watermark), dtype=np.int64)


def stop_set_ids(conn: Connection, *, project_id: int, size: int) -> np.ndarray:
    """Ids of the project's ``size`` items with the largest ``rand`` (labelled or not), ascending:
    a fixed random sample on which consecutive models' predictions are compared. The largest
    keys, because audit draws take the smallest: the two samples stay apart."""
    ids = conn.execute(
        select(items.c.id).where(items.c.project_id == project_id)
        .order_by(items.c.rand.desc(), items.c.id).limit(size)
    ).scalars()
    return np.sort(np.fromiter(ids, dtype=np.int64))


def recent_model_runs(conn: Connection, *, project_id: int, limit: int) -> list[ModelRun]:
    """Up to ``limit`` of the project's complete runs that trained a model, newest first
    (cold-start and failed runs are passed over)."""
    return [run for run in list_runs(conn, project_id=project_id, status="complete") if run.has_model][:limit]


def metric_number(value: Any) -> float | None:
    """A finite number from a run's metrics JSON, else None (the JSON is read defensively: runs
    made by older versions lack keys)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def run_quality(run: ModelRun | None) -> dict[str, Any]:
    """The held-out audit estimate and the stopping advice in a model run's metrics, read
    defensively (runs made before the audit lack them; every reader goes through here):

    - ``audit``: ``{"labelled", "correct", "accuracy", "ci95"}`` (accuracy None before any audit
      label, ci95 ``[low, high]`` or None); None when the run has no model or no audit figures;
    - ``advice``: ``{"stop", "message"}``; None when the run has no model or no advice."""
    metrics = (run.metrics or {}) if run is not None and run.has_model else {}
    audit, advice = metrics.get("audit"), metrics.get("advice")
    advice = advice if isinstance(advice, dict) else {}
    estimate = None
    if isinstance(audit, dict) and audit:
        ci95 = audit.get("ci95")
        bounds = [metric_number(v) for v in ci95] if isinstance(ci95, (list, tuple)) and len(ci95) == 2 else [None]
        estimate = {
            "labelled": int(metric_number(audit.get("labelled")) or 0),
            "correct": int(metric_number(audit.get("correct")) or 0),
            "accuracy": metric_number(audit.get("accuracy")),
            "ci95": None if None in bounds else bounds,
        }
    message = advice.get("message")
    return {
        "audit": estimate,
        "advice": {"stop": advice.get("stop") is True, "message": str(message)} if message else None,
    }


def quality_summary(conn: Connection, *, project_id: int) -> dict[str, Any]:
    """``audit`` (``labelled``, ``accuracy``, ``ci95``) and ``advice`` (``stop``, ``message``)
    of the serving model (:func:`run_quality`), for ``status --json``; labelled 0, nulls and no
    advice before a model."""
    quality = run_quality(current_run(conn, project_id=project_id))
    audit = quality["audit"] or {}
    return {
        "audit": {"labelled": audit.get("labelled", 0), "accuracy": audit.get("accuracy"), "ci95": audit.get("ci95")},
        "advice": quality["advice"],
    }


# ----------------------------------------------------------------------------- lock row


def claim_lock_row(
    conn: Connection, *, project_id: int, holder: str, stale_after: float, now: datetime | None = None,
    dead_holder: str | None = None,
) -> tuple[str, datetime] | None:
    """Take the project's lock row if it is free, stale (heartbeat older than ``stale_after``
    seconds), ours already, or held by ``dead_holder`` (known dead). Returns None when taken,
    else the live (holder, heartbeat_at). Call in a write transaction (on SQLite, BEGIN
    IMMEDIATE makes check-and-set atomic)."""
    now = now or utcnow()
    row = conn.execute(
        select(orchestrator_locks.c.holder, orchestrator_locks.c.heartbeat_at)
        .where(orchestrator_locks.c.project_id == project_id)
        .with_for_update()
    ).first()
    if row is None:
        conn.execute(insert(orchestrator_locks).values(project_id=project_id, holder=holder, heartbeat_at=now))
        return None
    if row.holder not in (holder, dead_holder) and row.heartbeat_at > now - timedelta(seconds=stale_after):
        return (row.holder, row.heartbeat_at)
    conn.execute(
        update(orchestrator_locks)
        .where(orchestrator_locks.c.project_id == project_id)
        .values(holder=holder, heartbeat_at=now)
    )
    return None


def heartbeat_lock_row(conn: Connection, *, project_id: int, holder: str, now: datetime | None = None) -> bool:
    """Refresh our heartbeat; False if the row is no longer ours (we lost the lock)."""
    result = conn.execute(
        update(orchestrator_locks)
        .where(and_(orchestrator_locks.c.project_id == project_id, orchestrator_locks.c.holder == holder))
        .values(heartbeat_at=now or utcnow())
    )
    return result.rowcount == 1


def holds_lock_row(conn: Connection, *, project_id: int, holder: str) -> bool:
    found = conn.execute(
        select(orchestrator_locks.c.holder).where(orchestrator_locks.c.project_id == project_id)
    ).scalar_one_or_none()
    return found == holder


def release_lock_row(conn: Connection, *, project_id: int, holder: str) -> None:
    conn.execute(
        orchestrator_locks.delete().where(
            orchestrator_locks.c.project_id == project_id, orchestrator_locks.c.holder == holder
        )
    )


def lock_holder(conn: Connection, *, project_id: int) -> tuple[str, datetime] | None:
    """(holder, last heartbeat) of the project's lock row, if any (it may be stale)."""
    row = conn.execute(
        select(orchestrator_locks.c.holder, orchestrator_locks.c.heartbeat_at).where(
            orchestrator_locks.c.project_id == project_id
        )
    ).first()
    return None if row is None else (row.holder, row.heartbeat_at)
