"""My history: a labeller's own recent labels, and changing one of them later.

The labelling page's undo is a stack (:func:`labelloop.store.labelling.undo_last`): it takes the
last label back and leases the item again. Here a labeller changes *any* of their recent labels
in place, without a lease, while the label is still **theirs**:

- it is their own human annotation (``source = 'human'``, their ``user_id``): imported labels,
  an admin's review decision and other people's labels are never theirs;
- the item has not been adjudicated by an admin (``items.adjudicated_tag_id`` /
  ``adjudicated_mask`` null): once the review has decided an item, the decision is final, and
  changing a label under it would only rewrite the evidence it was made on;
- the project is not closed: labelloop has no closed state for projects today; when one comes,
  it joins :func:`_not_theirs`.

Gold answers (a labeller's answers to items with a known answer) are not labels of the item and
do not live in ``annotations``; they never appear here.

A change rewrites the annotation (``tag_id`` or, multi-label, ``tag_mask``; ``updated_at``),
keeps the value before and after in ``label_history``, and recomputes the item's final label by
the project's rule (:func:`labelloop.store.labels.refresh_items`: majority, conflicts,
adjudication, sets, the bulk fallback). Agreement, the review queue, export and training read
annotations and items, so they follow. It needs no lease and takes none: ``assignments`` are not
touched, so the user's current lease (on another item) and everybody else's stay as they were.
The labelling hot path never reads this module's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from labelloop.errors import ConflictError, NotFoundError
from labelloop.store.labelling import label_value
from labelloop.store.labels import refresh_items
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, items, label_history, projects, users, utcnow

HISTORY_LIMIT = 50  # the page's and the API's default
MAX_HISTORY = 200
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class MyLabel:
    """One of the user's labels, newest first in :func:`my_labels`. ``label`` (single-label) or
    ``labels`` (multi-label, in display order; retired tags included, as the label holds them).
    ``changeable`` says whether it is still theirs to change, ``reason`` why not."""

    item_id: int
    external_id: str
    snippet: str
    label: str | None
    labels: list[str] | None
    labelled_at: datetime
    changed_at: datetime | None  # the last change, if any
    changes: int
    final: str | None  # the item's final label (multi-label: its set, comma-separated) or None
    final_source: str | None  # 'human', 'conflict', 'bulk' or None
    changeable: bool
    reason: str | None


@dataclass(frozen=True)
class Change:
    """One row of a label's history, oldest first in :func:`label_changes`."""

    user: str | None
    old: str | list[str] | None
    new: str | list[str] | None
    changed_at: datetime
    changed_by: str | None


@dataclass(frozen=True)
class Changed:
    """What :func:`change_label` did: the label now (``label`` or ``labels``), whether it
    differed (an unchanged value writes nothing), and the item's final label after it."""

    item_id: int
    label: str | None
    labels: list[str] | None
    changed: bool
    final: str | None
    final_source: str | None


def _names_all(project: Project, mask: int) -> list[str]:
    """Every tag of ``mask`` in display order, retired ones too (what the label holds)."""
    return [t.name for t in project.tags if t.bit is not None and mask >> t.bit & 1]


def _tag_name(project: Project, tag_id: int | None) -> str | None:
    if tag_id is None:
        return None
    return next((t.name for t in project.tags if t.id == tag_id), f"#{tag_id}")


def _value(project: Project, tag_id: int | None, mask: int | None) -> str | list[str] | None:
    if project.multi_label:
        return None if mask is None else _names_all(project, mask)
    return _tag_name(project, tag_id)


def _final(project: Project, tag_id: int | None, mask: int | None) -> str | None:
    if project.multi_label:
        return None if mask is None else ", ".join(t.name for t in project.tags
                                                   if not t.retired and t.bit is not None and mask >> t.bit & 1)
    return _tag_name(project, tag_id)


def _not_theirs(*, adjudicated_tag_id: int | None, adjudicated_mask: int | None) -> str | None:
    """Why a label of the user's own is no longer theirs to change (None: it is). The one place
    of the rule's item-side conditions (the annotation-side ones are in the queries)."""
    if adjudicated_tag_id is not None or adjudicated_mask is not None:
        return "an admin has decided this item in the review"
    return None


def my_labels(conn: Connection, *, project: Project, user_id: int, limit: int = HISTORY_LIMIT) -> list[MyLabel]:
    """The user's last ``limit`` human labels in the project (1..:data:`MAX_HISTORY`), newest
    first, each with a snippet of the item's text, its changes and whether it may be changed.
    Two queries: the labels (``ix_annotations_project_user``) and their changes."""
    limit = max(1, min(int(limit), MAX_HISTORY))
    rows = conn.execute(
        select(
            annotations.c.item_id, annotations.c.tag_id, annotations.c.tag_mask, annotations.c.created_at,
            items.c.external_id, func.substr(items.c.text, 1, SNIPPET_CHARS).label("snippet"),
            items.c.label_tag_id, items.c.label_mask, items.c.label_source,
            items.c.adjudicated_tag_id, items.c.adjudicated_mask,
        )
        .select_from(annotations.join(items, items.c.id == annotations.c.item_id))
        .where(annotations.c.project_id == project.id, annotations.c.user_id == user_id,
               annotations.c.source == "human")
        .order_by(annotations.c.created_at.desc(), annotations.c.id.desc())
        .limit(limit)
    ).all()
    changes: dict[int, tuple[int, datetime]] = {}
    if rows:
        for item_id, n, last in conn.execute(
            select(label_history.c.item_id, func.count(), func.max(label_history.c.changed_at))
            .where(label_history.c.item_id.in_([r.item_id for r in rows]), label_history.c.user_id == user_id)
            .group_by(label_history.c.item_id)
        ):
            changes[item_id] = (int(n), last)
    out = []
    for r in rows:
        value = _value(project, r.tag_id, r.tag_mask)
        reason = _not_theirs(adjudicated_tag_id=r.adjudicated_tag_id, adjudicated_mask=r.adjudicated_mask)
        n, last = changes.get(r.item_id, (0, None))
        out.append(MyLabel(
            item_id=r.item_id, external_id=r.external_id, snippet=r.snippet or "",
            label=value if isinstance(value, str) else None, labels=value if isinstance(value, list) else None,
            labelled_at=r.created_at, changed_at=last, changes=n,
            final=_final(project, r.label_tag_id, r.label_mask), final_source=r.label_source,
            changeable=reason is None, reason=reason,
        ))
    return out


def change_label(
    conn: Connection,
    *,
    project: Project,
    user_id: int,
    item_id: int,
    tag: str | None = None,
    tags: Sequence[str] | None = None,
    changed_by: int | None = None,
    now: datetime | None = None,
) -> Changed:
    """Change the user's own label on ``item_id`` to ``tag`` (single-label) or ``tags`` (the
    set, multi-label), while it is theirs (see the module's rule). Keeps the change in
    ``label_history`` and recomputes the item's final label; leases are not touched.

    Wrong shape, unknown or retired tag: InvalidInputError; no such item in the project:
    NotFoundError; no label of the user's on it, or the item decided by an admin:
    ConflictError. A refusal writes nothing. The same value again changes nothing (no row)."""
    now = now or utcnow()
    value = label_value(project, tag=tag, tags=tags)
    item = conn.execute(
        select(items.c.adjudicated_tag_id, items.c.adjudicated_mask)
        .where(items.c.id == item_id, items.c.project_id == project.id)
        .with_for_update()
    ).first()
    if item is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    mine = conn.execute(
        select(annotations.c.id, annotations.c.tag_id, annotations.c.tag_mask)
        .where(annotations.c.item_id == item_id, annotations.c.user_id == user_id,
               annotations.c.source == "human")
    ).first()
    if mine is None:
        raise ConflictError(f"you have no label on item {item_id} to change: only your own labels can be changed")
    reason = _not_theirs(adjudicated_tag_id=item.adjudicated_tag_id, adjudicated_mask=item.adjudicated_mask)
    if reason is not None:
        raise ConflictError(f"your label on item {item_id} can no longer be changed: {reason}")
    old = mine.tag_mask if project.multi_label else mine.tag_id
    changed = old != value
    if changed:
        column = "tag_mask" if project.multi_label else "tag_id"
        # A changed label is made under the codebook of the moment (the insert trigger's rule).
        version = select(func.nullif(projects.c.codebook_version, 0)).where(projects.c.id == project.id).scalar_subquery()
        conn.execute(update(annotations).where(annotations.c.id == mine.id).values(
            {column: value, "updated_at": now, "codebook_version": version}))
        conn.execute(insert(label_history).values(
            annotation_id=mine.id, project_id=project.id, item_id=item_id, user_id=user_id,
            old_tag_id=mine.tag_id, old_mask=mine.tag_mask,
            new_tag_id=None if project.multi_label else value, new_mask=value if project.multi_label else None,
            changed_at=now, changed_by=user_id if changed_by is None else changed_by,
        ))
        refresh_items(conn, item_ids=[item_id])
    state = conn.execute(
        select(items.c.label_tag_id, items.c.label_mask, items.c.label_source).where(items.c.id == item_id)
    ).one()
    now_value = _value(project, None if project.multi_label else value, value if project.multi_label else None)
    return Changed(
        item_id=item_id, label=now_value if isinstance(now_value, str) else None,
        labels=now_value if isinstance(now_value, list) else None, changed=changed,
        final=_final(project, state.label_tag_id, state.label_mask), final_source=state.label_source,
    )


def label_changes(conn: Connection, *, project: Project, item_id: int) -> list[Change]:
    """Every change of every label on ``item_id``, oldest first (the data browser's item page,
    for admins)."""
    owner = users.alias("owner")
    by = users.alias("by")
    rows = conn.execute(
        select(owner.c.name.label("user"), by.c.name.label("by"), label_history.c.old_tag_id,
               label_history.c.old_mask, label_history.c.new_tag_id, label_history.c.new_mask,
               label_history.c.changed_at)
        .select_from(label_history.outerjoin(owner, owner.c.id == label_history.c.user_id)
                     .outerjoin(by, by.c.id == label_history.c.changed_by))
        .where(label_history.c.item_id == item_id, label_history.c.project_id == project.id)
        .order_by(label_history.c.id)
    ).all()
    return [Change(user=r.user, old=_value(project, r.old_tag_id, r.old_mask),
                   new=_value(project, r.new_tag_id, r.new_mask), changed_at=r.changed_at, changed_by=r.by)
            for r in rows]
