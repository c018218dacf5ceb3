"""Progress figures for the labelling pages and the JSON API (read-only queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from labelloop.store.labels import label_counts, labelled_items
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, items, projects, users, utcnow


def project_stats(
    conn: Connection, *, project: Project, user_id: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``items``, ``labelled`` (items with a final label), ``remaining`` (items that still need
    labels), ``conflicts``, ``per_tag`` (final labels per tag, in tag order; multi-label: items
    whose final set has the tag, so an item counts once per tag of its set), ``per_labeller``
    (human labels per user name) and, for ``user_id``, ``yours_today`` (since 00:00 UTC) and
    ``yours_total``."""
    now = now or utcnow()
    totals = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((items.c.n_labels < items.c.target_labels, 1), else_=0)), 0),
            func.coalesce(func.sum(case((items.c.label_source == "conflict", 1), else_=0)), 0),
        ).where(items.c.project_id == project.id)
    ).one()
    counts = label_counts(conn, project_id=project.id)
    per_tag = {t.name: counts.get(t.id, 0) for t in project.tags if not t.retired or counts.get(t.id)}
    per_user = conn.execute(
        select(users.c.name, func.count())
        .select_from(annotations.join(users, users.c.id == annotations.c.user_id))
        .where(annotations.c.project_id == project.id, annotations.c.source == "human")
        .group_by(users.c.name)
        .order_by(func.count().desc(), users.c.name)
    ).all()
    result: dict[str, Any] = {
        "project": project.name,
        "items": int(totals[0]),
        "labelled": labelled_items(conn, project_id=project.id, multi_label=True)
        if project.multi_label else sum(counts.values()),
        "remaining": int(totals[1]),
        "conflicts": int(totals[2]),
        "per_tag": per_tag,
        "per_labeller": {name: int(n) for name, n in per_user},
    }
    if user_id is not None:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        mine = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((annotations.c.created_at >= midnight, 1), else_=0)), 0),
            ).where(
                annotations.c.project_id == project.id,
                annotations.c.user_id == user_id,
                annotations.c.source == "human",
            )
        ).one()
        result["yours_total"] = int(mine[0])
        result["yours_today"] = int(mine[1])
    return result


def projects_overview(conn: Connection) -> list[dict[str, Any]]:
    """Every project with ``name``, ``items``, ``labelled`` and ``remaining``, by name."""
    per_project = {
        row.project_id: row
        for row in conn.execute(
            select(
                items.c.project_id,
                func.count().label("items"),
                func.coalesce(func.sum(case((or_(items.c.label_tag_id.is_not(None), items.c.label_mask.is_not(None)), 1),
                                            else_=0)), 0).label("labelled"),
                func.coalesce(
                    func.sum(case((items.c.n_labels < items.c.target_labels, 1), else_=0)), 0
                ).label("remaining"),
            ).group_by(items.c.project_id)
        )
    }
    out = []
    for pid, name in conn.execute(select(projects.c.id, projects.c.name).order_by(projects.c.name)):
        row = per_project.get(pid)
        out.append(
            {
                "name": name,
                "items": int(row.items) if row else 0,
                "labelled": int(row.labelled) if row else 0,
                "remaining": int(row.remaining) if row else 0,
            }
        )
    return out
