"""Graceful shutdown of `labelloop serve --workers 2` under load: SIGTERM lets the requests in
flight finish (their writes are made and answered), then the server exits with status 0."""

from __future__ import annotations

import contextlib
import fcntl
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from deploy_helpers import (
    Labeller,
    bad_answers,
    join_labellers,
    make_team,
    missing_acks,
    run_labellers,
    start_server,
    wait_for,
)
from sqlalchemy import Engine, text

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def writes_held(engine: Engine) -> Iterator[None]:
    """Block the server's labelling writes while inside: on PostgreSQL a lock on annotations
    (one table, so no deadlock with the server's transactions: every batch holding a label
    waits, and the writer threads with it), on SQLite the writers' cross-process lock file."""
    if engine.dialect.name == "sqlite":
        with open(f"{engine.url.database}-writer.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE annotations IN SHARE ROW EXCLUSIVE MODE"))
        yield


def answered(labellers: list[Labeller]) -> int:
    return sum(len(lb.answers) for lb in labellers)


def test_sigterm_under_load_lets_requests_in_flight_finish_and_exits_0(engine, db_url, tmp_path):
    team = make_team(engine, n_items=3000, n_labellers=8)
    server, url = start_server(db_url, tmp_path / "serve.log", env={"LABELLOOP_SHUTDOWN_TIMEOUT": "60"})
    stop = threading.Event()
    labellers = [Labeller(url, token, uid, stop, until_down=True) for token, uid in zip(team.tokens, team.user_ids)]
    try:
        run_labellers(labellers)
        wait_for(lambda: sum(len(lb.acked) for lb in labellers) >= 100, timeout=90, what="100 labels")
        with writes_held(engine):
            # every labeller ends up waiting for an answer that needs a write
            previous = -1
            while answered(labellers) != previous:
                previous = answered(labellers)
                time.sleep(1.0)
            terminated_at = time.monotonic()
            server.terminate()
            time.sleep(1.0)
            assert server.alive(), "the server quit with requests in flight:\n" + server.output()[-3000:]
        code = server.wait(timeout=90)
        join_labellers(labellers)
    finally:
        stop.set()
        server.kill()
    assert code == 0, server.output()[-3000:]
    finished = [a for lb in labellers for a in lb.answers if a.at > terminated_at]
    assert finished and all(a.status in (200, 201) for a in finished), finished  # in flight, then answered
    assert bad_answers(labellers, {200, 201, 204}) == []
    assert all(lb.unanswered <= 1 for lb in labellers)  # the first request after the server left
    assert missing_acks(engine, team.project.id, labellers) == []
    assert sum(len(lb.acked) for lb in labellers) >= 100
    log = server.output()
    assert "Traceback" not in log and "server stopped" in log



@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_ends_a_single_worker_server_and_its_orchestrator_with_status_0(engine, db_url, tmp_path, signum):
    make_team(engine, n_items=50, n_labellers=1)
    server, _url = start_server(db_url, tmp_path / "serve.log", workers=1, args=["--orchestrate"],
                                env={"LABELLOOP_ORCHESTRATE_INTERVAL": "3600", "LABELLOOP_MODELS_DIR": str(tmp_path)})
    try:
        wait_for(lambda: "orchestrator started" in server.output(), timeout=30, what="the orchestrator")
        server.proc.send_signal(signum)  # SIGTERM from a container stop, SIGINT from Ctrl+C
        code = server.wait(timeout=60)
    finally:
        server.kill()
    log = server.output()
    # not 143 (SIGTERM) nor 1 with "Aborted!" (SIGINT): Uvicorn re-raises the signal after its shutdown
    assert code == 0, log[-3000:]
    assert "orchestrator stopped" in log and "server stopped" in log
