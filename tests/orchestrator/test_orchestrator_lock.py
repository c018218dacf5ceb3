"""One orchestrator per project: the lock, contention between two orchestrators, lost locks,
and recovery after a crash."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text, update

from labelloop.errors import LockedError
from labelloop.orchestrator import ProjectLock, RoundHooks, orchestrate, request_retrain, run_round
from labelloop.store import reading, writing
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store.engine import is_sqlite
from labelloop.store.schema import orchestrator_locks


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_lock_admits_one_holder_at_a_time(bbc):
    pid = bbc.project().id
    first = ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="first", heartbeat=0.2)
    second = ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="second", heartbeat=0.2)
    assert first.try_acquire() is None
    try:
        time.sleep(0.8)  # several heartbeats: still held, never stale
        owner = second.try_acquire()
        assert owner is not None and owner[0] == "first"
        with pytest.raises(LockedError, match="another orchestrator holds project 'bbc' \\(holder first"):
            second.acquire()
    finally:
        first.release()
    assert second.try_acquire() is None
    second.release()


def test_a_dead_holder_loses_the_lock(bbc):
    pid = bbc.project().id
    dead = ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="dead", heartbeat=0.2)
    assert dead.try_acquire() is None
    heir = ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="heir", heartbeat=0.2)
    if is_sqlite(bbc.engine):
        dead._stop.set()  # the process froze: no more heartbeats; stale after 3 beats
        dead._thread.join()
        assert heir.try_acquire() is not None
        time.sleep(0.7)
    else:
        dead._conn.invalidate()  # the process died: PostgreSQL drops its session and the lock
    wait_for(lambda: heir.try_acquire() is None, timeout=10, what="the lock to be taken over")
    with writing(bbc.engine) as conn:
        assert store_runs.lock_holder(conn, project_id=pid)[0] == "heir"
        assert heir.still_mine(conn)
    heir.release()


def test_a_round_whose_lock_is_lost_is_abandoned_before_the_switch(bbc, monkeypatch):
    pid = bbc.project().id
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    monkeypatch.setattr(store_scores, "SQLITE_CHUNK_ROWS", 40)
    monkeypatch.setattr(store_scores, "POSTGRES_CHUNK_ROWS", 40)
    lock = ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="slow", heartbeat=0.1)
    lock.acquire()

    def taken_over(written: int, total: int) -> None:
        if written == 40:
            if is_sqlite(bbc.engine):  # another orchestrator found our row stale and took it
                with writing(bbc.engine) as conn:
                    conn.execute(update(orchestrator_locks).values(holder="intruder"))
            else:  # our session was cut: PostgreSQL released the advisory lock
                with bbc.engine.connect() as conn:
                    backend = lock._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            wait_for(lambda: lock.lost, timeout=10, what="the heartbeat to notice")

    try:
        result = run_round(bbc.engine, bbc.settings, project="bbc", lock=lock,
                           hooks=RoundHooks(after_chunk=taken_over))
    finally:
        lock.release()
    assert result.status == "abandoned" and "lost the orchestrator lock" in result.message
    with reading(bbc.engine) as conn:
        assert store_runs.current_run(conn, project_id=pid).id == first.run_id
        assert store_scores.count_scores(conn, run_id=result.run_id) == 0
        assert store_runs.get_run(conn, run_id=result.run_id).status == "failed"


def test_once_fails_at_once_when_another_orchestrator_holds_the_project(bbc):
    pid = bbc.project().id
    with ProjectLock(bbc.engine, project_id=pid, project_name="bbc", holder="host-a:123:abc"):
        started = time.monotonic()
        with pytest.raises(LockedError, match="another orchestrator holds project 'bbc' \\(holder host-a:123:abc"):
            orchestrate(bbc.engine, bbc.settings, project="bbc", once=True)
        assert time.monotonic() - started < 5
    with reading(bbc.engine) as conn:
        assert store_runs.list_runs(conn, project_id=pid) == []


def test_two_orchestrators_never_run_rounds_at_once(bbc, caplog):
    caplog.set_level(logging.INFO, logger="labelloop.orchestrator")
    pid = bbc.project().id
    rounds: dict[str, list] = {"A": [], "B": []}
    stops = {"A": threading.Event(), "B": threading.Event()}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            orchestrate(bbc.engine, bbc.settings, project="bbc", interval=0.1, heartbeat=0.5, stop=stops[name],
                        on_round=rounds[name].append)
        except BaseException as exc:  # reported below
            errors.append(exc)

    a = threading.Thread(target=worker, args=("A",))
    a.start()
    wait_for(lambda: len(rounds["A"]) == 1, what="A's first round (no version yet)")
    b = threading.Thread(target=worker, args=("B",))
    b.start()
    wait_for(lambda: "waiting: another orchestrator holds project bbc (holder" in caplog.text, what="B to wait")
    request_retrain(bbc.engine, project="bbc")
    wait_for(lambda: len(rounds["A"]) == 2, what="A's round on 'retrain now'")
    assert rounds["B"] == []
    stops["A"].set()
    a.join(30)
    request_retrain(bbc.engine, project="bbc")
    wait_for(lambda: len(rounds["B"]) == 1, what="B to take over and run a round")
    stops["B"].set()
    b.join(30)
    assert not errors and not a.is_alive() and not b.is_alive()
    with reading(bbc.engine) as conn:
        runs = sorted(store_runs.list_runs(conn, project_id=pid), key=lambda r: r.version)
        assert store_runs.lock_holder(conn, project_id=pid) is None  # both released
    assert [r.status for r in runs] == ["complete"] * 3
    for earlier, later in zip(runs, runs[1:]):
        assert earlier.finished_at <= later.created_at  # never two rounds at once


def test_restart_after_a_crash_fails_the_interrupted_run_and_carries_on(bbc):
    pid = bbc.project().id
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    # A crash mid-write: a 'running' run with some of its rows and a model file on disk.
    with writing(bbc.engine) as conn:
        crashed = store_runs.start_run(conn, project_id=pid, model_name="tfidf-logreg", strategy="margin",
                                       labels_used=40)
    orphan = bbc.settings.models_dir / "bbc" / "20260101T000000Z_0.5000.joblib"
    orphan.write_bytes(b"half a model")
    with writing(bbc.engine) as conn:
        store_runs.set_run_path(conn, run_id=crashed.id, path=str(orphan))
    store_scores.write_scores(bbc.engine, run_id=crashed.id, item_ids=np.array([1, 2, 3]),
                              priorities=np.array([3.0, 2.0, 1.0]))
    results = orchestrate(bbc.engine, bbc.settings, project="bbc", once=True)
    assert [r.status for r in results] == ["complete"] and results[0].version == 3
    with reading(bbc.engine) as conn:
        run = store_runs.get_run(conn, run_id=crashed.id)
        assert run.status == "failed" and "interrupted" in run.error
        assert store_scores.count_scores(conn, run_id=crashed.id) == 0
        assert store_scores.count_scores(conn, run_id=first.run_id) == 0  # superseded
        assert store_runs.current_run(conn, project_id=pid).version == 3
    assert not orphan.exists()
