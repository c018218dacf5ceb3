"""The orchestrator's loops: one project from the command line, or every project in the server.

``labelloop orchestrate PROJECT`` (:func:`orchestrate`) takes the project's lock and keeps it,
checking every ``interval`` seconds whether a round is due (:func:`labelloop.store.runs.round_due`:
no version yet, ``min_new_labels`` new labels, new items, or an admin's "retrain now").
A second orchestrator on the same project logs ``waiting: another orchestrator holds project
X (holder ...)`` and waits for the lock; with ``once=True`` it fails at once with
:class:`LockedError` instead. ``once=True`` runs exactly one round now, due or not.

``labelloop serve --orchestrate`` runs :func:`run_forever` in a background thread: each pass
visits every project, takes its lock only if free (another process's orchestrator keeps it
otherwise), recovers, runs a round if one is due and releases the lock. ``labelloop
orchestrate --all`` runs the same loop in its own process.

Every check of a project, whatever its outcome, is recorded as the orchestrator's heartbeat
(:func:`labelloop.store.heartbeats.record_check`, one upsert, with the mode ``project``,
``server`` or ``all``), so the model page can tell a working orchestrator from none.

A stop (SIGTERM/SIGINT set the ``stop`` event) abandons a round in progress cleanly before
its switch; a crash is recovered when the lock is next taken (:func:`recover`).

A project without items waits: one INFO line says so when it starts waiting (not at every
check), and no round runs until items arrive. A round that fails with one of labelloop's own
errors logs one WARNING line (no traceback); only an unexpected crash logs its traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from labelloop.config import Settings
from labelloop.errors import InvalidInputError, LabelloopError, LockedError
from labelloop.orchestrator.lock import HEARTBEAT_SECONDS, ProjectLock, default_holder, describe
from labelloop.orchestrator.round import Abandoned, RoundResult, recover, run_round
from labelloop.store import heartbeats as store_heartbeats
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store.items import has_items

log = logging.getLogger("labelloop.orchestrator")
MAX_BACKOFF_SECONDS = 600.0


def summary(result: RoundResult) -> str:
    """One log line about a round."""
    if result.status != "complete":
        return f"{result.project}: round abandoned ({result.message}); version unchanged"
    t = result.timings
    what = "cold-start order" if result.state != "model" else "model"
    cv = result.cv
    if cv and "micro_f1" in cv:  # label sets
        score = (f", CV micro-F1 {cv['micro_f1']:.3f} macro-F1 {cv['macro_f1']:.3f} "
                 f"exact sets {cv['subset_accuracy']:.3f}")
    else:
        score = f", CV accuracy {cv['accuracy']:.3f} macro-F1 {cv['macro_f1']:.3f}" if cv else ""
    audit = result.audit or {}
    if audit.get("micro_f1") is not None:
        score += f", audit micro-F1 {audit['micro_f1']:.3f} on {audit['labelled']} items"
    elif audit.get("accuracy") is not None:
        score += f", audit accuracy {audit['accuracy']:.3f} on {audit['labelled']} items"
    why = f" ({result.message})" if result.state != "model" and result.message else ""
    return (
        f"{result.project}: version {result.version} serving ({what}{why}), {result.labels_used} labels, "
        f"{result.scored} items scored{score}; {t.get('total', 0):.1f}s "
        f"(model {result.model_seconds:.1f}s, write {t.get('write', 0):.1f}s)"
    )


class Waits:
    """What each project is waiting for, so that the log says it once per change of state."""

    def __init__(self) -> None:
        self._last: dict[str, str | None] = {}

    def note(self, project: str, waiting: str | None) -> None:
        if waiting is not None and self._last.get(project) != waiting:
            log.info("%s: waiting for %s", project, waiting,
                     extra={"fields": {"project": project, "waiting_for": waiting}})
        self._last[project] = waiting


def _no_items(project: str) -> str:
    return f"items: the project has none yet (add them with `labelloop import {project} FILE ...`)"


def round_fields(result: RoundResult) -> dict[str, object]:
    """A round's structured log fields (for ``LABELLOOP_LOG_FORMAT=json``)."""
    return {
        "project": result.project, "version": result.version, "run_id": result.run_id, "status": result.status,
        "state": result.state, "labels": result.labels_used, "scored": result.scored,
        "macro_f1": None if not result.cv else result.cv.get("macro_f1"),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
    }


def orchestrate(
    engine: Engine,
    settings: Settings,
    *,
    project: str,
    once: bool = False,
    interval: float | None = None,
    min_new_labels: int | None = None,
    model: str | None = None,
    strategy: str | None = None,
    stop: threading.Event | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Work on ``project`` until ``stop`` is set (or one round with ``once``); returns the rounds."""
    stop = stop or threading.Event()
    interval = settings.orchestrate_interval if interval is None else interval
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
    lock = ProjectLock(engine, project_id=proj.id, project_name=proj.name, heartbeat=heartbeat)
    owner = lock.try_acquire()
    if owner is not None and once:
        raise LockedError(
            f"another orchestrator holds project {proj.name!r} ({describe(owner)}); "
            "without --once this command waits for it"
        )
    if owner is not None:
        log.info("waiting: another orchestrator holds project %s (%s)", proj.name, describe(owner))
        while owner is not None:
            if stop.wait(min(interval, heartbeat)):
                return []
            owner = lock.try_acquire()
        log.info("%s: lock taken over; starting", proj.name)
    results: list[RoundResult] = []
    waits = Waits()
    try:
        if once:
            with reading(engine) as conn:
                if not has_items(conn, project_id=proj.id):
                    raise InvalidInputError(f"project {proj.name!r} has no items to train on; "
                                            f"add them with `labelloop import {proj.name} FILE ...`")
        failed = recover(engine, project_id=proj.id)
        if failed:
            log.warning("%s: marked interrupted run(s) %s as failed; the last complete version serves",
                        proj.name, failed)
        failures = 0
        while not stop.is_set():
            reason = "--once" if once else _due(engine, proj.name, min_new_labels, waits)
            if reason is not None:
                log.info("%s: round starting (%s)", proj.name, reason,
                         extra={"fields": {"project": proj.name, "reason": reason}})
                try:
                    result = _round(engine, settings, project=proj.name, model=model, strategy=strategy,
                                    stop=stop, lock=lock)
                except LabelloopError as exc:
                    if once:
                        raise
                    log.warning("%s: round failed (%s); the previous version keeps serving", proj.name, exc)
                    result = None
                except Exception:
                    if once:
                        raise
                    log.exception("%s: round crashed; the previous version keeps serving", proj.name)
                    result = None
                failures = 0 if result is not None else failures + 1
                if result is not None:
                    log.info(summary(result), extra={"fields": round_fields(result)})
                    results.append(result)
                    if on_round is not None:
                        on_round(result)
                if lock.lost:
                    raise LockedError(f"lost the orchestrator lock of project {proj.name!r}")
            _checked(engine, proj.id, lock.holder, "project")
            if once:
                break
            # After failures, back off (up to 10 minutes) instead of failing every interval.
            stop.wait(min(interval * 2**failures, max(interval, MAX_BACKOFF_SECONDS)))
    finally:
        lock.release()
    return results


def _round(engine: Engine, settings: Settings, *, project: str, **options: object) -> RoundResult:
    """:func:`run_round`; a stop (or a lost lock) before the round created its run is an
    abandoned round too, not a crash."""
    try:
        return run_round(engine, settings, project=project, **options)  # type: ignore[arg-type]
    except Abandoned as exc:
        return RoundResult(project=project, status="abandoned", message=str(exc))


def _due(engine: Engine, project: str, min_new_labels: int | None, waits: Waits) -> str | None:
    """Why a round of ``project`` is due, or None (also while it waits for items)."""
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        if not has_items(conn, project_id=proj.id):
            waits.note(project, _no_items(project))
            return None
        waits.note(project, None)
        threshold = int(min_new_labels if min_new_labels is not None else proj.setting("min_new_labels"))
        return store_runs.round_due(conn, project=proj, min_new_labels=threshold)


def _checked(engine: Engine, project_id: int, holder: str, mode: str) -> None:
    """Record this orchestrator's check of a project; a failure to record is logged, not raised."""
    try:
        with writing(engine) as conn:
            store_heartbeats.record_check(conn, project_id=project_id, holder=holder, mode=mode)
    except Exception as exc:  # the check itself went through; the next one records again
        log.warning("could not record the orchestrator's check of project %s: %s", project_id,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def run_pass(engine: Engine, settings: Settings, *, stop: threading.Event | None = None, mode: str = "server",
             holder: str | None = None, waits: Waits | None = None) -> list[RoundResult]:
    """Visit every project once: with its lock free, recover and run a round if one is due.
    Each project it checks gets a heartbeat (``mode``: ``server`` or ``all``; ``holder``: this
    process, by default a new ``host:pid:nonce``). ``waits`` (kept across passes) says what a
    project waits for once, not at every pass."""
    holder = holder or default_holder()
    waits = waits or Waits()
    results = []
    with reading(engine) as conn:
        names = store_projects.list_project_names(conn)
    for name in names:
        if stop is not None and stop.is_set():
            break
        try:
            with reading(engine) as conn:
                proj = store_projects.get_project(conn, name=name)
            lock = ProjectLock(engine, project_id=proj.id, project_name=proj.name, holder=holder)
            if lock.try_acquire() is not None:
                continue  # another orchestrator works on it
            try:
                recover(engine, project_id=proj.id)
                reason = _due(engine, name, None, waits)
                if reason is not None:
                    log.info("%s: round starting (%s)", name, reason,
                             extra={"fields": {"project": name, "reason": reason}})
                    result = _round(engine, settings, project=name, stop=stop, lock=lock)
                    log.info(summary(result), extra={"fields": round_fields(result)})
                    results.append(result)
            finally:
                _checked(engine, proj.id, holder, mode)
                lock.release()
        except LabelloopError as exc:
            log.warning("%s: round failed (%s); the previous version keeps serving", name, exc)
        except Exception:
            log.exception("%s: round failed; the previous version keeps serving", name)
    return results


def run_forever(settings: Settings, stop_event: threading.Event, *, engine: Engine | None = None,
                mode: str = "server") -> None:
    """The server's background orchestrator (``mode="server"``; ``"all"`` for ``labelloop
    orchestrate --all``): a pass over all projects every ``settings.orchestrate_interval``
    seconds until ``stop_event`` is set."""
    holder = default_holder()  # one per process: its heartbeats and locks name it
    own = engine is None
    engine = engine or open_engine(settings.database_url)
    log.info("orchestrator started (checking every %.0fs)", settings.orchestrate_interval)
    waits = Waits()
    try:
        while not stop_event.is_set():
            try:
                run_pass(engine, settings, stop=stop_event, mode=mode, holder=holder, waits=waits)
            except Exception:
                log.exception("orchestrator pass failed")
            stop_event.wait(settings.orchestrate_interval)
    finally:
        if own:
            engine.dispose()
        log.info("orchestrator stopped")
