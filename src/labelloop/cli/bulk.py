"""Bulk labelling verbs: ``bulk list`` and ``bulk undo`` (bulk operations are made by admins on
the bulk page or with ``POST /api/projects/{p}/bulk``)."""

from __future__ import annotations

import click

from labelloop.cli.base import db_option, engine_for, main
from labelloop.store import reading, writing
from labelloop.store import bulklabels as store_bulk
from labelloop.store import projects as store_projects


@main.group()
def bulk() -> None:
    """List and undo a project's bulk labelling operations."""


@bulk.command("list")
@click.argument("project")
@db_option
def bulk_list(project: str, db_url: str | None) -> None:
    """Print PROJECT's bulk operations, newest first: id, time, admin, action, tag, items, and
    whether (and by whom) it was undone."""
    engine = engine_for(db_url, create=False)
    try:
        with reading(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
            ops = store_bulk.list_bulk(conn, project=proj, limit=10_000)
    finally:
        engine.dispose()
    if not ops:
        click.echo(f"project {proj.name!r} has no bulk operations", err=True)
    for op in ops:
        state = "active" if op.undone_at is None else (
            f"undone {op.undone_at:%Y-%m-%d %H:%M} by {op.undone_by or '(command line)'}")
        click.echo(f"{op.id}\t{op.created_at:%Y-%m-%d %H:%M}\t{op.user or '-'}\t{op.action} {op.tag!r}\t"
                   f"{op.n_items} items\t{state}")


@bulk.command("undo")
@click.argument("project")
@click.argument("bulk_id", type=int)
@db_option
def bulk_undo(project: str, bulk_id: int, db_url: str | None) -> None:
    """Undo bulk operation BULK_ID of PROJECT as a whole: every item it listed gets back the
    label it would have without it (human labels are never touched). Audit-logged."""
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
            done = store_bulk.undo_bulk(conn, project=proj, bulk_id=bulk_id, user_id=None)
    finally:
        engine.dispose()
    click.echo(f"undid bulk operation {bulk_id} of project {proj.name!r}: {done['items']} items, "
               f"{done['changed']} changed their final label")
