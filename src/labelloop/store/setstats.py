"""Progress figures that know multi-label projects (read-only queries).

In a multi-label project an item's final label is a *set* (``items.label_mask``; 0 = labelled,
none of the tags applies) and ``label_tag_id`` stays null, so the single-label counts of
:mod:`labelloop.store.stats` and :func:`labelloop.store.labels.label_counts` read nothing there.
These functions give the same figures for both kinds: ``labelled`` counts items with a final
label or set, and per tag an item counts once for every tag of its final set (so the per-tag
counts of a multi-label project may add up to more, or fewer, than ``labelled``).
Single-label projects go straight to the functions of :mod:`labelloop.store.stats`, unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, case, func, literal, select

from labelloop.store.labels import label_counts
from labelloop.store.projects import Project
from labelloop.store.schema import items, projects
from labelloop.store.stats import project_stats, projects_overview


def set_counts(conn: Connection, *, project: Project) -> dict[int, int]:
    """Multi-label projects: tag id -> items whose final set holds the tag (one scan of the
    project's items, every tag with a bit, retired ones included)."""
    with_bits = [t for t in project.tags if t.bit is not None]
    if not with_bits:
        return {}
    sums = [
        func.coalesce(func.sum(case((items.c.label_mask.op("&")(literal(1 << t.bit, BigInteger)) != 0, 1),
                                    else_=0)), 0)
        for t in with_bits
    ]
    row = conn.execute(
        select(*sums).where(items.c.project_id == project.id, items.c.label_mask.is_not(None))
    ).one()
    return {t.id: int(n) for t, n in zip(with_bits, row, strict=True)}


def tag_counts(conn: Connection, *, project: Project) -> dict[int, int]:
    """Items per tag id in the final labels: :func:`labelloop.store.labels.label_counts` for a
    single-label project, :func:`set_counts` for a multi-label one."""
    if project.multi_label:
        return set_counts(conn, project=project)
    return label_counts(conn, project_id=project.id)


def stats_of(conn: Connection, *, project: Project, user_id: int | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """:func:`labelloop.store.stats.project_stats` for either kind of project: for a
    multi-label one ``labelled`` is the items with a final set and ``per_tag`` counts each item
    once per tag of its set."""
    stats = project_stats(conn, project=project, user_id=user_id, now=now)
    if not project.multi_label:
        return stats
    counts = set_counts(conn, project=project)
    stats["per_tag"] = {t.name: counts.get(t.id, 0) for t in project.tags if not t.retired or counts.get(t.id)}
    stats["labelled"] = int(conn.execute(
        select(func.count()).where(items.c.project_id == project.id, items.c.label_mask.is_not(None))
    ).scalar_one())
    return stats


def overview_of(conn: Connection) -> list[dict[str, Any]]:
    """:func:`labelloop.store.stats.projects_overview` with the ``labelled`` figure of
    multi-label projects (items with a final set) put right."""
    overview = projects_overview(conn)
    labelled = dict(conn.execute(
        select(items.c.project_id, func.count())
        .select_from(items.join(projects, projects.c.id == items.c.project_id))
        .where(projects.c.multi_label.is_(True), items.c.label_mask.is_not(None))
        .group_by(items.c.project_id)
    ).all())
    if labelled:
        names = dict(conn.execute(select(projects.c.name, projects.c.id).where(projects.c.multi_label.is_(True))).all())
        for entry in overview:
            if entry["name"] in names:
                entry["labelled"] = int(labelled.get(names[entry["name"]], 0))
    return overview
