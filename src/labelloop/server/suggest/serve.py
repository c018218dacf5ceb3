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
``target_labels``) or gold items (``gold_ids``: the caller, :class:`labelloop.server.gold.Gold`, passes
the project's gold item ids from its cache).
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


NO_GOLD: frozenset[int] = frozenset()


def withheld(lease: Lease, gold_ids: frozenset[int] = NO_GOLD) -> str | None:
    """Why no suggestion may be shown with this lease: ``"audit"`` (a random audit draw: the audit
    estimate must not see the model's answer) or ``"gold"`` (a known answer: a suggestion would
    give it away and spoil the labeller's accuracy); None if it may (overlap items are found by
    the store)."""
    if lease.is_audit:
        return "audit"
    return "gold" if lease.item_id in gold_ids else None


def attach(conn: Connection, *, project: Project, user_id: int, mode: str, lease: Lease,
           gold_ids: frozenset[int] = NO_GOLD) -> Lease:
    """The lease with its suggestion (recorded on its assignment), or unchanged if none is shown."""
    shown = record_suggestion(conn, project=project, user_id=user_id, item_id=lease.item_id, mode=mode,
                              withheld=withheld(lease, gold_ids))
    return lease if shown is None else dataclasses.replace(lease, suggestion=shown.as_json())


def suggesting(project: Project, user_id: int, op: Callable[[Connection], Any],
               gold_ids: frozenset[int] = NO_GOLD) -> Callable[[Connection], Any]:
    """``op`` (a writer operation answering a :class:`Lease`, an :class:`Undone` or None) with the
    suggestion attached to the lease it gives; ``op`` itself while suggestions are off."""
    mode = suggestion_mode(project)
    if mode == "off":
        return op

    def with_suggestion(conn: Connection) -> Any:
        result = op(conn)
        if isinstance(result, Lease):
            return attach(conn, project=project, user_id=user_id, mode=mode, lease=result, gold_ids=gold_ids)
        if isinstance(result, Undone) and result.lease is not None:
            lease = attach(conn, project=project, user_id=user_id, mode=mode, lease=result.lease, gold_ids=gold_ids)
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
    gold_ids: frozenset[int] = NO_GOLD
    audit: bool | None = None

    def __call__(self, conn: Connection) -> Lease | None:
        if self.audit is None:
            self.audit = store_queue.is_audit_draw(self.project, self.dispatcher.rng)
        lease = self.dispatcher.claim_next(conn, project=self.project, user_id=self.user_id,
                                           lease_seconds=self.lease_seconds, audit=self.audit)
        if lease is None:
            return None
        return attach(conn, project=self.project, user_id=self.user_id, mode=self.mode, lease=lease,
                      gold_ids=self.gold_ids)


async def claim(dispatcher: Dispatcher, *, project: Project, user_id: int, lease_seconds: int,
                gold_ids: frozenset[int] = NO_GOLD) -> Lease | None:
    """The user's next item (:meth:`Dispatcher.claim`), with the model's suggestion when the
    project's ``suggestions`` setting is on (never on ``gold_ids``: a renewed gold lease)."""
    mode = suggestion_mode(project)
    if mode == "off":
        return await dispatcher.claim(project=project, user_id=user_id, lease_seconds=lease_seconds)
    return await dispatcher.run(_SuggestClaim(dispatcher, project, user_id, lease_seconds, mode, gold_ids),
                                checks_first=True)
