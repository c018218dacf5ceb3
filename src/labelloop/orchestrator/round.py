"""One round of the model in the loop, against the database.

snapshot -> features (cached) -> fit -> cv -> save model file -> predict -> write scores as a
new version (chunked, invisible to the queue) -> switch ``projects.current_run_id`` in one
short transaction -> delete older versions' scores and prune model files.

Held-out design (:mod:`labelloop.orchestrator.heldout`): audit items are never trained on (nor
cross-validated) unless a serving order reached them; each model round predicts the held-out
ones and the stop set, and stores the audit estimate, the stability against the previous model
and the stopping advice in the run's metrics.

If anything fails or the round is stopped before the switch, the run is marked failed and its
rows deleted: labellers keep being served the previous version throughout.

A multi-label project's round trains on its final sets and writes each item's predicted set and
tag probabilities: see :mod:`labelloop.orchestrator.round_sets`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from labelloop.config import Settings
from labelloop.errors import LabelloopError, LockedError
from labelloop.learn import STOP_SET_SIZE, get_model_spec, get_strategy
from labelloop.orchestrator.compute import DIVERSITY_CANDIDATES, RoundOutput, compute_round
from labelloop.orchestrator.features import FeatureCache
from labelloop.orchestrator.heldout import PREVIOUS_RUNS, quality_metrics, read_labels
from labelloop.orchestrator.lock import ProjectLock
from labelloop.orchestrator.modelfiles import project_dir, prune_models, save_model
from labelloop.orchestrator.round_sets import (
    masks_of,
    set_metrics,
    set_quality_metrics,
    strategy_of,
    tag_order,
    targets,
)
from labelloop.orchestrator.steering import ensure_vectors, write_tag_lists
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store import steerlists as store_lists
from labelloop.store.projects import Project
from labelloop.store.schema import utcnow
from labelloop.store.setscores import write_set_scores

log = logging.getLogger("labelloop.orchestrator")
PHASES = ("snapshot", "features", "fit", "cv", "predict", "save", "write", "steer", "switch", "cleanup", "vectors")


class Abandoned(Exception):
    """Internal: the round was stopped before its switch (stop requested or lock lost)."""


@dataclass
class RoundHooks:
    """Test and simulation hooks. ``after_chunk(written, total)`` runs after each committed
    chunk of score rows; raising in it abandons the round like a crash would."""

    after_chunk: Callable[[int, int], None] | None = None


@dataclass
class RoundResult:
    project: str
    status: str  # "complete" or "abandoned"
    state: str | None = None  # "model" or "not_enough_labels"
    run_id: int | None = None
    version: int | None = None
    message: str | None = None
    labels_used: int = 0
    scored: int = 0
    cv: dict[str, Any] | None = None
    path: str | None = None
    features: str | None = None  # "cached", "updated" or "built"
    audit: dict[str, Any] | None = None  # the held-out audit estimate (model rounds)
    advice: dict[str, Any] | None = None  # the stopping advice (model rounds)
    # Wall seconds per phase (PHASES), "serving" (start to switch) and "total"; cpu: the
    # process's CPU seconds per phase (the database server's work is not in it).
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def model_seconds(self) -> float:
        """The pure model time: fit + cv + predict."""
        return sum(self.timings.get(k, 0.0) for k in ("fit", "cv", "predict"))


def feature_cache(settings: Settings, project: Project, featurizer: str) -> FeatureCache:
    directory = project_dir(settings.models_dir, project_name=project.name, project_id=project.id)
    return FeatureCache(directory / "features" / featurizer, featurizer, seed=project.seed)


def run_round(
    engine: Engine,
    settings: Settings,
    *,
    project: str,
    model: str | None = None,
    strategy: str | None = None,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    lock: ProjectLock | None = None,
    hooks: RoundHooks | None = None,
) -> RoundResult:
    """Run one round for ``project`` and return what it did, with per-phase timings (seconds).

    ``model``/``strategy`` override the project's settings. ``stop`` (set by SIGTERM) and a
    lost ``lock`` abandon the round cleanly before its switch (status "abandoned"). Any other
    error marks the run failed, deletes its rows and is raised again; the previous version
    keeps serving. Call it while holding the project's lock (:class:`ProjectLock`)."""
    hooks = hooks or RoundHooks()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t0 = started = time.perf_counter()
    cpu_started = time.process_time()

    def lap(name: str) -> None:
        nonlocal started, cpu_started
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - cpu_started
        started, cpu_started = time.perf_counter(), time.process_time()

    def check() -> None:
        if stop is not None and stop.is_set():
            raise Abandoned("stop requested")
        if lock is not None:
            try:
                lock.check()
            except LockedError as exc:
                raise Abandoned(str(exc)) from None

    # ---- snapshot (and validate the request before anything is written)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        snap = read_labels(conn, project=proj)
        stop_ids = store_runs.stop_set_ids(conn, project_id=proj.id, size=STOP_SET_SIZE)
        previous = store_runs.recent_model_runs(conn, project_id=proj.id, limit=PREVIOUS_RUNS)
    model_name = model or proj.setting("model")
    spec = get_model_spec(model_name, class_weight=proj.setting("class_weight"))
    if proj.multi_label:
        strategy_name = strategy_of(proj, strategy)
        tag_names, bits = tag_order(proj)
    else:
        strategy_name = strategy or proj.setting("strategy")
        get_strategy(strategy_name)
    lap("snapshot")

    # ---- features (cached; built or updated only when the pool changed)
    features, ids, featurizer, how = feature_cache(settings, proj, spec.featurizer).ensure(engine, project_id=proj.id)
    train_rows, train_ok = _rows_of(ids, snap.train_ids)
    closed_rows, _ = _rows_of(ids, snap.closed_ids)
    pool_rows = np.setdiff1d(np.arange(len(ids)), closed_rows)
    audit_rows, audit_ok = _rows_of(ids, snap.audit_ids)
    if proj.multi_label:  # 0/1 matrices over the active tags
        y, audit_y = targets(snap.train_tags[train_ok], bits), targets(snap.audit_tags[audit_ok], bits)
    else:  # tag names
        names = {t.id: t.name for t in proj.tags}
        y = np.array([names[t] for t in snap.train_tags[train_ok].tolist()], dtype=object)
        audit_y = np.array([names[t] for t in snap.audit_tags[audit_ok].tolist()], dtype=object)
    stop_rows, stop_ok = _rows_of(ids, stop_ids)
    lap("features")
    check()

    with writing(engine) as conn:
        run = store_runs.start_run(conn, project_id=proj.id, model_name=model_name, strategy=strategy_name,
                                   labels_used=int(len(y)), now=now)
    result = RoundResult(project=proj.name, status="abandoned", run_id=run.id, version=run.version,
                         labels_used=int(len(y)), features=how, timings=timings, cpu=cpu)
    path: Path | None = None
    try:
        out = compute_round(
            features, train_rows, y, pool_rows=pool_rows, model=model_name, strategy=strategy_name,
            exploration=float(proj.setting("exploration")), class_weight=proj.setting("class_weight"),
            seed=[proj.seed, run.version], check=check, eval_rows=audit_rows, eval_y=audit_y, stop_rows=stop_rows,
        )
        for name in ("fit", "cv", "predict"):
            timings[name] = out.timings.get(name, 0.0)
            cpu[name] = out.cpu.get(name, 0.0)
        started, cpu_started = time.perf_counter(), time.process_time()
        check()
        metrics = _metrics(proj, out, ids, y, n_items=len(ids), featurizer=spec.featurizer,
                           exploration=float(proj.setting("exploration")))
        if proj.multi_label:
            metrics.update(set_metrics(out, y, tags=tag_names, bits=bits))
        metrics["human_labels"] = snap.human_labels
        metrics["audit_reached"] = [int(i) for i in snap.reached]
        if out.state == "model":
            if proj.multi_label:
                metrics.update(set_quality_metrics(audit=out.audit, stop_ids=stop_ids[stop_ok],
                                                   stop_predicted=out.stop_predicted, tags=tag_names, bits=bits,
                                                   previous=previous))
            else:
                metrics.update(quality_metrics(
                    audit=out.audit, stop_ids=stop_ids[stop_ok], stop_tag_ids=_names_to_ids(proj, out.stop_predicted),
                    previous=previous,
                ))
            described = {key: metrics[key] for key in ("tags", "thresholds") if key in metrics}
            path = save_model(
                project_dir(settings.models_dir, project_name=proj.name, project_id=proj.id),
                now=now or utcnow(), macro_f1=None if out.cv is None else out.cv["macro_f1"],
                featurizer=featurizer, classifier=out.classifier,
                metadata={"project": proj.name, "version": run.version, "model": model_name,
                          "strategy": strategy_name, "labels_used": int(len(y)), "cv": metrics["cv"],
                          "created_at": (now or utcnow()).isoformat(), **described},
            )
            with writing(engine) as conn:
                store_runs.set_run_path(conn, run_id=run.id, path=str(path))
        lap("save")

        def after_chunk(written: int, total: int) -> None:
            if hooks.after_chunk is not None:
                hooks.after_chunk(written, total)
            check()

        if out.proba is not None:  # a multi-label model: predicted sets and tag probabilities
            write_set_scores(
                engine, run_id=run.id, item_ids=ids[out.pool_rows], priorities=out.priorities,
                confidences=out.confidence, predicted_masks=masks_of(out.proba >= out.thresholds, bits),
                proba=out.proba, after_chunk=after_chunk,
            )
        else:
            store_scores.write_scores(
                engine, run_id=run.id, item_ids=ids[out.pool_rows], priorities=out.priorities,
                predicted_tag_ids=_tag_ids(proj, out), confidences=out.confidence, after_chunk=after_chunk,
            )
        lap("write")
        write_tag_lists(engine, proj, run.id, out, ids)  # the likely / unsure lists (issue 13)
        check()
        lap("steer")
        with writing(engine) as conn:
            if lock is not None and not lock.still_mine(conn):
                raise Abandoned(f"lost the orchestrator lock of project {proj.name!r}")
            metrics["timings"] = dict(timings)
            superseded = store_runs.switch_to_run(conn, project_id=proj.id, run_id=run.id, metrics=metrics,
                                                  path=None if path is None else str(path), now=utcnow())
            if superseded is not None:  # the reached audit ids are read from the current run only
                store_runs.forget_metrics(conn, run=superseded, keys=["audit_reached"])
        lap("switch")
        timings["serving"] = time.perf_counter() - t0  # until the new version is what labellers get
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, Abandoned | LabelloopError) else traceback.format_exc(limit=5)
        _abandon(engine, run.id, path, f"abandoned: {reason}" if isinstance(exc, Abandoned) else reason)
        if isinstance(exc, Abandoned):
            log.warning("round of project %r abandoned (%s); version unchanged", proj.name, exc)
            result.message = str(exc)
            result.timings["total"] = time.perf_counter() - t0
            return result
        raise
    try:
        cleanup(engine, settings, project=proj)
    except Exception:  # the new version serves already; the next round or restart cleans up
        log.exception("%s: cleaning up older versions failed; will retry next round", proj.name)
    lap("cleanup")
    try:  # the similar queue's vectors, when the features changed (not needed by the switch)
        ensure_vectors(engine, proj, features, ids, spec.featurizer)
    except Exception:
        log.exception("%s: writing the item vectors failed; the similar queue keeps the older ones", proj.name)
    lap("vectors")
    timings["total"] = time.perf_counter() - t0
    result.status, result.state, result.message = "complete", out.state, out.message
    result.scored, result.cv, result.path = len(out.pool_rows), metrics["cv"], None if path is None else str(path)
    result.audit, result.advice = metrics.get("audit"), metrics.get("advice")
    return result


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of each wanted id in the sorted ``ids`` (and a mask of those found)."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(len(wanted), bool)
    rows = np.searchsorted(ids, wanted)
    found = (rows < len(ids)) & (ids[np.minimum(rows, len(ids) - 1)] == wanted)
    return rows[found], found


def _names_to_ids(proj: Project, names: np.ndarray | None) -> np.ndarray:
    """The tag id of each tag name."""
    by_name = {t.name: t.id for t in proj.tags}
    return np.array([by_name[str(n)] for n in ([] if names is None else names)], dtype=np.int64)


def _tag_ids(proj: Project, out: RoundOutput) -> np.ndarray | None:
    """The predicted tag id of each pool row (the classifier's classes are tag names)."""
    if out.classes is None:
        return None
    return _names_to_ids(proj, out.classes)[out.predicted_index]


def _metrics(proj: Project, out: RoundOutput, ids: np.ndarray, y: np.ndarray, *, n_items: int,
             featurizer: str, exploration: float) -> dict[str, Any]:
    """The run's metrics JSON: state, CV (also ``accuracy``/``macro_f1`` at the top level when
    there is one), labels per tag, pool size, and the score of the first served positions
    (label sets: the set keys are added by :func:`~labelloop.orchestrator.round_sets.set_metrics`)."""
    tags, counts = np.unique(y, return_counts=True) if y.ndim == 1 else (np.zeros(0), np.zeros(0))
    cv = None
    if out.cv is not None and y.ndim == 1:
        cv = {k: out.cv[k] for k in ("accuracy", "macro_f1", "folds", "n_labels", "confusion", "per_tag")}
        cv["labels"] = [str(t) for t in out.cv["labels"]]
    top = [
        {"item_id": int(ids[out.pool_rows[e["row"]]]), "score": e["score"], "score_rank": e["score_rank"]}
        for e in out.top
    ]
    headline = {} if cv is None else {"accuracy": cv["accuracy"], "macro_f1": cv["macro_f1"]}
    return {
        **headline,
        "state": out.state, "message": out.message, "cv": cv, "cv_message": out.cv_message,
        "exploration": exploration, "candidates": DIVERSITY_CANDIDATES,
        "labels": {str(t): int(c) for t, c in zip(tags, counts)},
        "items_total": int(n_items), "scored": int(len(out.pool_rows)), "featurizer": featurizer, "top": top,
    }


def _abandon(engine: Engine, run_id: int, path: Path | None, error: str) -> None:
    """Fail the run, delete its score rows and its model file (best effort, never raises)."""
    try:
        with writing(engine) as conn:
            store_runs.fail_run(conn, run_id=run_id, error=error)
        store_scores.delete_scores(engine, run_ids=[run_id])
        store_lists.delete_lists(engine, run_ids=[run_id])
    except Exception:  # the next orchestrator's recovery finishes the job
        log.exception("could not clean up run %s; it will be recovered later", run_id)
    if path is not None:
        path.unlink(missing_ok=True)


def recover(engine: Engine, *, project_id: int) -> list[int]:
    """After a crash (call while holding the project's lock): fail the runs left 'running'
    and delete their rows and files, and any leftover rows of older runs."""
    with writing(engine) as conn:
        interrupted = store_runs.interrupted_runs(conn, project_id=project_id)
        paths = [store_runs.get_run(conn, run_id=r).path for r in interrupted]
        for run_id in interrupted:
            store_runs.fail_run(conn, run_id=run_id, error="interrupted: the orchestrator stopped before the switch")
    with reading(engine) as conn:
        stale = store_runs.runs_with_stale_scores(conn, project_id=project_id)
    store_scores.delete_scores(engine, run_ids=sorted(set(interrupted) | set(stale)))
    store_lists.delete_stale_lists(engine, project_id=project_id)
    for p in paths:
        if p:
            Path(p).unlink(missing_ok=True)
    return interrupted


def cleanup(engine: Engine, settings: Settings, *, project: Project) -> None:
    """Delete the score rows of every version but the current one; keep the last
    ``settings.keep_models`` model files (and always the current one)."""
    with reading(engine) as conn:
        stale = store_runs.runs_with_stale_scores(conn, project_id=project.id)
        in_use = store_runs.paths_in_use(conn, project_id=project.id)
    store_scores.delete_scores(engine, run_ids=stale)
    store_lists.delete_stale_lists(engine, project_id=project.id)
    prune_models(project_dir(settings.models_dir, project_name=project.name, project_id=project.id),
                 keep=settings.keep_models, in_use=in_use)
