"""Account verbs: ``user ...``, ``token ...`` and ``member ...``."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from typing import Any

import click

from labelloop.cli.base import db_option, engine_for, main
from labelloop.store import browse, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import sessions as store_sessions
from labelloop.store import users as store_users


@main.group()
def user() -> None:
    """Manage users (admins and labellers): add, passwd, list.

    Passwords need at least 10 characters and may not be common or easy to guess (a passphrase
    of four or five unrelated words is best)."""


def _read_password(password_stdin: bool) -> str:
    return sys.stdin.readline().rstrip("\r\n") if password_stdin else store_users.generate_password()


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "labeller"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@db_option
def user_add(name: str, role: str, password_stdin: bool, db_url: str | None) -> None:
    """Add user NAME. Without --password-stdin a password is generated and printed once."""
    password = _read_password(password_stdin)
    store_users.validate_user_name(name)  # before a database is created for nothing
    store_users.validate_password(password, user_name=name)
    engine = engine_for(db_url)
    with writing(engine) as conn:
        store_users.create_user(conn, name=name, role=role, password=password)
    click.echo(f"created {role} {name!r}", err=True)
    if not password_stdin:
        click.echo(f"password (shown once): {password}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--keep-tokens", is_flag=True, help="Keep the user's API tokens (by default they are revoked).")
@db_option
def user_passwd(name: str, password_stdin: bool, keep_tokens: bool, db_url: str | None) -> None:
    """Set a new password for user NAME (also to recover a lost admin password).

    Without --password-stdin a password is generated and printed once. The user's sessions end
    and, unless --keep-tokens, their API tokens are revoked (on a running server within about a
    second). A refused password changes nothing."""
    password = _read_password(password_stdin)
    store_users.validate_password(password, user_name=name)  # before the database is opened
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            target = store_users.get_user(conn, name=name)
            ended = store_users.set_password(conn, user_id=target.id, password=password, keep_tokens=keep_tokens)
            browse.record_audit(conn, user_id=None, action="user.password_reset",
                                details={"name": target.name, "via": "cli", "keep_tokens": keep_tokens})
    finally:
        engine.dispose()
    click.echo(f"new password for {target.role} {target.name!r}; {ended.describe()}"
               + (" (tokens kept)" if keep_tokens else ""), err=True)
    if not password_stdin:
        click.echo(f"password (shown once): {password}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects instead of a table.")
@db_option
def user_list(as_json: bool, db_url: str | None) -> None:
    """List users: name, role, state, when created, live sessions and API tokens."""
    engine = engine_for(db_url, create=False)
    try:
        with reading(engine) as conn:
            people = store_users.list_users(conn)
            live = store_sessions.live_session_counts(conn)
            tokens = store_users.token_counts(conn)
    finally:
        engine.dispose()
    rows = [{"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at.isoformat(),
             "sessions": live.get(u.id, 0), "tokens": tokens.get(u.id, 0)} for u in people]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no users yet; add one with `labelloop user add NAME --role admin`", err=True)
        return
    width = max(4, *(len(r["name"]) for r in rows))
    click.echo(f"{'name':<{width}}  {'role':<8}  {'state':<8}  {'created':<16}  sessions  tokens")
    for r, u in zip(rows, people, strict=True):
        click.echo(f"{r['name']:<{width}}  {r['role']:<8}  {'disabled' if u.disabled else 'active':<8}  "
                   f"{u.created_at:%Y-%m-%d %H:%M}  {r['sessions']:>8}  {r['tokens']:>6}")


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
