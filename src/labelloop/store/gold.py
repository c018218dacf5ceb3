"""Gold items: items with a known answer, served now and then to measure each labeller.

- Marking (:func:`mark_gold`: ``import --gold-column``, the data browser's item page): the
  answer goes to ``gold_items`` and becomes the item's final label (``items.adjudicated_tag_id``
  or ``adjudicated_mask``: the final-label rule's top rung, so every recompute keeps it), and
  ``items.target_labels`` becomes 0, which takes the item out of everything that reads "open"
  items (``n_labels < target_labels``): the queue and its buffers, the audit draw, overlap,
  the steering lists and "remaining" in progress. A gold item counts as labelled (by its gold
  answer) in progress, export and training. :func:`unmark_gold` undoes all of it (the item gets
  its overlap target back and its answers are deleted: they were judged against an answer the
  admin no longer trusts).
- Serving (:func:`claim_gold`, called by ``server/gold.py`` with probability ``gold_fraction``
  on the default queue): a gold item the labeller has no assignment on, at random, leased like
  any item (``is_audit`` false, ``steered`` true so that ``store.runs.audit_items_reached``
  does not count it as served by the model's order). The lease answer is an ordinary
  :class:`~labelloop.store.queue.Lease`: nothing tells it apart.
- Answers (:func:`answer_gold`): a label on a gold item leased to the user is stored in
  ``gold_answers`` (judged ``correct`` against the gold answer: the same tag, or in a
  multi-label project the same set over the active tags), never in ``annotations``; the
  assignment is finished as ``labelled`` so the user moves on. Refusals use the words of
  :mod:`labelloop.store.labelling`. An expired lease is always honoured (nobody else can take a
  gold item over). Skip and renew (:func:`skip_gold`, :func:`renew_gold`) likewise.
- Undo (:func:`undo_gold`): when the user's latest act is a gold answer (or a skip of a gold
  item), undo deletes the answer (or forgets the skip) and leases the item to them again, as
  an undo of a label would: the user may answer again, and only that answer counts.

Every function takes a connection (of a write transaction where it writes) and keyword-only
arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, exists, func, insert, select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.browse import record_audit
from labelloop.store.items import target_labels_for
from labelloop.store.labelling import Undone, label_value, refusal, release_leases
from labelloop.store.labels import active_masks, refresh_items
from labelloop.store.projects import Project
from labelloop.store.queue import Lease, renew_current
from labelloop.store.schema import annotations, assignments, gold_answers, gold_items, items, users, utcnow

#: Unseen gold items read per gold draw (one is picked at random among them).
DRAW_WINDOW = 500


def gold_value(project: Project, *, tag: str | None = None, tags: Sequence[str] | None = None) -> int:
    """The stored answer: a tag id (single-label) or a mask (multi-label); the label's rules."""
    return label_value(project, tag=tag, tags=tags)


def _columns(project: Project, value: int) -> dict[str, int | None]:
    return {"tag_id": None, "tag_mask": value} if project.multi_label else {"tag_id": value, "tag_mask": None}


def _active(conn: Connection, project: Project) -> int | None:
    return active_masks(conn, project_ids=[project.id])[project.id] if project.multi_label else None


def _is_correct(answer: int, gold: int, active: int | None) -> bool:
    return answer == gold if active is None else (answer & active) == (gold & active)


def mark_gold(conn: Connection, *, project: Project, values: Mapping[int, int], user_id: int | None) -> int:
    """Make these items (id -> tag id or mask, see :func:`gold_value`) gold items with that
    answer; an item already gold gets the new answer (its answers are judged again). Returns
    how many. NotFoundError if an id is not an item of the project."""
    ids = sorted(values)
    if not ids:
        return 0
    now = utcnow()
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(conn.execute(select(items.c.id).where(items.c.id.in_(chunk),
                                                           items.c.project_id == project.id)).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"no item {missing[0]} in project {project.name!r}")
    adjudicated = items.c.adjudicated_mask if project.multi_label else items.c.adjudicated_tag_id
    active = _active(conn, project)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(delete(gold_items).where(gold_items.c.item_id.in_(chunk)))
        conn.execute(insert(gold_items), [
            {"item_id": i, "project_id": project.id, "user_id": user_id, "created_at": now,
             **_columns(project, values[i])} for i in chunk])
        for item_id in chunk:
            conn.execute(update(items).where(items.c.id == item_id)
                         .values({adjudicated: values[item_id], items.c.target_labels: 0}))
        for answer_id, item_id, tag_id, mask in conn.execute(
            select(gold_answers.c.id, gold_answers.c.item_id, gold_answers.c.tag_id, gold_answers.c.tag_mask)
            .where(gold_answers.c.item_id.in_(chunk))
        ).all():
            given = mask if project.multi_label else tag_id
            conn.execute(update(gold_answers).where(gold_answers.c.id == answer_id)
                         .values(correct=_is_correct(given, values[item_id], active)))
    refresh_items(conn, item_ids=ids)
    record_audit(conn, project_id=project.id, user_id=user_id, action="item.gold",
                 details={"items": len(ids), "item_ids": ids[:20]})
    return len(ids)


def mark_item(conn: Connection, *, project: Project, item_id: int, tag: str | None = None,
              tags: Sequence[str] | None = None, user_id: int | None) -> None:
    """One item made gold with this answer (the data browser's form)."""
    mark_gold(conn, project=project, values={item_id: gold_value(project, tag=tag, tags=tags)}, user_id=user_id)


def unmark_gold(conn: Connection, *, project: Project, item_id: int, user_id: int | None) -> None:
    """The item is no longer gold: its gold answer stops being its label (the adjudication is
    cleared), it gets its overlap target back (it rejoins the queue if it needs labels) and the
    labellers' answers to it are deleted. NotFoundError if it is not a gold item of the project."""
    row = conn.execute(select(items.c.rand, items.c.external_id).join(gold_items, gold_items.c.item_id == items.c.id)
                       .where(items.c.id == item_id, items.c.project_id == project.id)).first()
    if row is None:
        raise NotFoundError(f"item {item_id} is not a gold item of project {project.name!r}")
    conn.execute(delete(gold_items).where(gold_items.c.item_id == item_id))
    answers = conn.execute(delete(gold_answers).where(gold_answers.c.item_id == item_id)).rowcount
    target = target_labels_for(row.rand, fraction=project.setting("overlap_fraction"), k=project.setting("overlap_k"))
    conn.execute(update(items).where(items.c.id == item_id)
                 .values(adjudicated_tag_id=None, adjudicated_mask=None, target_labels=target))
    refresh_items(conn, item_ids=[item_id])
    record_audit(conn, project_id=project.id, user_id=user_id, action="item.ungold",
                 details={"item_id": item_id, "external_id": row.external_id, "answers_deleted": answers or 0})


def gold_ids(conn: Connection, *, project_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """Per project, the ids of its gold items (the server's per-process cache reads this)."""
    wanted = sorted(set(project_ids))
    found: dict[int, set[int]] = {p: set() for p in wanted}
    if wanted:
        for project_id, item_id in conn.execute(
            select(gold_items.c.project_id, gold_items.c.item_id).where(gold_items.c.project_id.in_(wanted))
        ):
            found[project_id].add(item_id)
    return {p: frozenset(ids) for p, ids in found.items()}


def gold_answer_of(conn: Connection, *, project: Project, item_id: int) -> int | None:
    """The item's gold answer (tag id or mask), None if it is not a gold item."""
    row = conn.execute(select(gold_items.c.tag_id, gold_items.c.tag_mask)
                       .where(gold_items.c.item_id == item_id, gold_items.c.project_id == project.id)).first()
    if row is None:
        return None
    return row.tag_mask if project.multi_label else row.tag_id


def claim_gold(conn: Connection, *, project: Project, user_id: int, lease_seconds: int, rng: random.Random,
               now: datetime | None = None) -> Lease | None:
    """The user's live lease in the project renewed if they hold one (as every claim does), else
    a gold item they have no assignment on (never served to them before), picked at random and
    leased; None when they have seen every gold item (the caller then claims as usual)."""
    now = now or utcnow()
    lease = renew_current(conn, project=project, user_id=user_id, lease_seconds=lease_seconds, now=now)
    if lease is not None:
        return lease
    seen = exists().where(assignments.c.item_id == gold_items.c.item_id, assignments.c.user_id == user_id)
    answered = exists().where(gold_answers.c.item_id == gold_items.c.item_id, gold_answers.c.user_id == user_id)
    unseen = list(conn.execute(
        select(gold_items.c.item_id).where(gold_items.c.project_id == project.id, ~seen, ~answered)
        .order_by(gold_items.c.item_id).limit(DRAW_WINDOW)
    ).scalars())
    if not unseen:
        return None
    item_id = rng.choice(unseen)
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(insert(assignments).values(project_id=project.id, item_id=item_id, user_id=user_id, state="leased",
                                            is_audit=False, steered=True, leased_at=now, expires_at=expires))
    row = conn.execute(select(items.c.external_id, items.c.display).where(items.c.id == item_id)).one()
    return Lease(item_id, row.external_id, dict(row.display), expires, False)


@dataclass(frozen=True)
class _GoldHeld:
    assignment_id: int
    gold: int


def _held(conn: Connection, *, project: Project, user_id: int, item_id: int) -> _GoldHeld | None:
    """The user's open assignment on a gold item (refusals worded as for any item); None if the
    item is not a gold item (the caller goes the usual way)."""
    gold = conn.execute(select(gold_items.c.tag_id, gold_items.c.tag_mask)
                        .where(gold_items.c.item_id == item_id, gold_items.c.project_id == project.id)
                        .with_for_update()).first()
    if gold is None:
        return None
    row = conn.execute(select(assignments.c.id, assignments.c.state)
                       .where(assignments.c.item_id == item_id, assignments.c.user_id == user_id)
                       .with_for_update()).first()
    if row is None:
        raise refusal("not_leased", project=project, item_id=item_id)
    if row.state in ("labelled", "skipped"):
        raise refusal(row.state, project=project, item_id=item_id)
    return _GoldHeld(row.id, gold.tag_mask if project.multi_label else gold.tag_id)


def answer_gold(conn: Connection, *, project: Project, user_id: int, item_id: int, tag: str | None = None,
                tags: Sequence[str] | None = None, now: datetime | None = None) -> bool:
    """Record the user's label on a gold item as a gold answer (not an annotation) and finish
    their assignment as labelled. False (nothing written) if the item is not a gold item: the
    caller labels it as usual. The label's refusals (shape, tag, lease) as for any item."""
    now = now or utcnow()
    value = label_value(project, tag=tag, tags=tags)  # the shape and tags first: the same 422s
    held = _held(conn, project=project, user_id=user_id, item_id=item_id)
    if held is None:
        return False
    conn.execute(insert(gold_answers).values(
        project_id=project.id, item_id=item_id, user_id=user_id, created_at=now,
        correct=_is_correct(value, held.gold, _active(conn, project)), **_columns(project, value)))
    conn.execute(update(assignments).where(assignments.c.id == held.assignment_id)
                 .values(state="labelled", finished_at=now))
    return True


def skip_gold(conn: Connection, *, project: Project, user_id: int, item_id: int,
              now: datetime | None = None) -> bool:
    """The user passes on a gold item (never served to them again); False if it is not gold."""
    held = _held(conn, project=project, user_id=user_id, item_id=item_id)
    if held is None:
        return False
    conn.execute(update(assignments).where(assignments.c.id == held.assignment_id)
                 .values(state="skipped", finished_at=now or utcnow()))
    return True


def renew_gold(conn: Connection, *, project: Project, user_id: int, item_id: int, lease_seconds: int,
               now: datetime | None = None) -> datetime | None:
    """The user's lease on a gold item extended (even if it had expired); None if not gold."""
    now = now or utcnow()
    held = _held(conn, project=project, user_id=user_id, item_id=item_id)
    if held is None:
        return None
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(update(assignments).where(assignments.c.id == held.assignment_id).values(expires_at=expires))
    return expires


def undo_gold(conn: Connection, *, project: Project, user_id: int, lease_seconds: int,
              now: datetime | None = None) -> Undone | None:
    """Undo the user's latest act if it concerns a gold item: a gold answer is deleted, or a skip
    of a gold item forgotten, and the item is leased to them again (other leases given back).
    None when their latest act is an ordinary label or skip (or none): the caller undoes as usual."""
    now = now or utcnow()
    answer = conn.execute(
        select(gold_answers.c.id, gold_answers.c.item_id, gold_answers.c.created_at)
        .where(gold_answers.c.project_id == project.id, gold_answers.c.user_id == user_id)
        .order_by(gold_answers.c.created_at.desc(), gold_answers.c.id.desc()).limit(1)
    ).first()
    label_at = conn.execute(
        select(func.max(annotations.c.created_at)).where(
            annotations.c.project_id == project.id, annotations.c.user_id == user_id, annotations.c.source == "human")
    ).scalar()
    skip = conn.execute(
        select(assignments.c.id, assignments.c.item_id, assignments.c.finished_at)
        .where(assignments.c.project_id == project.id, assignments.c.user_id == user_id,
               assignments.c.state == "skipped")
        .order_by(assignments.c.finished_at.desc(), assignments.c.id.desc()).limit(1)
    ).first()
    times = [t for t in (label_at, skip.finished_at if skip else None) if t is not None]
    if answer is not None and all(answer.created_at >= t for t in times):
        item_id, what = answer.item_id, "label"
    elif (skip is not None and (label_at is None or skip.finished_at > label_at)
          and (answer is None or skip.finished_at > answer.created_at)
          and conn.execute(select(gold_items.c.item_id).where(gold_items.c.item_id == skip.item_id)).first()):
        item_id, what = skip.item_id, "skip"
    else:
        return None
    release_leases(conn, project=project, user_id=user_id)
    if what == "label":
        conn.execute(delete(gold_answers).where(gold_answers.c.id == answer.id))  # type: ignore[union-attr]
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(update(assignments).where(assignments.c.item_id == item_id, assignments.c.user_id == user_id)
                 .values(state="leased", leased_at=now, expires_at=expires, finished_at=None))
    row = conn.execute(select(items.c.external_id, items.c.display).where(items.c.id == item_id)).one()
    return Undone(what, item_id, Lease(item_id, row.external_id, dict(row.display), expires, False))


@dataclass(frozen=True)
class GoldCounts:
    """One labeller's gold answers in a project."""

    user_id: int
    name: str
    answered: int
    correct: int


def answer_counts(conn: Connection, *, project_id: int) -> list[GoldCounts]:
    """Every labeller who answered gold items in the project, with how many and how many right,
    by name. Answers to items no longer gold are deleted with the mark (:func:`unmark_gold`)."""
    correct = func.sum(case((gold_answers.c.correct, 1), else_=0))
    rows = conn.execute(
        select(users.c.id, users.c.name, func.count(), correct)
        .select_from(gold_answers.join(users, users.c.id == gold_answers.c.user_id))
        .where(gold_answers.c.project_id == project_id)
        .group_by(users.c.id, users.c.name).order_by(users.c.name)
    ).all()
    return [GoldCounts(int(uid), name, int(n), int(ok or 0)) for uid, name, n, ok in rows]


def gold_count(conn: Connection, *, project_id: int) -> int:
    """How many gold items the project has."""
    return int(conn.execute(select(func.count()).select_from(gold_items)
                            .where(gold_items.c.project_id == project_id)).scalar_one())


def values_by_external_id(conn: Connection, *, project: Project, answers: Mapping[str, int]) -> dict[int, int]:
    """Item id -> answer for answers keyed by external id (the import); InvalidInputError for an
    id the project does not have."""
    keys = list(answers)
    out: dict[int, int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for item_id, external_id in conn.execute(
            select(items.c.id, items.c.external_id).where(and_(items.c.project_id == project.id,
                                                               items.c.external_id.in_(chunk)))
        ):
            out[item_id] = answers[external_id]
    if len(out) != len(keys):
        raise InvalidInputError(f"{len(keys) - len(out)} gold rows name items the project does not have")
    return out


def tag_merged(conn: Connection, *, project: Project, src_id: int, dst_id: int, src_bit: int | None = None,
               dst_bit: int | None = None) -> None:
    """A tag merge (``store/tags.py``): gold answers and labellers' answers follow the labels from
    ``src`` to ``dst`` (the tag id, or in a multi-label project the bit), then are judged again."""
    for table in (gold_items, gold_answers):
        if src_bit is not None and dst_bit is not None:
            conn.execute(update(table).where(table.c.project_id == project.id,
                                             table.c.tag_mask.op("&")(1 << src_bit) != 0)
                         .values(tag_mask=table.c.tag_mask.op("|")(1 << dst_bit) - (1 << src_bit)))
        else:
            conn.execute(update(table).where(table.c.tag_id == src_id).values(tag_id=dst_id))
    active = _active(conn, project)
    gold = {item_id: (mask if project.multi_label else tag_id) for item_id, tag_id, mask in conn.execute(
        select(gold_items.c.item_id, gold_items.c.tag_id, gold_items.c.tag_mask)
        .where(gold_items.c.project_id == project.id))}
    for answer_id, item_id, tag_id, mask, correct in conn.execute(
        select(gold_answers.c.id, gold_answers.c.item_id, gold_answers.c.tag_id, gold_answers.c.tag_mask,
               gold_answers.c.correct).where(gold_answers.c.project_id == project.id)
    ).all():
        judged = item_id in gold and _is_correct(mask if project.multi_label else tag_id, gold[item_id], active)
        if judged != bool(correct):
            conn.execute(update(gold_answers).where(gold_answers.c.id == answer_id).values(correct=judged))


def tag_retired(conn: Connection, *, project: Project, tag_id: int, user_id: int | None) -> int:
    """A single-label tag retired (``store/tags.py``): gold items whose answer it was can no longer
    be answered right, so they become ordinary items again (:func:`unmark_gold`: answers deleted,
    back in the queue). Returns how many. (Multi-label gold sets keep the bit; judging ignores
    retired bits.)"""
    ids = list(conn.execute(select(gold_items.c.item_id).where(gold_items.c.project_id == project.id,
                                                               gold_items.c.tag_id == tag_id)).scalars())
    for item_id in ids:
        unmark_gold(conn, project=project, item_id=item_id, user_id=user_id)
    return len(ids)
