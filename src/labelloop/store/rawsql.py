"""Plain SQL on the driver's cursor, for the few statements on the labelling hot path.

Building and compiling SQLAlchemy expressions costs a few hundred microseconds per statement;
the queue runs a handful per request, so its statements are fixed SQL strings with named
parameters (``:name``), sent through the DB-API cursor of the *same* connection and
transaction (always bound parameters, never string formatting of values). Values are
converted the way the schema's SQLAlchemy types store them: UTC timestamps (naive ISO text on
SQLite), JSON (text on SQLite, JSONB on PostgreSQL).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s`` for psycopg (the SQL here never contains ``%``)."""
    assert "%" not in sql
    return _NAMED.sub(r"%(\1)s", sql)


def is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _pg_cursor(conn: Connection) -> Any:
    """PostgreSQL: the DB-API connection's own cursor, made once and kept with it (in the pool's
    ``info`` of that connection, which ends with it); creating a cursor per statement cost more
    than the statement. psycopg reads a result whole, so nothing stays open between uses."""
    driver = conn.connection.driver_connection
    info = conn.info
    cursor = info.get("labelloop.cursor")
    if cursor is None or cursor.connection is not driver or cursor.closed:
        cursor = info["labelloop.cursor"] = driver.cursor()  # type: ignore[union-attr]
    return cursor


def _fetch(conn: Connection, sql: str, params: dict[str, Any] | None, fetch: Callable[[Any], Any]) -> Any:
    if is_sqlite(conn):
        # A cursor per statement, closed at once: an unfinished SQLite statement keeps its
        # read snapshot open.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params or {})
            return fetch(cursor)
        finally:
            cursor.close()
    cursor = _pg_cursor(conn)
    cursor.execute(_pyformat(sql), params or {})
    return fetch(cursor)


def one(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query with bound ``params`` (None if there is none)."""
    return _fetch(conn, sql, params, lambda cursor: cursor.fetchone())


def all_rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row of a query with bound ``params``."""
    return _fetch(conn, sql, params, lambda cursor: cursor.fetchall())


def run(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> int:
    """Execute a write; returns the number of rows it changed."""
    return int(_fetch(conn, sql, params, lambda cursor: cursor.rowcount))


def int_array(values: Any) -> str:
    """Integers as a PostgreSQL array literal, to bind as one text parameter and cast in the SQL
    (``:ids::bigint[]``): psycopg's list adaptation costs more than a statement's round trip."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def ts(conn: Connection, value: datetime) -> Any:
    """A timestamp as the schema's UTCDateTime stores it."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds") if is_sqlite(conn) else value


def from_ts(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def for_update(conn: Connection, *, skip_locked: bool = False) -> str:
    """The row-lock clause for PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises)."""
    if is_sqlite(conn):
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
