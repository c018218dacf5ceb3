"""One database writer per process, with group commit and a buffer of queue candidates.

The labelling routes are async; their writes (claims, labels, skips, renewals, undo) go to a
writer thread (one per process on SQLite, two on PostgreSQL) which takes every operation
waiting, runs each in its own SAVEPOINT
inside *one* write transaction, commits once, and only then answers the callers (one wake-up
of the event loop per batch). So requests never wait on each other's locks inside a process,
and one commit serves many requests. On PostgreSQL the claims of a batch go to the database in
one statement, each user on candidates of their own (:func:`labelloop.store.queue.claim_many`),
and its labels in another (:func:`labelloop.store.labelling.label_many`).

Claims use a per-project buffer of candidate item ids, refilled in queue order from the
index (:func:`labelloop.store.queue.candidates`); every claim is still checked and made in
the database (:func:`labelloop.store.queue.claim_from`, a few candidates at a time, with the
renewal of the user's live lease: one statement on PostgreSQL), so several processes stay
correct.
An audit draw (probability ``audit_fraction``, from this process's own random generator)
claims from a second buffer, refilled in the seeded random order (``candidates(audit=True)``;
before the first model that is the queue's order, so the one buffer serves both), and flags
its lease. Claims from buffers skip locked rows and never wait for them: a writer
that holds item locks (its batch's earlier claims and labels) waiting for another writer's
lock is how two batches deadlock on PostgreSQL. A batch that fails is retried one operation at
a time; an operation that fails for a passing reason (deadlock, serialization failure, a locked
SQLite file, a lost connection) runs again in a fresh transaction, up to three times.
"""

from __future__ import annotations

import asyncio
import logging
import queue as queue_mod
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from labelloop.errors import LabelloopError
from labelloop.store import labelling as store_labelling
from labelloop.store import queue as store_queue
from labelloop.store import rawsql as raw
from labelloop.store.engine import write_connection, writer_turn
from labelloop.store.projects import Project
from labelloop.store.schema import utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 256
# Two writer threads per process on PostgreSQL: with four, batches were smaller (more commits)
# and the threads contended for the GIL; serve_latency measured 2 ahead of 3 and 4 (2026-12-03).
PG_WRITERS = 2
PG_MAX_BATCH = 8  # several writer threads share the work; a batch still shares one commit (32 measured no better)
BUFFER_SIZE = 256
CLAIM_CHUNK = 8  # candidates sent to the database per claim statement (tried in order there)
BUFFER_MAX_AGE = 5.0  # seconds: refill to pick up items whose leases expired or were skipped

Op = Callable[[Connection], Any]
# An operation, its result in the writer, checks_first, and where its caller waits: an asyncio
# future and its event loop.
Job = tuple[Op, Future[Any], bool, "asyncio.Future[Any]", asyncio.AbstractEventLoop]

TRANSIENT_ATTEMPTS = 3  # tries of one operation that failed for a passing reason
# PostgreSQL: deadlock detected, serialization failure; SQLite: another process held the write
# lock past the busy timeout.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}


def is_transient(exc: BaseException) -> bool:
    """Whether a database failure may pass if the operation runs again: a deadlock or
    serialization failure, a locked SQLite file, or a lost connection (the pool opens a new one).

    The hot path's plain SQL (:mod:`labelloop.store.rawsql`) raises the driver's own errors,
    SQLAlchemy statements wrap them in :class:`DBAPIError`: both are recognised."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    if getattr(exc, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError | sqlite3.Error | psycopg.Error)


class _Candidates:
    """Candidate item ids of one project and model run, in queue order."""

    def __init__(self, run_id: int | None):
        self.run_id = run_id
        self.ids: deque[int] = deque()
        self.filled_at = 0.0
        self.exhausted = False


class Dispatcher:
    """Runs store operations on writer threads, batched into shared transactions.

    SQLite allows one writer at a time: one thread. PostgreSQL locks rows, so a few threads
    work at once (each waits on network round trips and commits, not on the others)."""

    def __init__(self, engine: Engine, *, threads: int | None = None, max_batch: int = MAX_BATCH,
                 rng: random.Random | None = None):
        self.engine = engine
        self.rng = rng or random.Random()  # audit draws: seeded from the OS per process
        self._postgres = engine.dialect.name == "postgresql"
        self.max_batch = max_batch if engine.dialect.name == "sqlite" else min(max_batch, PG_MAX_BATCH)
        self.n_threads = threads or (1 if engine.dialect.name == "sqlite" else PG_WRITERS)
        self._jobs: queue_mod.SimpleQueue[Job | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._local = threading.local()  # each writer thread's connection
        self._buffers: dict[tuple[int, bool], _Candidates] = {}  # (project id, seeded random order)
        self.batches = 0
        self.operations = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            while len(self._threads) < self.n_threads:
                thread = threading.Thread(target=self._run, name="labelloop-writer", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """Finish every write queued so far, then end the writer threads (the app's shutdown,
        after Uvicorn has let the requests in flight finish)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _thread in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout=10)

    # -- submitting ------------------------------------------------------------------------
    async def run(self, op: Op, *, checks_first: bool = False) -> Any:
        """Run ``op(conn)`` in a writer's transaction; its result once committed.

        Each operation runs in a SAVEPOINT, so that one refused operation leaves the others of
        its batch intact. ``checks_first`` skips the savepoint (two round trips on PostgreSQL)
        for operations that raise their refusals before writing anything."""
        if not self._threads:
            self.start()
        loop = asyncio.get_running_loop()
        future: Future[Any] = Future()
        waiter = loop.create_future()
        self._jobs.put((op, future, checks_first, waiter, loop))
        try:
            return await waiter
        except asyncio.CancelledError:
            future.cancel()  # never written if still queued (see _serve_jobs)
            raise

    async def claim(self, *, project: Project, user_id: int, lease_seconds: int) -> store_queue.Lease | None:
        """The user's next item, leased (:meth:`claim_next`). On PostgreSQL the claims of one batch
        go to the database together, in one statement (:func:`labelloop.store.queue.claim_many`)."""
        return await self.run(_ClaimOp(self, project, user_id, lease_seconds), checks_first=True)

    async def label(self, request: store_labelling.LabelRequest) -> None:
        """Record a label (:func:`labelloop.store.labelling.label_item`). On PostgreSQL the labels of
        one batch go to the database together, in one statement (:func:`labelloop.store.labelling.label_many`)."""
        await self.run(_LabelOp(request), checks_first=True)  # refused before any write

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._serve_jobs()
        finally:
            self._close_connection()

    def _connection(self) -> Connection:
        """This writer thread's own connection, kept between batches (a checkout from the pool,
        and on PostgreSQL its pre-ping round trip, cost more than a small batch's work)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = write_connection(self.engine)
        return conn

    def _close_connection(self) -> None:
        """Give the thread's connection back (after a failure, so the next batch gets a fresh one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken; the pool discards it
                log.debug("closing a writer connection failed", exc_info=True)

    def _serve_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue_mod.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                batch.append(more)
            # A request cancelled while queued (Uvicorn's shutdown timeout) is never written;
            # once running, a job can no longer be cancelled and its result is always set.
            batch = [j for j in batch if j[1].set_running_or_notify_cancel()]
            if batch:
                self._execute(batch)
                self._deliver(batch)

    @staticmethod
    def _deliver(batch: list[Job]) -> None:
        """Hand a batch's results to the waiting requests: one wake-up of each event loop per
        batch (not one per operation, as ``asyncio.wrap_future`` would)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in batch:
            by_loop.setdefault(job[4], []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, jobs)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _execute(self, batch: list[Job], *, attempt: int = 1) -> None:
        outcomes: list[tuple[bool, Any]] = []
        # Only an operation alone in its transaction may wait for another's row locks: a batch
        # holds its earlier operations' locks, and two batches waiting on each other deadlock.
        self._local.alone = len(batch) == 1
        try:
            conn = self._connection()
            with writer_turn(self.engine), conn.begin():
                together = self._together(conn, batch) if self._postgres else {}
                for i, (op, _future, checks_first, *_waiter) in enumerate(batch):
                    done = together.get(i)
                    outcomes.append(done if done is not None else self._one(conn, op, savepoint=not checks_first))
        except Exception as exc:  # the commit (or BEGIN) failed: retry one by one
            self._close_connection()
            self._buffers.clear()
            if len(batch) > 1:
                log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
                for job in batch:
                    self._execute([job])
                return
            if attempt < TRANSIENT_ATTEMPTS and is_transient(exc):
                # The transaction was rolled back whole, so running the operation again is safe;
                # only if the connection died during COMMIT may the first run have been saved,
                # and then the operation's own checks refuse the repeat (409, never twice).
                log.warning("operation failed (%s); attempt %d of %d", exc, attempt + 1, TRANSIENT_ATTEMPTS)
                time.sleep(0.01 * attempt)
                self._execute(batch, attempt=attempt + 1)
                return
            for _op, future, *_rest in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.operations += len(batch)
        for (_op, future, *_rest), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _one(self, conn: Connection, op: Op, *, savepoint: bool) -> tuple[bool, Any]:
        # Plain SAVEPOINT statements: SQLAlchemy's nested transactions cost more than the work.
        if savepoint:
            raw.run(conn, "SAVEPOINT op")
        try:
            result = op(conn)
        except LabelloopError as exc:  # a refusal must not sink the other operations
            if savepoint:
                raw.run(conn, "ROLLBACK TO SAVEPOINT op")
                raw.run(conn, "RELEASE SAVEPOINT op")
            return False, exc
        except Exception as exc:
            # A database failure (deadlock, lost connection), a claim that must wait (run alone
            # next), or a bug: the batch is retried one by one, so only the failing one fails.
            if not (_is_database_error(exc) or isinstance(exc, store_queue.WouldWait)):
                log.exception("operation failed")
            raise
        if savepoint:
            raw.run(conn, "RELEASE SAVEPOINT op")
        return True, result

    # -- claims through the candidate buffers (writer thread only) -------------------------
    def claim_next(self, conn: Connection, *, project: Project, user_id: int, lease_seconds: int,
                   audit: bool | None = None) -> Any:
        """The user's live lease renewed, else the first item of the buffer available to them
        (with ``audit``: of the audit buffer first), else the exact query's; None if nothing is
        left for them. ``audit`` None: drawn here (:func:`labelloop.store.queue.is_audit_draw`)."""
        now = utcnow()
        # Drawn before knowing whether the user holds a live lease (then the draw goes unused):
        # the renewal of that lease and the first claim are one statement on PostgreSQL.
        if audit is None:
            audit = store_queue.is_audit_draw(project, self.rng)
        if audit:
            lease = self._claim_buffered(conn, project=project, user_id=user_id, lease_seconds=lease_seconds,
                                         now=now, audit=True, renew=True)
            if lease is not None:
                return lease
        lease = self._claim_buffered(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now,
                                     renew=not audit)
        if lease is not None:
            return lease
        # Whatever the buffer holds is not for this user: the exact query decides. It may wait
        # for concurrent claims only in a transaction of its own (see _execute).
        return store_queue.next_item(
            conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now,
            may_wait=getattr(self._local, "alone", False),
        )

    def _claim_buffered(self, conn: Connection, *, project: Project, user_id: int, lease_seconds: int, now: Any,
                        audit: bool = False, renew: bool = False) -> store_queue.Lease | None:
        """Lease the first candidate of the project's buffer (the audit buffer: the seeded random
        order) that is available to the user; None if none is. With ``renew``, the user's live
        lease in the project, renewed, comes first (:func:`labelloop.store.queue.claim_from`).
        Locked rows are skipped, never waited for: a writer holding item locks never waits for
        another's. Candidates go to the database :data:`CLAIM_CHUNK` at a time (one round trip
        on PostgreSQL); those not tried go back to the front of the buffer."""
        # Before the first model the queue's order *is* the seeded random order: one buffer
        # serves both (two would make audit draws step over the items the other took).
        random_order = audit and project.current_run_id is not None
        buf = self._buffer(conn, project, now, audit=random_order)
        for _round in range(2):
            kept: list[int] = []
            try:
                while buf.ids or renew:
                    chunk = _take(buf.ids, CLAIM_CHUNK)
                    claim = store_queue.claim_from(
                        conn, project=project, user_id=user_id, item_ids=chunk, lease_seconds=lease_seconds,
                        now=now, audit=audit, renew=renew,
                    )
                    renew = False
                    buf.ids.extendleft(reversed(chunk[claim.tried:]))
                    kept.extend(claim.not_for_you)
                    if claim.lease is not None:
                        return claim.lease
                    if len(kept) >= 64:
                        break  # this user skipped a lot: ask the database directly
            finally:
                buf.ids.extendleft(reversed(kept))
            if len(kept) >= 64 or buf.exhausted:
                break
            buf = self._refill(conn, project, now, audit=random_order)
        return None

    def _together(self, conn: Connection, batch: list[Job]) -> dict[int, tuple[bool, Any]]:
        """Outcomes of the batch's labels, then of its claims, each kind in one statement; by
        position in the batch. Only the operations before the first of another kind (a skip, an
        undo...) go together: from there on they run in their order (a claim right behind a
        skip must not see the item still leased). Labels before claims keeps the page's
        pipelined label-then-next in its order."""
        head = next((i for i, (op, *_rest) in enumerate(batch) if not isinstance(op, _LabelOp | _ClaimOp)),
                    len(batch))
        return {**_labels_together(conn, batch[:head]), **self._claims_together(conn, batch[:head])}

    def _claims_together(self, conn: Connection, batch: list[Job]) -> dict[int, tuple[bool, Any]]:
        """Leases for a batch's claims (two or more of one project, not audit draws) in one
        statement, each user on :data:`CLAIM_CHUNK` candidates of their own from the buffer; by
        position in the batch. A claim that got nothing here runs alone after (:meth:`claim_next`)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (op, *_rest) in enumerate(batch):
            if isinstance(op, _ClaimOp):
                if op.audit is None:  # drawn once, kept if the batch runs again one by one
                    op.audit = store_queue.is_audit_draw(op.project, self.rng)
                if not op.audit:
                    groups.setdefault((op.project.id, op.lease_seconds), []).append(i)
        done: dict[int, tuple[bool, Any]] = {}
        now = utcnow()
        for at in groups.values():
            if len(at) < 2:
                continue
            ops: list[_ClaimOp] = [batch[i][0] for i in at]  # type: ignore[misc]
            buf = self._buffer(conn, ops[0].project, now, audit=False)
            chunks = [_take(buf.ids, CLAIM_CHUNK) for _op in ops]
            claims = store_queue.claim_many(conn, project=ops[0].project, lease_seconds=ops[0].lease_seconds, now=now,
                                            requests=[(op.user_id, chunk) for op, chunk in zip(ops, chunks, strict=True)])
            back: list[int] = []  # not tried, or done by that user (available to others)
            for i, chunk, claim in zip(at, chunks, claims, strict=True):
                back.extend(chunk[claim.tried:])
                back.extend(claim.not_for_you)
                if claim.lease is not None:
                    done[i] = (True, claim.lease)
            buf.ids.extendleft(reversed(back))
        return done

    def skip(self, conn: Connection, *, project: Project, user_id: int, item_id: int) -> None:
        """Skip the item; it goes back to the front of this process's candidates for others."""
        audit = store_labelling.skip_item(conn, project=project, user_id=user_id, item_id=item_id)
        self._give_back(project, item_id, audit=audit)

    def undo(self, conn: Connection, *, project: Project, user_id: int, lease_seconds: int) -> Any:
        """Undo the user's last label or skip; the lease they held meanwhile goes back to the candidates."""
        held = store_queue.current_lease(conn, project=project, user_id=user_id)
        undone = store_labelling.undo_last(conn, project=project, user_id=user_id, lease_seconds=lease_seconds)
        if undone.lease is not None and held is not None and held.item_id != undone.item_id:
            self._give_back(project, held.item_id, audit=held.is_audit)
        return undone

    def _give_back(self, project: Project, item_id: int, *, audit: bool) -> None:
        """Put an item back at the front of the buffer it came from: an audit item must go to
        the next audit draw, not to the priority queue (which would take it out of the
        random sample, the more so as people skip the hard ones)."""
        buf = self._buffers.get((project.id, audit and project.current_run_id is not None))
        if buf is not None and item_id not in buf.ids:
            buf.ids.appendleft(item_id)

    def _buffer(self, conn: Connection, project: Project, now: Any, *, audit: bool) -> _Candidates:
        """The project's candidates (``audit``: in the seeded random order), refilled if they are
        of an older model run or older than :data:`BUFFER_MAX_AGE`."""
        buf = self._buffers.get((project.id, audit))
        if buf is None or buf.run_id != project.current_run_id or time.monotonic() - buf.filled_at > BUFFER_MAX_AGE:
            buf = self._refill(conn, project, now, audit=audit)
        return buf

    def _refill(self, conn: Connection, project: Project, now: Any, *, audit: bool = False) -> _Candidates:
        buf = _Candidates(project.current_run_id)
        ids = store_queue.candidates(conn, project=project, now=now, limit=BUFFER_SIZE, audit=audit)
        buf.ids.extend(ids)
        buf.exhausted = len(ids) < BUFFER_SIZE
        buf.filled_at = time.monotonic()
        self._buffers[(project.id, audit)] = buf
        return buf


@dataclass
class _ClaimOp:
    """A claim as an operation: alone it is :meth:`Dispatcher.claim_next`; the writer may also
    run it together with the other claims of its batch. ``audit``: the audit draw, once made."""

    dispatcher: Dispatcher
    project: Project
    user_id: int
    lease_seconds: int
    audit: bool | None = None

    def __call__(self, conn: Connection) -> store_queue.Lease | None:
        return self.dispatcher.claim_next(conn, project=self.project, user_id=self.user_id,
                                          lease_seconds=self.lease_seconds, audit=self.audit)


@dataclass(frozen=True)
class _LabelOp:
    """A label (``request.tag``) or, multi-label, a set (``request.tags``) as an operation: alone
    it is :func:`labelloop.store.labelling.label_item`; the writer may also run it together with
    the other labels of its batch, of either kind (:func:`labelloop.store.labelling.label_many`)."""

    request: store_labelling.LabelRequest

    def __call__(self, conn: Connection) -> None:
        r = self.request
        store_labelling.label_item(conn, project=r.project, user_id=r.user_id, item_id=r.item_id, tag=r.tag,
                                   tags=r.tags)


def _labels_together(conn: Connection, batch: list[Job]) -> dict[int, tuple[bool, Any]]:
    """The outcomes of a batch's labels, sent in one statement (when there are two or more),
    by their position in the batch. A database error fails the batch (then retried one by one)."""
    at = [i for i, job in enumerate(batch) if isinstance(job[0], _LabelOp)]
    if len(at) < 2:
        return {}
    refused = store_labelling.label_many(conn, [batch[i][0].request for i in at])  # type: ignore[attr-defined]
    return {i: (exc is None, exc) for i, exc in zip(at, refused, strict=True)}


def _settle(jobs: list[Job]) -> None:
    """In the event loop: each job's result (or error) to its waiting request, unless cancelled."""
    for _op, future, _checks, waiter, _loop in jobs:
        if waiter.done():
            continue
        if not future.done():  # cannot happen: every job of a batch gets its outcome
            waiter.set_exception(RuntimeError("the writer gave this operation no outcome"))
            continue
        exc = future.exception()
        if exc is None:
            waiter.set_result(future.result())
        else:
            waiter.set_exception(exc)


def _take(ids: deque[int], n: int) -> list[int]:
    """Up to ``n`` ids from the front (the writer threads share the buffers: each pop is atomic)."""
    taken: list[int] = []
    while len(taken) < n:
        try:
            taken.append(ids.popleft())
        except IndexError:
            break
    return taken
