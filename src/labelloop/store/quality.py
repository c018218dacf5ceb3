"""Read-only queries behind the team-quality figures: overlap labels, labeller activity,
agreement with the model, and labelling progress over time.

The figures themselves are computed by :mod:`labelloop.orchestrator.quality` (with
:mod:`labelloop.learn.agreement`); this module only reads. Labels with a retired tag are left
out everywhere (they no longer count, see :mod:`labelloop.store.labels`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, extract, func, select

from labelloop.store.browse import labels_per_day
from labelloop.store.schema import annotations, item_scores, tags, users, utcnow

IMPORT_LABELLER = "(imported labels)"  # no user: `import --label-column`; a space no user name has
AGREEMENT_SOURCES = ("human", "import")


def _active_labels() -> Any:
    return annotations.join(tags, tags.c.id == annotations.c.tag_id)


def overlap_labels(conn: Connection, *, project_id: int) -> list[tuple[int, str, int]]:
    """``(item id, labeller name, tag id)`` of every active human or imported label on items
    labelled by at least two different labellers (imported labels count as one labeller,
    :data:`IMPORT_LABELLER`), by item."""
    active = [tags.c.retired.is_(False), annotations.c.source.in_(AGREEMENT_SOURCES)]
    who = func.coalesce(annotations.c.user_id, 0)
    overlap = (
        select(annotations.c.item_id)
        .select_from(_active_labels())
        .where(annotations.c.project_id == project_id, *active)
        .group_by(annotations.c.item_id)
        .having(func.count(func.distinct(who)) >= 2)
    )
    rows = conn.execute(  # the items are the project's: their labels are found by item id alone
        select(annotations.c.item_id, users.c.name, annotations.c.tag_id)
        .select_from(_active_labels().outerjoin(users, users.c.id == annotations.c.user_id))
        .where(*active, annotations.c.item_id.in_(overlap))
        .order_by(annotations.c.item_id, annotations.c.id)
    )
    return [(r.item_id, r.name if r.name is not None else IMPORT_LABELLER, r.tag_id) for r in rows]


def _seconds_between(conn: Connection, later: Any, earlier: Any) -> Any:
    if conn.dialect.name == "sqlite":  # naive UTC text: julianday() reads it
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return extract("epoch", later - earlier)


def labeller_activity(conn: Connection, *, project_id: int, cap_seconds: float) -> dict[str, dict[str, Any]]:
    """Per labeller name: ``labels`` (human labels in the project, retired tags included: it is
    work done) and ``active_seconds``, the sum of the gaps between their consecutive labels,
    each gap capped at ``cap_seconds`` (a long pause counts as a break, not as work)."""
    previous = func.lag(annotations.c.created_at).over(
        partition_by=annotations.c.user_id, order_by=(annotations.c.created_at, annotations.c.id)
    )
    timeline = (
        select(annotations.c.user_id, annotations.c.created_at.label("at"), previous.label("before"))
        .where(annotations.c.project_id == project_id, annotations.c.source == "human",
               annotations.c.user_id.is_not(None))
        .subquery()
    )
    gap = _seconds_between(conn, timeline.c.at, timeline.c.before)
    capped = case((gap > cap_seconds, cap_seconds), (gap < 0, 0.0), else_=gap)
    rows = conn.execute(
        select(users.c.name, func.count().label("labels"), func.sum(capped).label("active"))
        .join_from(timeline, users, users.c.id == timeline.c.user_id)
        .group_by(users.c.name)
    )
    return {r.name: {"labels": int(r.labels), "active_seconds": float(r.active or 0.0)} for r in rows}


def model_agreement(conn: Connection, *, project_id: int, run_id: int, since: datetime) -> dict[str, tuple[int, int]]:
    """Per labeller name: (human labels made at or after ``since`` on items that run
    ``run_id`` scored with a prediction, of which equal to the prediction)."""
    same = func.sum(case((annotations.c.tag_id == item_scores.c.predicted_tag_id, 1), else_=0))
    rows = conn.execute(
        select(users.c.name, func.count().label("compared"), same.label("same"))
        .select_from(
            annotations.join(
                item_scores, and_(item_scores.c.item_id == annotations.c.item_id, item_scores.c.run_id == run_id)
            ).join(users, users.c.id == annotations.c.user_id)
        )
        .where(annotations.c.project_id == project_id, annotations.c.source == "human",
               annotations.c.created_at >= since, item_scores.c.predicted_tag_id.is_not(None))
        .group_by(users.c.name)
    )
    return {r.name: (int(r.compared), int(r.same or 0)) for r in rows}


def label_progress(
    conn: Connection, *, project_id: int, max_days: int = 365, now: datetime | None = None
) -> dict[str, int]:
    """Cumulative human labels at the end of each UTC day (``YYYY-MM-DD``, oldest first), from
    the day of the first label to today (at most ``max_days`` days; earlier labels are counted
    in the first day's total). Empty before the first label."""
    now = (now or utcnow()).astimezone(UTC)
    human = [annotations.c.project_id == project_id, annotations.c.source == "human"]
    first = conn.execute(select(func.min(annotations.c.created_at)).where(*human)).scalar()
    if first is None:
        return {}
    first = first if isinstance(first, datetime) else datetime.fromisoformat(str(first))
    first = first.replace(tzinfo=UTC) if first.tzinfo is None else first.astimezone(UTC)
    days = max(1, min(max_days, (now.date() - first.date()).days + 1))
    per_day = labels_per_day(conn, project_id=project_id, days=days, now=now)
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    total = conn.execute(select(func.count()).where(*human, annotations.c.created_at < start)).scalar_one()
    out = {}
    for day, n in per_day.items():
        total += n
        out[day] = int(total)
    return out
