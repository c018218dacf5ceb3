"""A small thread pool of its own for password hashing (argon2: about 0.1 s of CPU a hash).

Checking and setting passwords never runs on the event loop or on the threads that serve
labelling: :class:`PasswordPool` has ``threads`` threads (1; argon2 computes a hash's 4 lanes
on 4 threads of its own, which inherit its priority) at nice 19, the lowest CPU priority, so
the event loop and the labelling threads win the CPU, and room for ``capacity`` tasks (running
and waiting, 8). When it is full, :meth:`PasswordPool.run` raises :class:`TooManyLogins` at
once: the login page answers 503 with ``Retry-After`` instead of queueing work nobody can wait
for (and :mod:`.gate` answers before the request is even read).

Not ``SCHED_IDLE``: a pool thread takes Python's GIL to start and to finish each hash, and a
thread that wants the GIL makes the event loop hand it over and wait until that thread has
run. A ``SCHED_IDLE`` thread never preempts anyone, so on a busy machine the event loop could
wait behind every other runnable task; a nice-19 thread gets a small share but is scheduled
soon. (On the shared 2-core benchmark machine the two measured alike, within its noise.)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from labelloop.errors import LabelloopError

T = TypeVar("T")
THREADS = 1
CAPACITY = 8
RETRY_AFTER_SECONDS = 2


class TooManyLogins(LabelloopError):
    """The password pool is full: answer 503, try again in a moment."""

    def __init__(self) -> None:
        super().__init__("too many logins at once: try again in a moment")


def lower_priority() -> None:
    """Give the calling thread nice 19, the lowest CPU priority (per thread on Linux; best
    effort elsewhere)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


class PasswordPool:
    """A bounded pool for password hashing; :meth:`run` from async code, :meth:`call` from a
    worker thread (synchronous routes)."""

    def __init__(self, threads: int = THREADS, capacity: int = CAPACITY):
        self.capacity = capacity
        self._queued = 0  # tasks submitted and not yet done
        self._lock = threading.Lock()
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after shutdown

    @property
    def busy(self) -> bool:
        """Whether the pool is full right now (a hint: a slot may free or fill at any moment)."""
        return self._queued >= self.capacity

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(*args)``; :class:`TooManyLogins` when ``capacity`` tasks are queued already."""
        with self._lock:
            if self._queued >= self.capacity:
                raise TooManyLogins()
            self._queued += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.threads, thread_name_prefix="labelloop-passwords", initializer=lower_priority
                )
            executor = self._executor
        try:
            future = executor.submit(fn, *args)
        except BaseException:
            self._done()
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object = None) -> None:
        with self._lock:
            self._queued -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool, awaited."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool, waited for (from a thread that is not the event loop)."""
        return self.submit(fn, *args).result()

    def shutdown(self) -> None:
        """Finish the running tasks, cancel the waiting ones; a later task starts new threads
        (an app whose lifespan runs again, as in tests)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
