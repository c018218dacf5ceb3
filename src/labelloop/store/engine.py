"""Database engines for SQLite and PostgreSQL, and the transactions labelloop uses.

- SQLite: WAL journal, foreign keys on, a busy timeout, and write transactions that start
  with ``BEGIN IMMEDIATE`` (so two writers queue on the lock instead of failing on upgrade).
  The writers of every process first queue on one ``flock`` (:func:`writer_turn`).
- PostgreSQL: psycopg 3; ``postgresql://`` URLs are mapped to the ``psycopg`` driver.

Use :func:`reading` for read-only work and :func:`writing` for every write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from labelloop.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy timeout alone serialises the writers
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Map plain ``postgresql://`` / ``postgres://`` URLs to the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with a terse text
        raise ConfigError(f"invalid database URL {url!r}: {exc}") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}:
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///file.db or postgresql://..."
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with labelloop's connection settings."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin: see "begin" below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("labelloop_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect."""
    if is_sqlite(conn):
        return sqlite_insert(table).on_conflict_do_nothing()
    return pg_insert(table).on_conflict_do_nothing()


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on any error.

    On SQLite it waits for its :func:`writer_turn`, then begins with ``BEGIN IMMEDIATE``,
    taking the write lock up front.
    """
    with writer_turn(engine), write_connection(engine) as conn:
        with conn.begin():
            yield conn


_turns = threading.local()  # per thread: the lock files whose turn it holds


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """On a SQLite file, hold this thread's turn to write: the writers of every thread and
    process queue on one ``flock`` of ``<database>-writer.lock``. A waiting writer wakes the
    moment the lock is free, where SQLite's own busy handler sleeps and polls (up to 100 ms a
    time) and keeps losing the race to a bulk writer that commits chunk after chunk (a
    labeller's write then waited seconds behind a round's score write). Re-entrant within a
    thread; a no-op on PostgreSQL, in-memory SQLite and where ``flock`` is missing."""
    database = engine.url.database
    if fcntl is None or engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    held: set[str] = _turns.__dict__.setdefault("held", set())
    path = f"{database}-writer.lock"
    if path in held:  # this thread's turn already (a nested write)
        yield
        return
    with open(path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)


def write_connection(engine: Engine) -> Connection:
    """A connection whose transactions are write transactions (see :func:`writing`); for a
    caller that runs many of them in a row and closes it itself."""
    return engine.connect().execution_options(labelloop_write=True)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read transaction (a consistent snapshot on both databases)."""
    with engine.connect() as conn:
        with conn.begin():
            yield conn
