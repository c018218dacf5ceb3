"""Serving suggestions: the ``next`` of the bearer fast path and of the JSON route, the steered
queues and undo attach the model's suggestion to the lease they answer with
(:attr:`labelloop.store.queue.Lease.suggestion`, rendered by
:func:`labelloop.server.responses.next_response`).

While the project's ``suggestions`` setting is ``off`` nothing here adds work: :func:`claim` is
exactly :meth:`Dispatcher.claim` and :func:`suggesting` returns the operation it is given.
While it is on, the suggestion is read and recorded (:func:`labelloop.store.suggestions.record_suggestion`)
on the writer, in the claim's own transaction, right after the claim: one commit for both. Such
a claim runs as an operation of its own in the writer's batch (on PostgreSQL it is not sent
with the batch's other claims in one statement, :func:`labelloop.store.queue.claim_many`).

Never shown on audit items (``lease.is_audit``), overlap items (the store checks
``target_labels``) or gold items (:func:`gold_withheld`, the hook for them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from labelloop.server.dispatch import Dispatcher
from labelloop.store import queue as store_queue
from labelloop.store.labelling import Undone
from labelloop.store.projects import Project
from labelloop.store.queue import Lease
from labelloop.store.suggestions import record_suggestion, suggestion_mode


def gold_withheld(lease: Lease) -> str | None:
    """``"gold"`` when the leased item is a gold item (a known answer: a suggestion would give it
    away), else None. Gold items do not exist yet; the gold feature extends this hook."""
    return None


def withheld(lease: Lease) -> str | None:
    """Why no suggestion may be shown with this lease, known from the lease alone: ``"audit"``
    (a random audit draw: the audit estimate must not see the model's answer) or ``"gold"``;
    None if it may (overlap items are found by the store)."""
    if lease.is_audit:
        return "audit"
    return gold_withheld(lease)


def attach(conn: Connection, *, project: Project, user_id: int, mode: str, lease: Lease) -> Lease:
    """The lease with its suggestion (recorded on its assignment), or unchanged if none is shown."""
    shown = record_suggestion(conn, project=project, user_id=user_id, item_id=lease.item_id, mode=mode,
                              withheld=withheld(lease))
    return lease if shown is None else dataclasses.replace(lease, suggestion=shown.as_json())


def suggesting(project: Project, user_id: int, op: Callable[[Connection], Any]) -> Callable[[Connection], Any]:
    """``op`` (a writer operation answering a :class:`Lease`, an :class:`Undone` or None) with the
    suggestion attached to the lease it gives; ``op`` itself while suggestions are off."""
    mode = suggestion_mode(project)
    if mode == "off":
        return op

    def with_suggestion(conn: Connection) -> Any:
        result = op(conn)
        if isinstance(result, Lease):
            return attach(conn, project=project, user_id=user_id, mode=mode, lease=result)
        if isinstance(result, Undone) and result.lease is not None:
            lease = attach(conn, project=project, user_id=user_id, mode=mode, lease=result.lease)
            return dataclasses.replace(result, lease=lease)
        return result

    return with_suggestion


@dataclasses.dataclass
class _SuggestClaim:
    """A default claim (:meth:`Dispatcher.claim_next`) and its suggestion, as one writer operation.
    The audit draw is made once and kept if the batch runs again one by one (as the dispatcher's
    own claims do)."""

    dispatcher: Dispatcher
    project: Project
    user_id: int
    lease_seconds: int
    mode: str
    audit: bool | None = None

    def __call__(self, conn: Connection) -> Lease | None:
        if self.audit is None:
            self.audit = store_queue.is_audit_draw(self.project, self.dispatcher.rng)
        lease = self.dispatcher.claim_next(conn, project=self.project, user_id=self.user_id,
                                           lease_seconds=self.lease_seconds, audit=self.audit)
        if lease is None:
            return None
        return attach(conn, project=self.project, user_id=self.user_id, mode=self.mode, lease=lease)


async def claim(dispatcher: Dispatcher, *, project: Project, user_id: int, lease_seconds: int) -> Lease | None:
    """The user's next item (:meth:`Dispatcher.claim`), with the model's suggestion when the
    project's ``suggestions`` setting is on."""
    mode = suggestion_mode(project)
    if mode == "off":
        return await dispatcher.claim(project=project, user_id=user_id, lease_seconds=lease_seconds)
    return await dispatcher.run(_SuggestClaim(dispatcher, project, user_id, lease_seconds, mode), checks_first=True)
