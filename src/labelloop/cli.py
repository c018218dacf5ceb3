"""The `labelloop` command line (Click).

Every command takes ``--db URL`` (else ``LABELLOOP_DATABASE_URL``, else
``sqlite:///labelloop.db``). Errors print one line ``error: ...`` on stderr and exit with 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from labelloop.config import Settings
from labelloop.errors import LabelloopError
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import project_summary

err_console = Console(stderr=True)


class _Cli(click.Group):
    """A group that turns labelloop's own errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabelloopError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        default=None,
        help="Database URL (default: $LABELLOOP_DATABASE_URL, else sqlite:///labelloop.db).",
    )(func)


def settings_for(db_url: str | None) -> Settings:
    return Settings.from_env(database_url=db_url)


def engine_for(db_url: str | None) -> Engine:
    return open_engine(settings_for(db_url).database_url)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelloop")
def main() -> None:
    """labelloop: label texts with a team and a model in the loop.

    Typical flow: `init` a project, `import` items, `user add` labellers, `serve` the
    labelling pages (with `--orchestrate` to retrain as labels arrive), then `export`.
    """


@main.command()
@click.argument("project")
@click.option("--labels", required=True, help='Comma-separated tags in display order, e.g. "A,B,C".')
@click.option("--seed", type=int, default=None, help="Seed of the serving order (default: random).")
@db_option
def init(project: str, labels: str, seed: int | None, db_url: str | None) -> None:
    """Create PROJECT with an ordered list of tags (an existing project is an error)."""
    engine = engine_for(db_url)
    with writing(engine) as conn:
        created = store_projects.create_project(
            conn, name=project, labels=store_projects.parse_tag_list(labels), seed=seed
        )
    click.echo(f"created project {created.name!r} with tags: {', '.join(created.tag_names)}")


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def status(project: str, as_json: bool, db_url: str | None) -> None:
    """Show PROJECT's progress: items, labelled items and labels per tag."""
    engine = engine_for(db_url)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        summary = project_summary(conn, project=proj)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    console = Console()
    share = summary["labelled"] / summary["items"] if summary["items"] else 0.0
    console.print(
        f"{proj.name}: {summary['labelled']:,} of {summary['items']:,} items labelled ({share:.1%})",
        soft_wrap=True,
    )
    table = Table()
    table.add_column("tag")
    table.add_column("labels", justify="right")
    table.add_column("share", justify="right")
    total = max(summary["labelled"], 1)
    for tag, count in summary["labels"].items():
        table.add_row(tag, f"{count:,}", f"{count / total:.1%}")
    if summary["conflicts"]:
        table.add_row("(conflicts)", f"{summary['conflicts']:,}", "")
    console.print(table)


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
    engine = engine_for(db_url)
    with writing(engine) as conn:
        owner = store_users.get_user(conn, name=name)
        value = store_users.create_token(conn, user_id=owner.id, name=label)
    click.echo(value)


@main.command("settings")
def settings_cmd() -> None:
    """List every LABELLOOP_* setting with its default and meaning."""
    for name, default, doc in Settings.documentation():
        click.echo(f"{name} (default: {default})\n    {doc}")


@main.command()
@db_option
def migrate(db_url: str | None) -> None:
    """Bring the database schema up to date (also done automatically on first use)."""
    engine_for(db_url)
    click.echo("database schema is up to date")


@main.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@db_option
def backup(target: Path, db_url: str | None) -> None:
    """Write a consistent copy of a live SQLite database to TARGET (PostgreSQL: use pg_dump)."""
    from labelloop.store.backup import backup_sqlite

    size = backup_sqlite(engine_for(db_url), target=target)
    click.echo(f"backed up {size:,} bytes to {target}")
