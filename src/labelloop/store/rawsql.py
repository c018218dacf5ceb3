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


def execute(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run ``sql`` with bound ``params`` on the connection's DB-API cursor; returns the cursor."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if is_sqlite(conn):
        cursor.execute(sql, params or {})
    else:
        cursor.execute(_pyformat(sql), params or {})
    return cursor


def one(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
    cursor = execute(conn, sql, params)
    row = cursor.fetchone()
    cursor.close()
    return row


def run(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> int:
    """Execute a write; returns the number of rows it changed."""
    cursor = execute(conn, sql, params)
    count = cursor.rowcount
    cursor.close()
    return int(count)


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
