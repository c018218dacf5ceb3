"""Queries behind the admin pages: the data browser, per-labeller counts, tag edits, audit log.

The data browser pages through up to millions of items with *keyset* pagination (never
``OFFSET``): a page ends with a cursor holding the last row's sort key and id, and the next page
starts strictly after it, so every row is seen exactly once and page 10,000 costs what page 1
costs. Sorting by a model score reads the current run's ``item_scores``; items without a score
(or with a null one) come after all scored items, in id order. A cursor is an opaque string:

- ``i<id>``           sort by id, last id seen
- ``s<key>:<id>``     scored part of a score sort (``key`` as Python ``repr`` of the float)
- ``u<id>``           unscored part of a score sort, last id seen
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from labelloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from labelloop.store.projects import Project, add_tags, validate_tag_names
from labelloop.store.schema import (
    ANNOTATION_SOURCES,
    annotations,
    audit_log,
    item_scores,
    items,
    model_runs,
    projects,
    tags,
    users,
    utcnow,
)

# name -> (column of item_scores, descending?)
SORTS: dict[str, tuple[Any, bool] | None] = {
    "id": None,
    "priority": (item_scores.c.priority, True),  # highest priority first: the queue's order
    "confidence": (item_scores.c.confidence, False),  # least confident first
}
SOURCES = (*ANNOTATION_SOURCES, "conflict")
MAX_PAGE = 500


@dataclass(frozen=True)
class BrowseRow:
    id: int
    external_id: str
    display: dict[str, Any]
    n_labels: int
    target_labels: int
    label: str | None
    label_source: str | None
    priority: float | None = None
    confidence: float | None = None
    predicted: str | None = None
    # (user name or None for imported labels, tag name, source), oldest first
    annotations: list[tuple[str | None, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class BrowsePage:
    rows: list[BrowseRow]
    next_cursor: str | None


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so that ``%`` and ``_`` in a search match themselves (escape ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_id_any(project: Project, name: str) -> int:
    for t in project.tags:
        if t.name == name:
            return t.id
    raise InvalidInputError(f"unknown tag {name!r}; project {project.name!r} has: {', '.join(project.tag_names)}")


def _filters(
    conn: Connection,
    project: Project,
    *,
    search: str,
    tag: str | None,
    source: str | None,
    labelled: bool | None,
    labeller: str | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [items.c.project_id == project.id]
    if search:
        pattern = f"%{escape_like(search)}%"
        where.append(
            or_(items.c.text.ilike(pattern, escape="\\"), items.c.external_id.ilike(pattern, escape="\\"))
        )
    if tag:
        where.append(items.c.label_tag_id == _tag_id_any(project, tag))
    if source:
        if source == "conflict":
            where.append(items.c.label_source == "conflict")
        elif source in ANNOTATION_SOURCES:
            where.append(
                exists().where(annotations.c.item_id == items.c.id, annotations.c.source == source)
            )
        else:
            raise InvalidInputError(f"unknown label source {source!r}: use one of {', '.join(SOURCES)}")
    if labelled is not None:
        where.append(items.c.n_labels > 0 if labelled else items.c.n_labels == 0)
    if labeller:
        user_id = conn.execute(select(users.c.id).where(users.c.name == labeller)).scalar()
        if user_id is None:
            raise InvalidInputError(f"no user named {labeller!r}")
        where.append(exists().where(annotations.c.item_id == items.c.id, annotations.c.user_id == user_id))
    return where


def _parse_cursor(cursor: str | None, sort: str) -> tuple[str, float | None, int] | None:
    if not cursor:
        return None
    try:
        kind, rest = cursor[0], cursor[1:]
        if kind == "s" and sort != "id":
            key, _, last_id = rest.rpartition(":")
            return "s", float(key), int(last_id)
        if (kind == "i" and sort == "id") or (kind == "u" and sort != "id"):
            return kind, None, int(rest)
    except (ValueError, IndexError):
        pass
    raise InvalidInputError(f"invalid page cursor {cursor[:40]!r} for sort {sort!r}; start again from the first page")


def browse_items(
    conn: Connection,
    *,
    project: Project,
    search: str = "",
    tag: str | None = None,
    source: str | None = None,
    labelled: bool | None = None,
    labeller: str | None = None,
    sort: str = "id",
    after: str | None = None,
    limit: int = 50,
) -> BrowsePage:
    """One page of the project's items matching every given filter, after cursor ``after``.

    ``search`` is a case-insensitive substring of the item's text or external id (wildcards are
    literal); ``tag`` the final label; ``source`` one of human/import/review (an annotation of
    that source) or conflict; ``labelled`` whether the item has any label; ``labeller`` a user
    name who labelled it; ``sort`` one of :data:`SORTS`.
    """
    if sort not in SORTS:
        raise InvalidInputError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"page size must be between 1 and {MAX_PAGE}, got {limit}")
    cursor = _parse_cursor(after, sort)
    where = _filters(conn, project, search=search, tag=tag, source=source, labelled=labelled, labeller=labeller)
    cols = (items.c.id, items.c.external_id, items.c.display, items.c.n_labels, items.c.target_labels,
            items.c.label_tag_id, items.c.label_source)
    found: list[tuple[str, float | None, Any]] = []  # (cursor kind, key, row)
    spec = SORTS[sort]
    run_id = project.current_run_id
    if spec is None:
        last = cursor[2] if cursor else None
        q = select(*cols).where(*where).order_by(items.c.id).limit(limit + 1)
        if last is not None:
            q = q.where(items.c.id > last)
        found = [("i", None, r) for r in conn.execute(q)]
    else:
        column, descending = spec
        scored = and_(item_scores.c.run_id == run_id, column.is_not(None))
        if (cursor is None or cursor[0] == "s") and run_id is not None:
            q = (
                select(*cols, column.label("sort_key"))
                .join_from(items, item_scores, item_scores.c.item_id == items.c.id)
                .where(scored, *where)
                .order_by(column.desc() if descending else column.asc(), items.c.id)
                .limit(limit + 1)
            )
            if cursor is not None:
                _, key, last = cursor
                q = _after_key(q, column, key, last, descending)
            found = [("s", r.sort_key, r) for r in conn.execute(q)]
        if len(found) <= limit:
            last = cursor[2] if cursor is not None and cursor[0] == "u" else None
            q = (
                select(*cols)
                .where(*where, ~exists().where(item_scores.c.item_id == items.c.id, scored))
                .order_by(items.c.id)
                .limit(limit + 1 - len(found))
            )
            if last is not None:
                q = q.where(items.c.id > last)
            found += [("u", None, r) for r in conn.execute(q)]
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        kind, key, row = page[-1]
        next_cursor = f"s{key!r}:{row.id}" if kind == "s" else f"{kind}{row.id}"
    return BrowsePage(_decorate(conn, project, [r for _, _, r in page]), next_cursor)


def _after_key(q: Select[Any], column: Any, key: float | None, last: int, descending: bool) -> Select[Any]:
    # Written as a range on the key plus a tie-break, so that the index on the key is usable.
    if descending:
        return q.where(column <= key, or_(column < key, items.c.id > last))
    return q.where(column >= key, or_(column > key, items.c.id > last))


def _decorate(conn: Connection, project: Project, rows: list[Any]) -> list[BrowseRow]:
    ids = [r.id for r in rows]
    scores: dict[int, Any] = {}
    labels: dict[int, list[tuple[str | None, str, str]]] = {i: [] for i in ids}
    if ids and project.current_run_id is not None:
        for s in conn.execute(
            select(item_scores).where(
                item_scores.c.run_id == project.current_run_id, item_scores.c.item_id.in_(ids)
            )
        ):
            scores[s.item_id] = s
    if ids:
        for a in conn.execute(
            select(annotations.c.item_id, users.c.name, annotations.c.tag_id, annotations.c.source)
            .outerjoin(users, users.c.id == annotations.c.user_id)
            .where(annotations.c.item_id.in_(ids))
            .order_by(annotations.c.created_at, annotations.c.id)
        ):
            labels[a.item_id].append((a.name, _tag_name(project, a.tag_id), a.source))
    out = []
    for r in rows:
        s = scores.get(r.id)
        out.append(
            BrowseRow(
                id=r.id,
                external_id=r.external_id,
                display=dict(r.display or {}),
                n_labels=r.n_labels,
                target_labels=r.target_labels,
                label=_tag_name(project, r.label_tag_id),
                label_source=r.label_source,
                priority=s.priority if s is not None else None,
                confidence=s.confidence if s is not None else None,
                predicted=_tag_name(project, s.predicted_tag_id) if s is not None else None,
                annotations=labels[r.id],
            )
        )
    return out


def _tag_name(project: Project, tag_id: int | None) -> str | None:
    if tag_id is None:
        return None
    for t in project.tags:
        if t.id == tag_id:
            return t.name
    return f"#{tag_id}"


def labeller_counts(conn: Connection, *, project_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Human labels per user in the project: ``name``, ``total``, ``today`` (since UTC midnight),
    most labels first."""
    now = now or utcnow()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = func.sum(case((annotations.c.created_at >= midnight, 1), else_=0))
    rows = conn.execute(
        select(users.c.name, func.count().label("total"), func.coalesce(today, 0).label("today"))
        .join_from(annotations, users, users.c.id == annotations.c.user_id)
        .where(annotations.c.project_id == project_id, annotations.c.source == "human")
        .group_by(users.c.name)
        .order_by(func.count().desc(), users.c.name)
    )
    return [{"name": r.name, "total": int(r.total), "today": int(r.today)} for r in rows]


def label_totals_of_user(conn: Connection, *, user_id: int) -> dict[str, int]:
    """The user's human labels per project name (projects without any are left out)."""
    rows = conn.execute(
        select(projects.c.name, func.count())
        .join_from(annotations, projects, projects.c.id == annotations.c.project_id)
        .where(annotations.c.user_id == user_id, annotations.c.source == "human")
        .group_by(projects.c.name)
    )
    return {name: int(n) for name, n in rows}


def labels_per_day(conn: Connection, *, project_id: int, days: int = 30, now: datetime | None = None) -> dict[str, int]:
    """Human labels per UTC day (``YYYY-MM-DD``) over the last ``days`` days, oldest first, zeros included."""
    now = (now or utcnow()).astimezone(UTC)
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if conn.dialect.name == "sqlite":
        # Stored as naive UTC text 'YYYY-MM-DD HH:MM:SS...'.
        day = func.substr(annotations.c.created_at, 1, 10, type_=String)
    else:
        day = func.to_char(func.timezone("UTC", annotations.c.created_at), "YYYY-MM-DD", type_=String)
    counts = dict(
        conn.execute(
            select(day.label("day"), func.count())
            .where(annotations.c.project_id == project_id, annotations.c.source == "human",
                   annotations.c.created_at >= first)
            .group_by(day)
        ).all()
    )
    keys = [(first + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    return {k: int(counts.get(k, 0)) for k in keys}


def model_runs_of(conn: Connection, *, project_id: int, limit: int = 5) -> list[dict[str, Any]]:
    """The project's latest model runs, newest first."""
    rows = conn.execute(
        select(model_runs)
        .where(model_runs.c.project_id == project_id)
        .order_by(model_runs.c.version.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def record_audit(
    conn: Connection, *, action: str, details: dict[str, Any], user_id: int | None, project_id: int | None = None
) -> None:
    conn.execute(
        insert(audit_log).values(
            project_id=project_id, user_id=user_id, action=action, details=details, created_at=utcnow()
        )
    )


def audit_entries(conn: Connection, *, project_id: int | None, limit: int = 20) -> list[dict[str, Any]]:
    """Latest audit-log entries of a project (``None``: entries without a project), newest first."""
    cond = audit_log.c.project_id == project_id if project_id is not None else audit_log.c.project_id.is_(None)
    rows = conn.execute(
        select(audit_log.c.action, audit_log.c.details, audit_log.c.created_at, users.c.name.label("user"))
        .outerjoin(users, users.c.id == audit_log.c.user_id)
        .where(cond)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def add_tag(conn: Connection, *, project: Project, name: str, user_id: int | None) -> None:
    """Append a tag to the project's order and record it in the audit log."""
    add_tags(conn, project_id=project.id, names=[name])
    record_audit(conn, project_id=project.id, user_id=user_id, action="tag.add", details={"name": name})


def rename_tag(conn: Connection, *, project: Project, old: str, new: str, user_id: int | None) -> None:
    """Rename a tag in place: labels refer to the tag's id, so they follow. Audit-logged."""
    validate_tag_names([new])
    tag_id = conn.execute(
        select(tags.c.id).where(tags.c.project_id == project.id, tags.c.name == old)
    ).scalar()
    if tag_id is None:
        raise NotFoundError(f"no tag {old!r} in project {project.name!r}")
    if new == old:
        return
    if conn.execute(select(tags.c.id).where(tags.c.project_id == project.id, tags.c.name == new)).first():
        raise AlreadyExistsError(f"tag {new!r} exists already in project {project.name!r}")
    conn.execute(update(tags).where(tags.c.id == tag_id).values(name=new))
    record_audit(
        conn, project_id=project.id, user_id=user_id, action="tag.rename",
        details={"tag_id": tag_id, "from": old, "to": new},
    )
