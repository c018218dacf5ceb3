"""Progress figures for the labelling pages and the JSON API (read-only queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from labelloop.store.labels import label_counts, labelled_items
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, gold_answers, items, projects, users, utcnow


def project_stats(
    conn: Connection, *, project: Project, user_id: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``items``, ``labelled`` (items with a final label), ``remaining`` (items that still need
    labels), ``conflicts``, ``per_tag`` (final labels per tag, in tag order; multi-label: items
    whose final set has the tag, so an item counts once per tag of its set), ``per_labeller``
    (human labels per user name) and, for ``user_id``, ``yours_today`` (since 00:00 UTC) and
    ``yours_total``. The per-labeller counts include answers to gold items (store/gold.py), so
    that no count tells a labeller which of their items were gold."""
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
        "per_labeller": _with_gold_answers({name: int(n) for name, n in per_user}, conn, project.id),
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
        gold = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((gold_answers.c.created_at >= midnight, 1), else_=0)), 0),
            ).where(gold_answers.c.project_id == project.id, gold_answers.c.user_id == user_id)
        ).one()
        result["yours_total"] = int(mine[0]) + int(gold[0])
        result["yours_today"] = int(mine[1]) + int(gold[1])
    return result


def _with_gold_answers(per_user: dict[str, int], conn: Connection, project_id: int) -> dict[str, int]:
    """Labels per labeller plus their gold answers, most first (then by name)."""
    for name, n in conn.execute(
        select(users.c.name, func.count())
        .select_from(gold_answers.join(users, users.c.id == gold_answers.c.user_id))
        .where(gold_answers.c.project_id == project_id)
        .group_by(users.c.name)
    ):
        per_user[name] = per_user.get(name, 0) + int(n)
    return dict(sorted(per_user.items(), key=lambda kv: (-kv[1], kv[0])))


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
