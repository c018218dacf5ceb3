"""The command group and what every command shares: ``--db``, the settings, opening the
database, and :class:`_Cli`, which turns errors into one line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import Engine

from labelloop.config import Settings
from labelloop.errors import LabelloopError
from labelloop.store import open_engine
from labelloop.store.opening import is_unavailable, unavailable


_DB_URL = "labelloop.database_url"  # ctx.meta key: the URL engine_for opened


class _Cli(click.Group):
    """A group that turns labelloop's own errors, and a database that cannot be used, into one
    clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabelloopError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            url = ctx.meta.get(_DB_URL) or settings_for(None).database_url
            click.echo(f"error: {unavailable(exc, url=url)}", err=True)
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


def engine_for(db_url: str | None, *, create: bool = True) -> Engine:
    """Open (and migrate) the database of ``--db``; ``create=False`` refuses a database that
    does not exist yet instead of creating it (see the module docstring)."""
    url = settings_for(db_url).database_url
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_DB_URL] = url
    return open_engine(url, create=create)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelloop")
def main() -> None:
    """labelloop: label texts with a team and a model in the loop.

    Typical flow: `init` a project, `import` items, `user add` labellers and `member add`
    them to the project, `serve` the labelling pages (with `--orchestrate` to retrain as labels arrive), then `export`.
    """
