"""The writer threads at shutdown: queued writes are finished before they stop, and a request
cancelled while its write was queued (Uvicorn's shutdown timeout) is never written."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text

from labelloop.server.dispatch import Dispatcher


def _count(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM meta WHERE key LIKE 'drain-%'")).scalar_one()


def _insert(key: str):
    return lambda conn: conn.execute(text("INSERT INTO meta (key, value) VALUES (:k, 'x')"), {"k": key})


def _run(scenario, failures: list[BaseException]) -> None:
    try:
        asyncio.run(scenario())
    except BaseException as exc:  # reported by the test
        failures.append(exc)


def test_stop_finishes_queued_writes_and_cancelled_ones_are_skipped(engine):
    dispatcher = Dispatcher(engine, threads=1)
    gate = threading.Event()
    inside = threading.Event()

    def blocking(conn) -> bool:
        inside.set()
        return gate.wait(30)

    async def scenario() -> None:
        blocked = asyncio.ensure_future(dispatcher.run(blocking))
        # wait until the writer is inside the first operation: what follows queues behind it
        assert await asyncio.get_running_loop().run_in_executor(None, inside.wait, 30)
        queued = [asyncio.ensure_future(dispatcher.run(_insert(f"drain-{i}"))) for i in range(5)]
        cancelled = asyncio.ensure_future(dispatcher.run(_insert("cancelled")))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        # the cancel reaches the writer's future through loop callbacks: let them run before
        # the writer is released (else it may take the job before it is cancelled)
        await asyncio.wait([cancelled])
        await asyncio.sleep(0.01)
        stopper = threading.Thread(target=dispatcher.stop)
        stopper.start()  # stop while writes are queued behind the blocked one
        gate.set()
        await asyncio.gather(blocked, *queued)
        await asyncio.get_running_loop().run_in_executor(None, stopper.join, 30)
        assert not stopper.is_alive()

    # in a thread of its own: another test's event loop may still run in this one (Playwright)
    failures: list[BaseException] = []
    runner = threading.Thread(target=lambda: _run(scenario, failures))
    runner.start()
    runner.join(60)
    assert not runner.is_alive() and not failures, failures
    with engine.connect() as conn:
        assert _count(conn) == 5
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key = 'cancelled'")).scalar_one() == 0
    assert dispatcher.operations == 6 and not dispatcher._threads
