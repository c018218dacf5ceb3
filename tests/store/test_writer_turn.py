"""SQLite writers queue on one flock (store.engine.writer_turn) before taking SQLite's lock, so a
waiting writer gets the next turn instead of polling (see the orchestrator_round probe)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from labelloop.store import writing
from labelloop.store.engine import writer_turn

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def start_writer(engine) -> tuple[threading.Thread, threading.Event]:
    entered = threading.Event()

    def write() -> None:
        with writing(engine) as conn:
            entered.set()
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('other', 'x')"))

    thread = threading.Thread(target=write)
    thread.start()
    return thread, entered


def test_a_writer_waits_for_the_turn_even_before_sqlite_is_locked(engine):
    with writer_turn(engine):  # a turn held, no SQLite transaction open
        thread, entered = start_writer(engine)
        assert not entered.wait(0.3)
    thread.join(10)
    assert entered.is_set()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'other'")).scalar_one() == "x"


def test_the_turn_is_reentrant_within_a_thread_and_released_by_the_outermost(engine):
    with writer_turn(engine):
        with writing(engine) as conn:  # nested in the same thread: no self-deadlock
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('mine', 'y')"))
        thread, entered = start_writer(engine)  # the inner exit did not give the turn away
        assert not entered.wait(0.3)
    thread.join(10)
    assert entered.is_set()

