"""A writer operation that fails for a passing reason (a lost connection, a deadlock) runs again
in a fresh transaction; one that fails for good fails once. Real database failures, no mocks."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from labelloop.server.dispatch import TRANSIENT_ATTEMPTS, Dispatcher, is_transient


def _run(dispatcher: Dispatcher, op):
    async def go():
        return await dispatcher.run(op)

    # in a thread of its own: another test's event loop may still run in this one (Playwright)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result(timeout=60)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # a backend that ends its own connection
def test_an_operation_whose_connection_dies_runs_again_on_a_new_one(engine):
    calls = []

    def op(conn):
        calls.append(1)
        if len(calls) == 1:
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('retried', 'x')"))
        return "done"

    dispatcher = Dispatcher(engine, threads=1)
    try:
        assert _run(dispatcher, op) == "done"
    finally:
        dispatcher.stop()
    assert len(calls) == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key = 'retried'")).scalar_one() == 1


def test_a_lasting_database_error_fails_once_and_leaves_nothing(engine):
    calls = []

    def op(conn):
        calls.append(1)
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('half', 'x')"))
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    dispatcher = Dispatcher(engine, threads=1)
    try:
        with pytest.raises(DBAPIError) as raised:
            _run(dispatcher, op)
    finally:
        dispatcher.stop()
    assert not is_transient(raised.value)
    assert len(calls) == 1 < TRANSIENT_ATTEMPTS
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key = 'half'")).scalar_one() == 0
