"""Checking a login: the failed-login limit first, then the password on the password pool.

:meth:`Logins.check` runs, for a user name, a password and a client address:

1. the pool is full: 503 (no database work; usually :mod:`.gate` answered already);
2. reserve a check (:func:`labelloop.store.logins.reserve_attempt`, one short write
   transaction on the labelling threads, which also reads the user's hash, after a read that
   spares the write when the name is limited anyway): past ``login_max_failures`` failures of
   that name from that address within ``login_window_seconds``, 429;
3. the password is checked on the :class:`~labelloop.server.logins.pool.PasswordPool`, outside
   any transaction (a full pool now: the reservation is given back, 503);
4. wrong: the reservation stays as the failure (401); right: the failures of that name from
   that address are cleared.

Failures count per (name, address), so guesses from elsewhere never lock the user out of their
own address, and the reservation makes the limit hold for guesses sent all at once, on every
worker. Rows older than the window are deleted about once a minute.

Refusals (429, 503) are answered after ``refusal_delay`` seconds (1): waiting costs the server
nothing, and a guesser's connection then sends one request a second instead of hundreds, each
of which would cost the event loop, and the database, time the labellers need.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from labelloop.config import Settings
from labelloop.server.logins.pool import RETRY_AFTER_SECONDS, PasswordPool, TooManyLogins
from labelloop.store import logins as store_logins
from labelloop.store import users as store_users
from labelloop.store import reading, writing
from labelloop.store.schema import utcnow
from labelloop.store.users import User

CLEANUP_EVERY_SECONDS = 60.0
REFUSAL_DELAY_SECONDS = 1.0
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Refusal:
    """Why a login was refused: the status and the message for the login page."""

    status: int
    message: str
    retry_after: int | None = None


WRONG = Refusal(401, "wrong user name or password")
DISABLED = Refusal(401, "this account is disabled")
LIMITED = Refusal(429, "too many failed logins: wait a few minutes and try again")
BUSY = Refusal(503, TooManyLogins().args[0], RETRY_AFTER_SECONDS)


class Logins:
    """The login checks of one app (``app.state.logins``), with its password pool."""

    def __init__(self, engine: Engine, settings: Settings, pool: PasswordPool | None = None):
        self.engine = engine
        self.settings = settings
        self.pool = pool or PasswordPool()
        self.refusal_delay = REFUSAL_DELAY_SECONDS
        self._next_cleanup = 0.0

    async def check(self, *, name: str, password: str, client: str) -> User | Refusal:
        """The user, if ``password`` is theirs and the limit allows a check; else the refusal."""
        if self.pool.busy:
            return await self.refuse(BUSY)
        reserved = await run_in_threadpool(self._reserve, name[: store_logins.MAX_NAME], client)
        if reserved is None:
            return await self.refuse(LIMITED)
        attempt_id, record = reserved
        try:
            right, new_hash = await self.pool.run(
                store_users.check_password, record[1] if record else None, password[:MAX_PASSWORD]
            )
        except TooManyLogins:
            await run_in_threadpool(self._cancel, attempt_id)
            return await self.refuse(BUSY)
        # Cancelled (the client left) or failed: the reservation stays, counted as a failure.
        if record is None or not right:
            return WRONG
        user = record[0]
        if user.disabled:
            return DISABLED
        await run_in_threadpool(self._succeeded, user, client, new_hash)
        return user

    async def refuse(self, refusal: Refusal) -> Refusal:
        """``refusal``, after :attr:`refusal_delay` seconds."""
        await asyncio.sleep(self.refusal_delay)
        return refusal

    def _reserve(self, name: str, client: str) -> tuple[int, tuple[User, str] | None] | None:
        now = utcnow()
        since = now - timedelta(seconds=self.settings.login_window_seconds)
        limit = self.settings.login_max_failures
        with reading(self.engine) as conn:
            if store_logins.count_failures(conn, name=name, client=client, since=since) >= limit:
                return None
        with writing(self.engine) as conn:
            if time.monotonic() >= self._next_cleanup:
                self._next_cleanup = time.monotonic() + CLEANUP_EVERY_SECONDS
                store_logins.forget_failures(conn, before=since)
            attempt_id = store_logins.reserve_attempt(
                conn, name=name, client=client, now=now, since=since, max_failures=limit
            )
            if attempt_id is None:
                return None
            return attempt_id, store_users.login_record(conn, name=name)

    def _cancel(self, attempt_id: int) -> None:
        with writing(self.engine) as conn:
            store_logins.cancel_attempt(conn, attempt_id=attempt_id)

    def _succeeded(self, user: User, client: str, new_hash: str | None) -> None:
        with writing(self.engine) as conn:
            store_logins.clear_failures(conn, name=user.name, client=client)
            if new_hash is not None:
                store_users.replace_hash(conn, user_id=user.id, password_hash=new_hash)

    def close(self) -> None:
        self.pool.shutdown()
