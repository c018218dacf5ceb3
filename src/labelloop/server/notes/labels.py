"""Labels and skips that carry a note (a comment, the "unsure" flag, a skip reason).

A plain label or skip goes on exactly as before, through :class:`labelloop.server.gold.Gold`
(the dispatcher's label job and batched statement, or a gold answer on a gold item):
:func:`record_label` and :func:`record_skip` only look at the body's fields. With a note, the
label or skip runs as one operation of the writer that writes the note right after it, in its
transaction and its savepoint: a refused label writes no note, and a failed note undoes its
label. On a gold item the label is a gold answer (``store.gold.answer_gold``) as without a
note, and the note is kept all the same (an unclear gold item is worth knowing about). Used by
the JSON routes (:mod:`labelloop.server.api`) and the bearer fast path
(:mod:`labelloop.server.fastpath`) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from labelloop.server.gold import Gold
from labelloop.server.schemas import LabelCreate, SkipCreate
from labelloop.store import gold as store_gold
from labelloop.store import labelling as store_labelling
from labelloop.store import notes as store_notes
from labelloop.store.projects import Project


@dataclass(frozen=True)
class _NotedLabel:
    request: store_labelling.LabelRequest
    comment: str | None
    unsure: bool
    gold: bool  # the item is one of the project's gold items

    def __call__(self, conn: Connection) -> None:
        r = self.request
        if not (self.gold and store_gold.answer_gold(conn, project=r.project, user_id=r.user_id, item_id=r.item_id,
                                                     tag=r.tag, tags=r.tags)):
            store_labelling.label_item(conn, project=r.project, user_id=r.user_id, item_id=r.item_id, tag=r.tag,
                                       tags=r.tags)
        store_notes.add_label_note(conn, project=r.project, user_id=r.user_id, item_id=r.item_id,
                                   comment=self.comment, unsure=self.unsure)


async def record_label(gold: Gold, request: store_labelling.LabelRequest, body: LabelCreate) -> None:
    """Record the label (a gold answer on a gold item), and its note when the body has one."""
    if body.comment is None and not body.unsure:
        await gold.label(request)  # the hot path, untouched
        return
    comment = store_notes.clean_comment(body.comment)  # refused before anything is queued (422)
    is_gold = request.item_id in await gold.cache.ids(request.project.id)
    await gold.dispatcher.run(_NotedLabel(request, comment, bool(body.unsure), is_gold))


async def record_skip(gold: Gold, *, project: Project, user_id: int, item_id: int,
                      body: SkipCreate | None) -> None:
    """Skip the item, and record the reason and comment when the body has them."""
    if body is None or (body.reason is None and body.comment is None):
        await gold.skip(project=project, user_id=user_id, item_id=item_id)
        return
    comment = store_notes.clean_comment(body.comment)
    reason = store_notes.check_reason(body.reason)
    is_gold = item_id in await gold.cache.ids(project.id)
    dispatcher = gold.dispatcher

    def skip_with_note(conn: Connection) -> None:
        if not (is_gold and store_gold.skip_gold(conn, project=project, user_id=user_id, item_id=item_id)):
            dispatcher.skip(conn, project=project, user_id=user_id, item_id=item_id)
        store_notes.add_skip_note(conn, project=project, user_id=user_id, item_id=item_id, reason=reason,
                                  comment=comment)

    await dispatcher.run(skip_with_note)


async def undo(gold: Gold, *, project: Project, user_id: int, lease_seconds: int) -> Any:
    """Undo the user's last label or skip (:meth:`Gold.undo`: a gold answer first, the model's
    suggestion on the lease given back) and forget the notes it carried, in the same transaction:
    the labeller gives them again with the new label."""

    def forget(conn: Connection, undone: Any) -> None:
        store_notes.forget_notes(conn, project=project, user_id=user_id, item_id=undone.item_id)

    return await gold.undo(project=project, user_id=user_id, lease_seconds=lease_seconds, also=forget)
