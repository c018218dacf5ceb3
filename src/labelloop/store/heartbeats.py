"""When an orchestrator last checked each project for work (table ``orchestrator_heartbeats``).

Every orchestrator records one row per project each time it checks the project, whatever the
outcome (nothing due, a round, an empty project): :func:`record_check`, one upsert. The model
page reads it back (:func:`last_check`) to say "checked 12 s ago (in the server)" even between
rounds, when no orchestrator holds the project's lock (``serve --orchestrate`` and
``orchestrate --all`` hold it only during a round). ``mode`` says how the orchestrator runs:

- ``server``: ``labelloop serve --orchestrate`` (and ``labelloop demo``), in the web server;
- ``all``: ``labelloop orchestrate --all``;
- ``project``: ``labelloop orchestrate PROJECT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from labelloop.store.engine import is_sqlite
from labelloop.store.schema import orchestrator_heartbeats, orchestrator_locks, utcnow

MODES = ("server", "all", "project")


@dataclass(frozen=True)
class Check:
    """The last check of a project: who (``host:pid:nonce``), how it runs, and when."""

    holder: str
    mode: str
    checked_at: datetime


def record_check(conn: Connection, *, project_id: int, holder: str, mode: str, now: datetime | None = None) -> None:
    """Record that ``holder`` (running as ``mode``) checked the project now: one upsert."""
    if mode not in MODES:
        raise ValueError(f"unknown orchestrator mode {mode!r}: one of {', '.join(MODES)}")
    values = {"project_id": project_id, "holder": holder[:200], "mode": mode, "checked_at": now or utcnow()}
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    statement = insert(orchestrator_heartbeats).values(**values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[orchestrator_heartbeats.c.project_id],
        set_={k: statement.excluded[k] for k in ("holder", "mode", "checked_at")},
    ))


def last_check(conn: Connection, *, project_id: int) -> Check | None:
    """The project's last recorded check, if any (it may be old)."""
    row = conn.execute(
        select(orchestrator_heartbeats.c.holder, orchestrator_heartbeats.c.mode, orchestrator_heartbeats.c.checked_at)
        .where(orchestrator_heartbeats.c.project_id == project_id)
    ).first()
    return None if row is None else Check(row.holder, row.mode, row.checked_at)


def holds_a_lock(conn: Connection, *, holder: str, since: datetime) -> bool:
    """Whether ``holder`` holds some project's orchestrator lock with a heartbeat at or after
    ``since``: an orchestrator that visits every project in turn is busy with a round elsewhere
    (and alive) while its last check of this project grows old."""
    found = conn.execute(
        select(orchestrator_locks.c.project_id)
        .where(orchestrator_locks.c.holder == holder, orchestrator_locks.c.heartbeat_at >= since)
        .limit(1)
    ).first()
    return found is not None

