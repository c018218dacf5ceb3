"""Queries behind the admin pages: the data browser, per-labeller counts, the audit log.

(Tag changes live in :mod:`labelloop.store.tags`.)

The data browser pages through up to millions of items with *keyset* pagination (never
``OFFSET``): a page ends with a cursor holding the last row's sort key and id, and the next page
starts strictly after it, so every row is seen exactly once and page 10,000 costs what page 1
costs. Sorting by priority walks the current run's serving order (``score_ranks``), by
confidence its ``item_scores``; items without a score (or with a null one) come after all
scored items, in id order. A cursor is an opaque string:

- ``i<id>``           sort by id, last id seen
- ``s<key>:<id>``     scored part of a score sort (``key``: the rank, or ``repr`` of the confidence)
- ``u<id>``           unscored part of a score sort, last id seen
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, case, exists, func, insert, or_, select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.notes import notes_condition
from labelloop.store.projects import Project
from labelloop.store.schema import (
    ANNOTATION_SOURCES, annotations, audit_log, gold_answers, item_scores, items, projects, score_ranks, users,
    utcnow,
)
from labelloop.store.search import match_condition
from labelloop.store.tagsets import names_of

# name -> (key column: ascending, of a table with run_id and item_id; the item_scores column
# that is null or missing for the unscored items)
SORTS: dict[str, tuple[Any, Any] | None] = {
    "id": None,
    "priority": (score_ranks.c.rank, item_scores.c.priority),  # the queue's order
    "confidence": (item_scores.c.confidence, item_scores.c.confidence),  # least confident first
}
SOURCES = (*ANNOTATION_SOURCES, "conflict", "bulk")
MAX_PAGE = 500
SCAN_WINDOW = 20_000  # scored items examined per step when filters reject most of them
ID_RANGE_FACTOR = 5  # ... and ids per step (a range of ids is cheaper to scan than a subquery)
TIME_BUDGET = 1.0  # seconds a page may keep scanning before it returns short, with a cursor


@dataclass(frozen=True)
class BrowseRow:
    id: int
    external_id: str
    display: dict[str, Any]
    n_labels: int
    target_labels: int
    label: str | None  # multi-label projects: the final set's tags joined with ", " ("" for none)
    label_source: str | None
    priority: float | None = None
    confidence: float | None = None
    predicted: str | None = None
    # (user name or None for imported labels, tag name (multi-label: the set's tags joined with
    # ", "), source), oldest first
    annotations: list[tuple[str | None, str, str]] = field(default_factory=list)
    label_set: list[str] | None = None  # multi-label projects: the final set (None: no final set)


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


def _conditions(
    conn: Connection, project: Project, *, search: str, tag: str | None, source: str | None,
    labelled: bool | None, labeller: str | None, text_query: str = "",
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """(conditions an index can serve in id order, the other filters)."""
    sqlite = conn.dialect.name == "sqlite"
    bit_filter: list[ColumnElement[bool]] = []
    if tag and project.multi_label:  # items whose final set has the tag (retired tags too)
        _tag_id_any(project, tag)  # an unknown tag is an InvalidInputError
        bit = next(t.bit for t in project.tags if t.name == tag)
        bit_filter = [items.c.label_mask.op("&")(1 << int(bit or 0)) != 0]
        tag = None
    if tag:
        base = [items.c.project_id == project.id, items.c.label_tag_id == _tag_id_any(project, tag)]
    elif sqlite:
        # "+ 0" keeps SQLite off ix_items_label (project_id, label_tag_id), which would make it
        # sort every item of the project; walking the primary key in order stops after a page.
        base = [items.c.project_id + 0 == project.id]
    else:
        base = [items.c.project_id == project.id]
    where: list[ColumnElement[bool]] = bit_filter
    if search:
        pattern = f"%{escape_like(search)}%"
        # SQLite's LIKE ignores ASCII case already (lower() on every text would be slow).
        op = "like" if sqlite else "ilike"
        where.append(or_(*(getattr(c, op)(pattern, escape="\\") for c in (items.c.text, items.c.external_id))))
    if text_query:  # full-text search (store/search.py): a SearchSyntaxError for a bad query
        where.append(match_condition(conn, project_id=project.id, query=text_query))
    if source in ("conflict", "bulk"):  # bulk: the final label is an admin's bulk label
        where.append(items.c.label_source == source)
    elif source in ANNOTATION_SOURCES:
        where.append(exists().where(annotations.c.item_id == items.c.id, annotations.c.source == source))
    elif source:
        raise InvalidInputError(f"unknown label source {source!r}: use one of {', '.join(SOURCES)}")
    if labelled is not None:
        where.append(items.c.n_labels > 0 if labelled else items.c.n_labels == 0)
    if labeller:
        user_id = conn.execute(select(users.c.id).where(users.c.name == labeller)).scalar()
        if user_id is None:
            raise InvalidInputError(f"no user named {labeller!r}")
        where.append(exists().where(annotations.c.item_id == items.c.id, annotations.c.user_id == user_id))
    return base, where


# A cursor's parts, each checked against what the columns hold (a larger number would overflow
# in the database driver): ids are BIGINT, ranks INTEGER, confidences finite floats.
_ID = r"(\d{1,19})"
_CURSORS = {
    "id": re.compile(r"i" + _ID, re.ASCII),
    "priority": re.compile(r"(?:s(-?\d{1,10}):" + _ID + r"|u" + _ID + r")", re.ASCII),
    "confidence": re.compile(r"(?:s([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?):" + _ID + r"|u" + _ID + r")",
                             re.ASCII),
}
MAX_ID = 2**63 - 1
MAX_RANK = 2**31 - 1


def _parse_cursor(cursor: str | None, sort: str) -> tuple[str, float | None, int] | None:
    if not cursor:
        return None
    match = _CURSORS[sort].fullmatch(cursor) if sort in _CURSORS else None
    if match is not None:
        kind = cursor[0]
        if sort == "id":
            key, last_id = None, int(match[1])
        elif kind == "u":
            key, last_id = None, int(match[3])
        else:
            key, last_id = (int(match[1]) if sort == "priority" else float(match[1])), int(match[2])
        in_range = key is None or (abs(key) <= MAX_RANK if sort == "priority" else math.isfinite(key))
        if last_id <= MAX_ID and in_range:
            return kind, key, last_id
    raise InvalidInputError(f"invalid page cursor {cursor[:40]!r} for sort {sort!r}; start again from the first page")


def _cursor(kind: str, key: float | None, item_id: int) -> str:
    return f"s{key!r}:{item_id}" if kind == "s" else f"{kind}{item_id}"


COLS = (items.c.id, items.c.external_id, items.c.display, items.c.n_labels, items.c.target_labels,
        items.c.label_tag_id, items.c.label_source, items.c.label_mask)


def browse_items(
    conn: Connection,
    *,
    project: Project,
    search: str = "",
    tag: str | None = None,
    source: str | None = None,
    labelled: bool | None = None,
    labeller: str | None = None,
    text_query: str = "",
    notes: str | None = None,
    sort: str = "id",
    after: str | None = None,
    limit: int = 50,
    scan_window: int = SCAN_WINDOW,
    time_budget: float = TIME_BUDGET,
) -> BrowsePage:
    """One page of the project's items matching every given filter, after cursor ``after``.

    ``search`` is a case-insensitive substring of the item's text or external id (wildcards are
    literal); ``tag`` the final label; ``source`` one of human/import/review (an annotation of
    that source) or conflict; ``labelled`` whether the item has any label; ``labeller`` a user
    name who labelled it; ``text_query`` a full-text search (:mod:`labelloop.store.search`
    syntax; ``SearchSyntaxError`` if bad); ``notes`` items with comments, flags or skip reasons
    (:data:`labelloop.store.notes.FILTERS`); ``sort`` one of :data:`SORTS`.

    With filters that few items pass, the items are examined in sort order ``scan_window`` at a
    time until the page is full or ``time_budget`` seconds have passed; then the page may be
    short (even empty) and its cursor continues the scan where it stopped.
    """
    if sort not in SORTS:
        raise InvalidInputError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"page size must be between 1 and {MAX_PAGE}, got {limit}")
    cursor = _parse_cursor(after, sort)
    base, where = _conditions(conn, project, search=search, tag=tag, source=source, labelled=labelled,
                              labeller=labeller, text_query=text_query)
    if notes:
        where.append(notes_condition(notes))
    if sort == "id":
        kind = "i"
    elif cursor is None:
        kind = "s" if project.current_run_id is not None else "u"
    else:
        kind = cursor[0]
    position = cursor[1:] if cursor is not None else None  # (key, id) to continue after
    deadline = time.monotonic() + time_budget
    found: list[tuple[str, float | None, Any]] = []  # (cursor kind, key, row)
    next_cursor = None
    while True:
        need = limit + 1 - len(found)
        rows, end, exhausted = _window(conn, project, sort, kind, position, base, where, need, scan_window)
        found += [(kind, key, r) for key, r in rows]
        if len(found) > limit:
            page_end = found[limit - 1]
            next_cursor = _cursor(page_end[0], page_end[1], page_end[2].id)
            break
        if exhausted:
            if kind != "s":
                break
            kind, position = "u", None
        else:
            position = end
            if time.monotonic() >= deadline:
                next_cursor = _cursor(kind, *end)
                break
    page = found[:limit]
    return BrowsePage(_decorate(conn, project, [r for _, _, r in page]), next_cursor)


def browse_item(conn: Connection, *, project: Project, item_id: int) -> BrowseRow:
    """One item of the project as the data browser shows it, whole (every field in full), with
    its labels, oldest first. NotFoundError if the project has no such item."""
    row = conn.execute(select(*COLS).where(items.c.id == item_id, items.c.project_id == project.id)).first()
    if row is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    return _decorate(conn, project, [row])[0]


def _window(
    conn: Connection, project: Project, sort: str, kind: str, position: tuple[Any, int] | None,
    base: list[ColumnElement[bool]], where: list[ColumnElement[bool]], need: int, scan_window: int,
) -> tuple[list[tuple[float | None, Any]], tuple[Any, int], bool]:
    """Matching rows among the next items in sort order after ``position``: ([(key, row)], the
    last item examined as (key, id), whether nothing follows it)."""
    if kind == "u":  # items without a score in the current run, by id
        spec = SORTS[sort]
        assert spec is not None
        where = [*where, ~exists().where(item_scores.c.item_id == items.c.id,
                                         item_scores.c.run_id == project.current_run_id, spec[1].is_not(None))]
    if kind != "s":  # by id: a window is a range of ids, read through the primary key
        last = position[1] if position is not None else 0
        q = select(*COLS).where(*base, *where, items.c.id > last).order_by(items.c.id).limit(need)
        upper = min(last + scan_window * ID_RANGE_FACTOR, MAX_ID)
        if where:  # without filters every item is a match: no window needed
            q = q.where(items.c.id <= upper)
        rows = [(None, r) for r in conn.execute(q)]
        if len(rows) == need:
            return rows, (None, rows[-1][1].id), False
        if not where:
            return rows, (None, rows[-1][1].id if rows else last), True
        return rows, (None, upper), upper >= (conn.execute(select(func.max(items.c.id))).scalar() or 0)
    if not where and len(base) == 1:  # nothing to filter: every scored item is a match
        scan_window = need
    column = SORTS[sort][0]  # type: ignore[index]
    table = column.table
    w = select(table.c.item_id.label("wid"), column.label("k")).where(
        table.c.run_id == project.current_run_id, column.is_not(None))
    if position is not None:
        key, last = position
        # a range on the key plus a tie-break, so that an index on the key is usable
        w = w.where(column >= key, or_(column > key, table.c.item_id > last))
    window = w.order_by(column, table.c.item_id).limit(scan_window).subquery()
    q = (select(*COLS, window.c.k).join_from(window, items, items.c.id == window.c.wid)
         .where(*base, *where).order_by(window.c.k, items.c.id).limit(need))
    rows = [(r.k, r) for r in conn.execute(q)]
    if len(rows) == need:
        return rows, (rows[-1][0], rows[-1][1].id), False
    last_row = conn.execute(select(window.c.k, window.c.wid)
                            .order_by(window.c.k.desc(), window.c.wid.desc()).limit(1)).first()
    end = (last_row.k, last_row.wid) if last_row else (position or (None, 0))
    return rows, end, conn.execute(select(func.count()).select_from(window)).scalar_one() < scan_window


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
            select(annotations.c.item_id, users.c.name, annotations.c.tag_id, annotations.c.tag_mask,
                   annotations.c.source)
            .outerjoin(users, users.c.id == annotations.c.user_id)
            .where(annotations.c.item_id.in_(ids))
            .order_by(annotations.c.created_at, annotations.c.id)
        ):
            name = _tag_name(project, a.tag_id) if a.tag_mask is None else ", ".join(names_of(project, a.tag_mask))
            labels[a.item_id].append((a.name, name or "", a.source))
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
                label=_tag_name(project, r.label_tag_id) if r.label_mask is None
                else ", ".join(names_of(project, r.label_mask)),
                label_source=r.label_source,
                priority=s.priority if s is not None else None,
                confidence=s.confidence if s is not None else None,
                predicted=_predicted(project, s),
                annotations=labels[r.id],
                label_set=names_of(project, r.label_mask) if r.label_mask is not None else None,
            )
        )
    return out


def _predicted(project: Project, score: Any) -> str | None:
    if score is None:
        return None
    if score.predicted_mask is not None:
        return ", ".join(names_of(project, score.predicted_mask))
    return _tag_name(project, score.predicted_tag_id)


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
    """The user's human labels per project name (projects without any are left out), their
    answers to gold items included (nothing tells a labeller which items were gold)."""
    rows = conn.execute(
        select(projects.c.name, func.count())
        .join_from(annotations, projects, projects.c.id == annotations.c.project_id)
        .where(annotations.c.user_id == user_id, annotations.c.source == "human")
        .group_by(projects.c.name)
    )
    totals = {name: int(n) for name, n in rows}
    for name, n in conn.execute(
        select(projects.c.name, func.count())
        .join_from(gold_answers, projects, projects.c.id == gold_answers.c.project_id)
        .where(gold_answers.c.user_id == user_id)
        .group_by(projects.c.name)
    ):
        totals[name] = totals.get(name, 0) + int(n)
    return totals


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
