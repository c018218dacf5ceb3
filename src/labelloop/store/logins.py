"""Failed-login limiting (table ``login_failures``): one row per failed or pending login of a
user name from a client address.

A login first reserves its attempt (:func:`reserve_attempt`): in one write transaction it
counts the rows of that (name, client) within the window and, below the limit, inserts its own
row and returns its id; at the limit it inserts nothing and returns None. Only then is the
password checked (the slow argon2 part, outside any transaction), so however many guesses
arrive at once, at most ``max_failures`` of them are checked per window. A wrong password
leaves its row as the failure; a right one clears the (name, client) rows
(:func:`clear_failures`); an attempt that was never checked gives its row back
(:func:`cancel_attempt`).

The count and the insert are atomic: on SQLite every write transaction holds the database's
write lock from its start (``BEGIN IMMEDIATE``, see :func:`labelloop.store.engine.writing`);
on PostgreSQL the transaction first takes an advisory lock keyed on (schema, name, client),
released at commit, so two reservations of one pair follow each other and pairs do not wait
for each other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, text

from labelloop.store.engine import is_sqlite
from labelloop.store.schema import login_failures

MAX_NAME = 100  # the column widths
MAX_CLIENT = 100
_PAIR_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "current_schema() || '/labelloop-login/' || :name || '/' || :client, 0))"
)


def reserve_attempt(
    conn: Connection, *, name: str, client: str, now: datetime, since: datetime, max_failures: int
) -> int | None:
    """Reserve a password check for ``name`` from ``client``: the new row's id, or None when
    ``max_failures`` rows newer than ``since`` exist already. Run it in :func:`writing`."""
    name, client = name[:MAX_NAME], client[:MAX_CLIENT]
    if not is_sqlite(conn):
        conn.execute(_PAIR_LOCK, {"name": name, "client": client})
    failures = conn.execute(
        select(func.count()).where(
            login_failures.c.username == name,
            login_failures.c.client == client,
            login_failures.c.created_at > since,
        )
    ).scalar_one()
    if failures >= max_failures:
        return None
    result = conn.execute(insert(login_failures).values(username=name, client=client, created_at=now))
    return int(result.inserted_primary_key[0])


def cancel_attempt(conn: Connection, *, attempt_id: int) -> None:
    """Give back a reservation whose password was never checked."""
    conn.execute(delete(login_failures).where(login_failures.c.id == attempt_id))


def clear_failures(conn: Connection, *, name: str, client: str) -> None:
    """A right password: forget the failures (and the reservation) of ``name`` from ``client``."""
    conn.execute(
        delete(login_failures).where(
            login_failures.c.username == name[:MAX_NAME], login_failures.c.client == client[:MAX_CLIENT]
        )
    )


def forget_failures(conn: Connection, *, before: datetime) -> int:
    """Delete the rows older than ``before`` (outside every window); how many."""
    return conn.execute(delete(login_failures).where(login_failures.c.created_at <= before)).rowcount


def count_failures(
    conn: Connection, *, name: str, client: str | None = None, since: datetime | None = None
) -> int:
    """Rows of ``name`` (from ``client``, or from anywhere; newer than ``since``, or all):
    failures and pending checks. A read: :func:`reserve_attempt` decides, this only tells a
    caller that need not try (no write transaction for a name that is limited anyway)."""
    query = select(func.count()).where(login_failures.c.username == name[:MAX_NAME])
    if client is not None:
        query = query.where(login_failures.c.client == client[:MAX_CLIENT])
    if since is not None:
        query = query.where(login_failures.c.created_at > since)
    return conn.execute(query).scalar_one()
