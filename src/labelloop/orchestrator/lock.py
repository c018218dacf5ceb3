"""One orchestrator per project at a time.

- PostgreSQL: a session-level advisory lock, keyed by a hash of the schema and the project id
  (advisory locks are database-wide; two schemas must not share keys), held on a dedicated connection for as long as the orchestrator works on the project; the
  server frees it if the process dies. The ``orchestrator_locks`` row only says who holds it.
- SQLite: the ``orchestrator_locks`` row is the lock. Its holder refreshes ``heartbeat_at``
  every ``heartbeat`` seconds from a background thread; a row older than ``stale_after``
  (default 3 heartbeats) belongs to a dead orchestrator and is taken over, as is at once a row
  whose holder (``host:pid:nonce``) is a process of this host that no longer runs. A holder that finds
  its row taken over stops at its next check (:meth:`ProjectLock.check`) and never switches.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from labelloop.errors import LockedError
from labelloop.store import writing
from labelloop.store import runs as store_runs
from labelloop.store.engine import is_sqlite

_KEY = "hashtextextended(current_schema() || '/labelloop-orchestrator/' || CAST(:p AS text), 0)"
HEARTBEAT_SECONDS = 10.0

log = logging.getLogger("labelloop.orchestrator")


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ProjectLock:
    """The orchestrator lock of one project. Use :meth:`try_acquire` / :meth:`release`, or as a
    context manager (which raises :class:`LockedError` when the lock is held elsewhere)."""

    def __init__(self, engine: Engine, *, project_id: int, project_name: str, holder: str | None = None,
                 heartbeat: float = HEARTBEAT_SECONDS, stale_after: float | None = None):
        self.engine = engine
        self.project_id = project_id
        self.project_name = project_name
        self.holder = holder or default_holder()
        self.heartbeat = heartbeat
        self.stale_after = stale_after if stale_after is not None else 3 * heartbeat
        self.sqlite = is_sqlite(engine)
        self.held = False
        self.lost = False
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> tuple[str, datetime | None] | None:
        """Take the lock if free: None on success, else (holder, last heartbeat) of the owner."""
        if self.held:
            return None
        if not self.sqlite:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text(f"SELECT pg_try_advisory_lock({_KEY})"), {"p": self.project_id}).scalar_one()
            if not got:
                conn.close()
                with writing(self.engine) as c:
                    owner = store_runs.lock_holder(c, project_id=self.project_id)
                return owner or ("unknown (advisory lock held)", None)
            self._conn = conn
        with writing(self.engine) as c:
            # On PostgreSQL the advisory lock decides: the row is ours to overwrite.
            owner = store_runs.claim_lock_row(
                c, project_id=self.project_id, holder=self.holder,
                stale_after=self.stale_after if self.sqlite else 0.0,
            )
            if owner is not None and holder_is_dead(owner[0]):
                log.warning("taking over the lock of project %r from %s, a process that no longer runs",
                            self.project_name, owner[0])
                owner = store_runs.claim_lock_row(c, project_id=self.project_id, holder=self.holder,
                                                  stale_after=self.stale_after, dead_holder=owner[0])
        if owner is not None:
            return owner
        self.held, self.lost = True, False
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat-{self.project_id}", daemon=True)
        self._thread.start()
        return None

    def acquire(self) -> ProjectLock:
        """Take the lock or raise :class:`LockedError` naming the holder."""
        owner = self.try_acquire()
        if owner is not None:
            raise LockedError(f"another orchestrator holds project {self.project_name!r} ({describe(owner)})")
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))  # the session holding the advisory lock
                except Exception as exc:  # session gone: so is the advisory lock
                    log.error("lost the lock of project %r: its database session ended (%s)", self.project_name,
                              str(exc).splitlines()[0])
                    self.lost = True
                    return
            try:
                with writing(self.engine) as c:
                    mine = store_runs.heartbeat_lock_row(c, project_id=self.project_id, holder=self.holder)
                if not mine and self.sqlite:
                    log.error("lost the lock of project %r: another orchestrator took it over", self.project_name)
                    self.lost = True
                    return
            except Exception as exc:  # a transient database error: the next beat retries
                log.warning("heartbeat of project %r failed: %s", self.project_name, exc)

    def check(self) -> None:
        """Raise :class:`LockedError` if the lock was lost (taken over after a stall)."""
        if not self.held or self.lost:
            raise LockedError(f"lost the orchestrator lock of project {self.project_name!r}")

    def still_mine(self, conn: Connection) -> bool:
        """Inside a write transaction: is the lock still ours (SQLite: the row says so)?"""
        if self.lost or not self.held:
            return False
        return store_runs.holds_lock_row(conn, project_id=self.project_id, holder=self.holder) if self.sqlite else True

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.heartbeat))
        try:
            with writing(self.engine) as c:
                store_runs.release_lock_row(c, project_id=self.project_id, holder=self.holder)
        finally:
            if self._conn is not None:
                try:
                    self._conn.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"p": self.project_id})
                except Exception:  # the session is gone, and the lock with it
                    self._conn.invalidate()
                finally:
                    self._conn.close()
                    self._conn = None
            self.held = False

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def holder_is_dead(holder: str) -> bool:
    """Whether ``holder`` (``host:pid:nonce``) names a process of this host that has ended, so
    a restart after a crash need not wait for its heartbeat to go stale."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def describe(owner: tuple[str, datetime | None]) -> str:
    holder, beat = owner
    return f"holder {holder}" + (f", last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC" if beat else "")
