"""The review queue: items whose labellers disagree, and the admin's decision on them.

An item is *to review* when its active labels (retired tags ignored) name at least two
different tags and no admin has decided it yet. Ties (``label_source = 'conflict'``, no final
label) come first, then items whose majority won over a dissent, each group by item id.

:func:`adjudicate` records an admin's decision in ``items.adjudicated_tag_id``. By the
final-label rule the decision wins over every label (:mod:`labelloop.store.labels`), so export
and training use it at once; it is written to the audit log.

Multi-label projects: an item is to review when its labellers' sets differ (on active tags) and
no admin has decided it; ties on some tag (``label_source = 'conflict'``) come first. Each
:class:`ReviewItem` then carries each labeller's set (``sets``) and the tags in conflict
(``conflict_tags``); :func:`adjudicate` with ``tags`` sets the whole set
(``items.adjudicated_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from labelloop.errors import NotFoundError
from labelloop.store.browse import record_audit
from labelloop.store.codebook import decision_version
from labelloop.store.labelling import label_value
from labelloop.store.labels import active_masks, refresh_items, tied_mask
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, item_scores, items, tags, users
from labelloop.store.tagsets import names_of

MAX_REVIEW_PAGE = 200


@dataclass(frozen=True)
class ReviewItem:
    id: int
    external_id: str
    display: dict[str, Any]
    label: str | None  # the current final label (None for a tie)
    label_source: str | None
    # (labeller name, or None for an imported label; tag name), oldest first
    labels: list[tuple[str | None, str]] = field(default_factory=list)
    predicted: str | None = None  # the current model's prediction, if it scored the item
    confidence: float | None = None
    # Multi-label projects (``label``, ``labels`` and ``predicted`` are then None / empty):
    multi_label: bool = False
    label_set: list[str] | None = None  # the current final set (None for a conflict)
    # (labeller name, or None for an imported label; the tags of their set), oldest first
    sets: list[tuple[str | None, list[str]]] = field(default_factory=list)
    conflict_tags: list[str] = field(default_factory=list)  # the tags on which the labellers tie
    predicted_set: list[str] | None = None  # the current model's set, if it scored the item


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewItem]
    total: int  # items to review in all
    conflicts: int  # of which ties


def _disagreeing(project_id: int) -> Any:
    return (
        select(annotations.c.item_id)
        .select_from(annotations.join(tags, tags.c.id == annotations.c.tag_id))
        .where(annotations.c.project_id == project_id, tags.c.retired.is_(False))
        .group_by(annotations.c.item_id)
        .having(func.count(func.distinct(annotations.c.tag_id)) >= 2)
    )


def _disagreeing_sets(project_id: int, active: int) -> Any:
    return (
        select(annotations.c.item_id)
        .where(annotations.c.project_id == project_id, annotations.c.tag_mask.is_not(None))
        .group_by(annotations.c.item_id)
        .having(func.count(func.distinct(annotations.c.tag_mask.op("&")(active))) >= 2)
    )


def review_queue(conn: Connection, *, project: Project, limit: int = 50) -> ReviewPage:
    """The first ``limit`` items to review (ties first), with every active label on them.

    Deciding an item removes it from the queue, so the first page is always the next work."""
    limit = max(1, min(limit, MAX_REVIEW_PAGE))
    if project.multi_label:
        return _review_sets(conn, project=project, limit=limit)
    undecided = [
        items.c.project_id == project.id,
        items.c.adjudicated_tag_id.is_(None),
        items.c.id.in_(_disagreeing(project.id)),
    ]
    tie = case((items.c.label_source == "conflict", 1), else_=0)
    total, conflicts = conn.execute(select(func.count(), func.coalesce(func.sum(tie), 0)).where(*undecided)).one()
    rows = conn.execute(
        select(items.c.id, items.c.external_id, items.c.display, items.c.label_tag_id, items.c.label_source)
        .where(*undecided)
        .order_by(tie.desc(), items.c.id)
        .limit(limit)
    ).all()
    names = {t.id: t.name for t in project.tags}
    ids = [r.id for r in rows]
    labels: dict[int, list[tuple[str | None, str]]] = {i: [] for i in ids}
    scores: dict[int, Any] = {}
    if ids:
        for a in conn.execute(
            select(annotations.c.item_id, users.c.name, annotations.c.tag_id)
            .select_from(annotations.join(tags, tags.c.id == annotations.c.tag_id)
                         .outerjoin(users, users.c.id == annotations.c.user_id))
            .where(annotations.c.item_id.in_(ids), tags.c.retired.is_(False))
            .order_by(annotations.c.created_at, annotations.c.id)
        ):
            labels[a.item_id].append((a.name, names.get(a.tag_id, f"#{a.tag_id}")))
        if project.current_run_id is not None:
            for s in conn.execute(
                select(item_scores.c.item_id, item_scores.c.predicted_tag_id, item_scores.c.confidence)
                .where(item_scores.c.run_id == project.current_run_id, item_scores.c.item_id.in_(ids))
            ):
                scores[s.item_id] = s
    out = []
    for r in rows:
        score = scores.get(r.id)
        out.append(ReviewItem(
            id=r.id, external_id=r.external_id, display=dict(r.display or {}),
            label=names.get(r.label_tag_id) if r.label_tag_id is not None else None,
            label_source=r.label_source, labels=labels[r.id],
            predicted=names.get(score.predicted_tag_id) if score is not None and score.predicted_tag_id else None,
            confidence=score.confidence if score is not None else None,
        ))
    return ReviewPage(out, int(total), int(conflicts))


def _review_sets(conn: Connection, *, project: Project, limit: int) -> ReviewPage:
    """:func:`review_queue` of a multi-label project."""
    active = active_masks(conn, project_ids=[project.id])[project.id]
    undecided = [
        items.c.project_id == project.id,
        items.c.adjudicated_mask.is_(None),
        items.c.id.in_(_disagreeing_sets(project.id, active)),
    ]
    tie = case((items.c.label_source == "conflict", 1), else_=0)
    total, conflicts = conn.execute(select(func.count(), func.coalesce(func.sum(tie), 0)).where(*undecided)).one()
    rows = conn.execute(
        select(items.c.id, items.c.external_id, items.c.display, items.c.label_mask, items.c.label_source)
        .where(*undecided)
        .order_by(tie.desc(), items.c.id)
        .limit(limit)
    ).all()
    ids = [r.id for r in rows]
    sets: dict[int, list[tuple[str | None, int]]] = {i: [] for i in ids}
    predicted: dict[int, Any] = {}
    if ids:
        for a in conn.execute(
            select(annotations.c.item_id, users.c.name, annotations.c.tag_mask)
            .select_from(annotations.outerjoin(users, users.c.id == annotations.c.user_id))
            .where(annotations.c.item_id.in_(ids), annotations.c.tag_mask.is_not(None))
            .order_by(annotations.c.created_at, annotations.c.id)
        ):
            sets[a.item_id].append((a.name, a.tag_mask))
        if project.current_run_id is not None:
            for s in conn.execute(
                select(item_scores.c.item_id, item_scores.c.predicted_mask, item_scores.c.confidence)
                .where(item_scores.c.run_id == project.current_run_id, item_scores.c.item_id.in_(ids))
            ):
                predicted[s.item_id] = s
    out = []
    for r in rows:
        score = predicted.get(r.id)
        masks = [m for _, m in sets[r.id]]
        out.append(ReviewItem(
            id=r.id, external_id=r.external_id, display=dict(r.display or {}), label=None,
            label_source=r.label_source, multi_label=True,
            label_set=names_of(project, r.label_mask) if r.label_mask is not None else None,
            sets=[(name, names_of(project, m)) for name, m in sets[r.id]],
            conflict_tags=names_of(project, tied_mask(masks, active)),
            predicted_set=names_of(project, score.predicted_mask)
            if score is not None and score.predicted_mask is not None else None,
            confidence=score.confidence if score is not None else None,
        ))
    return ReviewPage(out, int(total), int(conflicts))


def adjudicate(
    conn: Connection,
    *,
    project: Project,
    item_id: int,
    tag: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    user_id: int | None,
) -> dict[str, Any]:
    """Decide item ``item_id``'s final label: ``tag`` (an active tag; InvalidInputError
    otherwise), whatever its labels say; the item needs no more labellers. In a multi-label
    project ``tags`` is the whole final set (possibly empty: none applies). Returns the item's
    new state. NotFoundError for an item of another project or none; the wrong shape for the
    project's kind is an InvalidInputError."""
    value = label_value(project, tag=tag, tags=tags)
    row = conn.execute(
        select(items.c.external_id, items.c.label_tag_id, items.c.label_mask, items.c.label_source)
        .where(items.c.id == item_id, items.c.project_id == project.id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    if project.multi_label:
        previous: Any = names_of(project, row.label_mask) if row.label_mask is not None else row.label_source
        conn.execute(update(items).where(items.c.id == item_id).values(adjudicated_mask=value,
                                                                        adjudicated_codebook_version=decision_version()))
    else:
        names = {t.id: t.name for t in project.tags}
        previous = names.get(row.label_tag_id) if row.label_tag_id is not None else row.label_source
        conn.execute(update(items).where(items.c.id == item_id).values(adjudicated_tag_id=value,
                                                                        adjudicated_codebook_version=decision_version()))
    refresh_items(conn, item_ids=[item_id])
    # The decision is final: an item still waiting for more labellers leaves the queue.
    conn.execute(
        update(items)
        .where(items.c.id == item_id, items.c.n_labels >= 1, items.c.n_labels < items.c.target_labels)
        .values(target_labels=items.c.n_labels)
    )
    if project.multi_label:
        chosen = names_of(project, value)
        record_audit(
            conn, project_id=project.id, user_id=user_id, action="item.adjudicate",
            details={"item_id": item_id, "external_id": row.external_id, "tags": chosen, "previous": previous},
        )
        return {"item_id": item_id, "external_id": row.external_id, "labels": chosen, "label_source": "human"}
    record_audit(
        conn, project_id=project.id, user_id=user_id, action="item.adjudicate",
        details={"item_id": item_id, "external_id": row.external_id, "tag": tag, "previous": previous},
    )
    return {"item_id": item_id, "external_id": row.external_id, "label": tag, "label_source": "human"}
