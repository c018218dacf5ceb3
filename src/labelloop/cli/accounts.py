"""Account verbs: ``user ...``, ``token ...`` and ``member ...``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any

import click

from labelloop.cli.base import db_option, engine_for, main
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users


@main.group()
def user() -> None:
    """Manage users (admins and labellers)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "labeller"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@db_option
def user_add(name: str, role: str, password_stdin: bool, db_url: str | None) -> None:
    """Add user NAME. Without --password-stdin a password is generated and printed once."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else store_users.generate_password()
    store_users.validate_user_name(name)  # before a database is created for nothing
    engine = engine_for(db_url)
    with writing(engine) as conn:
        store_users.create_user(conn, name=name, role=role, password=password)
    click.echo(f"created {role} {name!r}", err=True)
    if not password_stdin:
        click.echo(f"password (shown once): {password}")


@main.group()
def token() -> None:
    """Manage API tokens (for `Authorization: Bearer <token>`)."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="A note to recognise the token by.")
@db_option
def token_create(name: str, label: str, db_url: str | None) -> None:
    """Create an API token for user NAME and print it alone on stdout (stored hashed)."""
    engine = engine_for(db_url, create=False)
    with writing(engine) as conn:
        owner = store_users.get_user(conn, name=name)
        value = store_users.create_token(conn, user_id=owner.id, name=label)
    click.echo(value)


@main.group()
def member() -> None:
    """Give labellers access to projects: a labeller sees only the projects they are a member
    of; admins see every project and need no membership. Changes are audit-logged and reach
    a running server within about a second."""


def _in_transaction(db_url: str | None, change: Callable[[Any], Any]) -> Any:
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            return change(conn)
    finally:
        engine.dispose()


@member.command("add")
@click.argument("project")
@click.argument("name")
@db_option
def member_add(project: str, name: str, db_url: str | None) -> None:
    """Make labeller NAME a member of PROJECT.

    A member already: nothing changes. Admins are refused: they see every project anyway."""
    from labelloop.store import members as store_members

    added = _in_transaction(db_url, lambda conn: store_members.add_member(conn, project=project, user=name,
                                                                           actor_id=None))
    click.echo(f"added {name!r} to project {project!r}" if added
               else f"{name!r} is a member of project {project!r} already; nothing changed")


@member.command("remove")
@click.argument("project")
@click.argument("name")
@db_option
def member_remove(project: str, name: str, db_url: str | None) -> None:
    """Take NAME out of PROJECT.

    They no longer see it, within about a second on a running server; their labels stay."""
    from labelloop.store import members as store_members

    _in_transaction(db_url, lambda conn: store_members.remove_member(conn, project=project, user=name, actor_id=None))
    click.echo(f"removed {name!r} from project {project!r}; their labels stay")


@member.command("list")
@click.argument("project")
@db_option
def member_list(project: str, db_url: str | None) -> None:
    """Print PROJECT's members, one name a line.

    Admins see every project and are not listed."""
    from labelloop.store import members as store_members

    engine = engine_for(db_url, create=False)
    try:
        with reading(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
            people = store_members.list_members(conn, project_id=proj.id)
    finally:
        engine.dispose()
    for person in people:
        click.echo(person.name)
    if not people:
        click.echo(f"project {proj.name!r} has no members; add one with "
                   f"`labelloop member add {shlex.quote(proj.name)} NAME` (admins see it without)", err=True)
