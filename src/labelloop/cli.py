"""The `labelloop` command line (Click).

Every command takes ``--db URL`` (else ``LABELLOOP_DATABASE_URL``, else
``sqlite:///labelloop.db``). Errors print one line ``error: ...`` on stderr and exit with 2.

Open the database with :func:`engine_for`. A verb that needs an existing database (one that
reads, or changes a project or user that must exist: ``status``, ``export``, ``configure``,
``import``, ``labels``, ``token create``, ``orchestrate``, ``backup``, ``user list``,
``member ...``) uses ``engine_for(db_url, create=False)``: a missing SQLite file is then
refused with "no labelloop database at ..." instead of being created. Only the verbs that set a
database up (``init``, ``user add``, ``migrate``, ``demo``, ``serve``) use the default
``create=True``. A database that cannot be opened (or fails later with a connection error) is
reported by :class:`_Cli` as ``error: cannot open database <URL without password>: <reason>``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
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
from labelloop.store import runs as store_runs
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.items import project_summary
from labelloop.store.opening import is_unavailable, unavailable

err_console = Console(stderr=True)


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


_SETTING_OPTIONS = [
    click.option("--overlap-fraction", type=float, default=None,
                 help="Share of items (0-1) labelled by several people, for agreement (default 0)."),
    click.option("--overlap-k", type=int, default=None, help="Different labellers per overlap item (default 2)."),
    click.option("--audit-fraction", type=float, default=None,
                 help="Share of served items (0-1) drawn at random as audit items (default 0.05)."),
    click.option("--lease-seconds", type=int, default=None,
                 help="How long a served item is held for its labeller (default: $LABELLOOP_LEASE_SECONDS)."),
    click.option("--min-new-labels", type=int, default=None, help="New labels that make a retrain due (default 10)."),
    click.option("--model", default=None, help="Model name, e.g. tfidf-logreg (the default)."),
    click.option("--strategy", default=None, help="Query strategy, e.g. margin (the default)."),
    click.option("--exploration", type=float, default=None,
                 help="Share (0-1) of the queue's head picked at random (default 0.1)."),
    click.option("--class-weight", type=click.Choice(["balanced", "none"]), default=None,
                 help="Class weights of the classifier (default none)."),
    click.option("--show-item-ids/--hide-item-ids", "show_item_ids", default=None,
                 help="Show labellers each item's external id (default: hidden; an id may give the answer away)."),
]


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_SETTING_OPTIONS):
        func = option(func)
    return func


def _settings_given(options: dict[str, Any]) -> dict[str, Any]:
    """The project settings given on the command line (``--class-weight none`` is None)."""
    given = {key: value for key, value in options.items() if value is not None}
    if "class_weight" in given:
        given["class_weight"] = None if given["class_weight"] == "none" else given["class_weight"]
    if {"model", "strategy", "class_weight"} & set(given):
        from labelloop.learn import get_model_spec, get_strategy

        if "model" in given:
            get_model_spec(given["model"], class_weight=given.get("class_weight"))
        if "strategy" in given:
            get_strategy(given["strategy"])
    return given


@main.command()
@click.argument("project")
@click.option("--labels", required=True, help='Comma-separated tags in display order, e.g. "A,B,C".')
@click.option("--seed", type=int, default=None, help="Seed of the serving order (default: random).")
@setting_options
@db_option
def init(project: str, labels: str, seed: int | None, db_url: str | None, **options: Any) -> None:
    """Create PROJECT with an ordered list of tags (an existing project is an error).

    The settings options are those of `configure` (which changes them later)."""
    from labelloop.store.configure import normalise_settings

    values = normalise_settings(_settings_given(options))
    store_projects.validate_project_name(project)  # before a database is created for nothing
    tags = store_projects.parse_tag_list(labels)
    engine = engine_for(db_url)
    with writing(engine) as conn:
        created = store_projects.create_project(conn, name=project, labels=tags, seed=seed, settings=values)
    click.echo(f"created project {created.name!r} with tags: {', '.join(created.tag_names)}")


@main.command()
@click.argument("project")
@setting_options
@db_option
def configure(project: str, db_url: str | None, **options: Any) -> None:
    """Show or change PROJECT's settings; with no option, print them.

    Changes are validated (nothing changes on an error), recorded in the audit log and
    printed. A new overlap fraction or k applies at once to every item without a label yet
    (and to items imported later); items with labels keep the number of labellers they had.
    """
    from labelloop.store.configure import configure_project, effective_settings

    values = _settings_given(options)
    settings = settings_for(db_url)
    engine = engine_for(db_url, create=False)
    if not values:
        with reading(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
        for key, value in effective_settings(proj).items():
            click.echo(f"{key}: {_show(key, value, settings)}")
        return
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        done = configure_project(conn, project=proj, values=values)
    if not done.changes:
        click.echo("nothing changed")
    for key, (old, new) in done.changes.items():
        click.echo(f"{key}: {_show(key, old, settings)} -> {_show(key, new, settings)}")
    if "overlap_fraction" in done.changes or "overlap_k" in done.changes:
        click.echo(f"{done.retargeted:,} unlabelled items got a new number of labellers")


def _show(key: str, value: Any, settings: Settings) -> str:
    """A setting's value for people; one left to the environment shows its effective value."""
    if value is None:
        return f"{settings.lease_seconds} (from LABELLOOP_LEASE_SECONDS)" if key == "lease_seconds" else "none"
    return str(value)


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def status(project: str, as_json: bool, db_url: str | None) -> None:
    """Show PROJECT's progress: items, labelled items, labels per tag, the model, its audit
    estimate (accuracy on random held-out items, 95 % CI), the stopping advice and agreement."""
    from labelloop.orchestrator.quality import agreement_figures, status_summary

    engine = engine_for(db_url, create=False)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        summary = project_summary(conn, project=proj)
        summary["model"] = store_runs.current_model(conn, project_id=proj.id)
        summary.update(store_runs.quality_summary(conn, project_id=proj.id))  # audit, advice
        summary["agreement"] = status_summary(agreement_figures(conn, project=proj))
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
    model = summary["model"]
    if model is None:
        console.print("model: none yet (run `labelloop orchestrate`)")
    else:
        cv = model["cv"]
        score = f", CV accuracy {cv['accuracy']:.3f}, macro-F1 {cv['macro_f1']:.3f}" if cv else ", not cross-validated yet"
        console.print(f"model: version {model['version']} from {model['labels_used']:,} labels{score}", soft_wrap=True)
    _print_audit(console, summary["audit"], summary["advice"])
    agree = summary["agreement"]
    if agree["items_with_overlap"]:
        alpha = agree["krippendorff_alpha"]
        console.print(f"agreement: {agree['items_with_overlap']:,} items labelled by several people, "
                      f"{agree['percent']:.1%} of label pairs agree, Krippendorff's alpha "
                      f"{'undefined' if alpha is None else f'{alpha:.3f}'}", soft_wrap=True)


def _print_audit(console: Console, audit: dict[str, Any], advice: dict[str, Any] | None) -> None:
    """The audit estimate (beside the CV score, which reads actively chosen, harder items), only
    with its interval and from enough audit items, and the advice."""
    from labelloop.orchestrator.quality import audit_view

    if audit["labelled"] or advice is not None:  # a model to estimate
        console.print(f"audit estimate: {audit_view(audit)['line']}", soft_wrap=True)
    if advice is not None:
        console.print(f"advice: {advice['message']}", soft_wrap=True)


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


@main.group("labels")
def labels_group() -> None:
    """Change PROJECT's tags mid-project: add, rename, merge, retire.

    Every change is recorded in the audit log and requests a retrain; labels are never lost
    (a retired tag's labels are kept for history but no longer count).
    """


def _tag_change(project: str, db_url: str | None, change: Callable[[Any, Any], Any]) -> Any:
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            return change(conn, store_projects.get_project(conn, name=project))
    finally:
        engine.dispose()


@labels_group.command("add")
@click.argument("project")
@click.argument("name")
@db_option
def labels_add(project: str, name: str, db_url: str | None) -> None:
    """Add tag NAME at the end of PROJECT's order (the name of a retired tag reactivates it)."""
    outcome = _tag_change(project, db_url, lambda conn, p: store_tags.add_tag(conn, project=p, name=name, user_id=None))
    click.echo(f"{outcome} tag {name!r} in project {project!r}")


@labels_group.command("rename")
@click.argument("project")
@click.argument("old")
@click.argument("new")
@db_option
def labels_rename(project: str, old: str, new: str, db_url: str | None) -> None:
    """Rename tag OLD to NEW; its labels follow it."""
    _tag_change(project, db_url, lambda conn, p: store_tags.rename_tag(conn, project=p, old=old, new=new, user_id=None))
    click.echo(f"renamed tag {old!r} to {new!r} in project {project!r}")


@labels_group.command("merge")
@click.argument("project")
@click.argument("source", metavar="FROM")
@click.argument("into", metavar="INTO")
@db_option
def labels_merge(project: str, source: str, into: str, db_url: str | None) -> None:
    """Move every label (and adjudication) of tag FROM to tag INTO, then retire FROM."""
    counts = _tag_change(project, db_url,
                         lambda conn, p: store_tags.merge_tags(conn, project=p, source=source, into=into, user_id=None))
    click.echo(f"merged {source!r} into {into!r}: {counts['annotations']:,} labels on {counts['items']:,} items "
               f"moved; {source!r} is retired")


@labels_group.command("retire")
@click.argument("project")
@click.argument("tag")
@db_option
def labels_retire(project: str, tag: str, db_url: str | None) -> None:
    """Stop offering TAG; its labels are kept but no longer count (items labelled only with it
    go back to the queue for other labellers)."""
    counts = _tag_change(project, db_url,
                         lambda conn, p: store_tags.retire_tag(conn, project=p, name=tag, user_id=None))
    click.echo(f"retired {tag!r}: {counts['items']:,} items recomputed, {counts['reopened']:,} back in the queue")


@main.command("settings")
def settings_cmd() -> None:
    """List every LABELLOOP_* setting with its default and meaning."""
    for name, default, doc in Settings.documentation():
        click.echo(f"{name} (default: {default})\n    {doc}")


def _column_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [c.strip() for c in value.split(",") if c.strip()]


@main.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id-column", required=True, help="Column with each item's unique id.")
@click.option("--text-columns", required=True,
              help="Comma-separated columns the model reads, joined with a blank line, e.g. title,body.")
@click.option("--display-columns", default=None,
              help="Comma-separated columns shown to labellers, in order (default: the text columns).")
@click.option("--label-column", default=None, help="Column with existing labels (empty cells: unlabelled).")
@click.option("--add-labels", is_flag=True, help="Add unknown tags of --label-column to the project.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of a CSV or JSONL file.")
@click.option("--update", is_flag=True, help="Replace display and text of ids already present (else skip them).")
@db_option
def import_cmd(project: str, file: Path, id_column: str, text_columns: str, display_columns: str | None,
               label_column: str | None, add_labels: bool, encoding: str, update: bool, db_url: str | None) -> None:
    """Import items from FILE (.csv, .jsonl or .parquet) into PROJECT: all rows or, on any error, none."""
    from labelloop.io import ImportOptions, import_file

    options = ImportOptions(
        id_column=id_column, text_columns=_column_list(text_columns) or [],
        display_columns=_column_list(display_columns), label_column=label_column,
        add_labels=add_labels, update=update,
    )
    settings = settings_for(db_url)
    engine = engine_for(db_url, create=False)
    try:
        result = import_file(engine, project=project, path=file, options=options, settings=settings,
                             encoding=encoding, show_progress=True)
    finally:
        engine.dispose()
    click.echo(result.summary())


@main.command("export")
@click.argument("project")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--with-predictions", is_flag=True,
              help="Fill items without a human label with the current model's prediction.")
@click.option("--min-confidence", type=float, default=None,
              help="With --with-predictions: leave predictions below this probability unlabelled.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists (else an existing OUT is an error).")
@click.option("--raw", is_flag=True,
              help="CSV: write cells as they are; by default a cell starting with = + - @, a tab or a "
                   "carriage return gets a leading ' so spreadsheets do not run it as a formula.")
@db_option
def export_cmd(project: str, out: Path, with_predictions: bool, min_confidence: float | None, force: bool,
               raw: bool, db_url: str | None) -> None:
    """Export PROJECT's items and final labels to OUT (.csv, .jsonl or .parquet).

    OUT is written completely or not at all, never through a symbolic link, with your umask."""
    from labelloop.io import export_project

    settings = settings_for(db_url)
    engine = engine_for(db_url, create=False)
    try:
        result = export_project(engine, project=project, path=out, with_predictions=with_predictions,
                                min_confidence=min_confidence, chunk_rows=settings.import_chunk_rows,
                                show_progress=True, overwrite=force, raw=raw)
    finally:
        engine.dispose()
    click.echo(f"exported {result.rows:,} items to {result.path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
@click.option("--no-serve", is_flag=True, help="Only set up the project and the admin user.")
@db_option
def demo(host: str, port: int, no_serve: bool, db_url: str | None) -> None:
    """Create project bbc-news (2,225 BBC articles, unlabelled) and user admin, then serve."""
    from labelloop.io.demo_data import DEMO_ADMIN, DEMO_PROJECT, setup_demo

    settings = settings_for(db_url)
    engine = engine_for(db_url)
    try:
        setup = setup_demo(engine, settings)
        _hint_if_no_users(engine)
    finally:
        engine.dispose()
    if setup.imported is not None:
        click.echo(f"created project {DEMO_PROJECT!r} with {setup.imported.imported:,} unlabelled articles")
    else:
        click.echo(f"project {DEMO_PROJECT!r} exists already; left as it is")
    if setup.admin_password is not None:
        click.echo(f"created admin {DEMO_ADMIN!r}; password (shown once): {setup.admin_password}")
    else:
        click.echo(f"user {DEMO_ADMIN!r} exists already; log in with its password")
    if no_serve:
        return
    from labelloop.server import serve

    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    serve(settings, host=host, port=port, workers=1, orchestrate=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each with its own single database writer).")
@click.option("--orchestrate", is_flag=True, help="Also run the orchestrator (retraining) in this process.")
@db_option
def serve(host: str, port: int, workers: int, orchestrate: bool, db_url: str | None) -> None:
    """Serve the labelling pages and the JSON API (OpenAPI at /docs) until Ctrl+C or SIGTERM.

    Stopping lets the requests in flight finish (at most $LABELLOOP_SHUTDOWN_TIMEOUT seconds)
    and commits every queued write; the exit status is then 0. One log line per request on
    stderr ($LABELLOOP_LOG_FORMAT: text or json)."""
    from labelloop.server import serve as run_server

    settings = settings_for(db_url)
    engine = engine_for(db_url)  # migrate once here, not in every worker
    try:
        _hint_if_no_users(engine)
    finally:
        engine.dispose()
    click.echo(f"serving on http://{host}:{port}/ with {workers} worker(s) (Ctrl+C to stop)", err=True)
    run_server(settings, host=host, port=port, workers=workers, orchestrate=orchestrate)


def _hint_if_no_users(engine: Engine) -> None:
    """Say how to create the first user (no one can log in without one)."""
    with reading(engine) as conn:
        if store_users.list_users(conn):
            return
    click.echo("no users yet, so no one can log in: create an admin with "
               "`labelloop user add NAME --role admin` (it prints a password once)", err=True)


@main.command()
@click.argument("project", required=False)
@click.option("--all", "all_projects", is_flag=True, help="Watch every project (one pass over all per interval).")
@click.option("--once", is_flag=True, help="Run one round now and exit (fails if another orchestrator holds PROJECT).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between checks for new labels (default: $LABELLOOP_ORCHESTRATE_INTERVAL, 30).")
@click.option("--min-new-labels", type=click.IntRange(min=1), default=None,
              help="Retrain after this many new labels (default: the project's setting, 10).")
@click.option("--model", default=None, help="Model name, e.g. tfidf-logreg (default: the project's setting).")
@click.option("--strategy", default=None, help="Query strategy, e.g. margin (default: the project's setting).")
@db_option
def orchestrate(project: str | None, all_projects: bool, once: bool, interval: float | None, min_new_labels: int | None, model: str | None,
                strategy: str | None, db_url: str | None) -> None:
    """Retrain PROJECT's model as labels arrive and reorder its queue, until stopped.

    One orchestrator per project: a second one waits for the first (with --once it fails at
    once). SIGTERM or Ctrl+C abandons a round in progress cleanly; the last complete version
    keeps serving. An admin's "retrain now" starts a round at the next check. With --all
    (deployment), every project is watched by this one process.
    """
    if all_projects == (project is not None):
        raise click.UsageError("give either PROJECT or --all")
    import signal
    import threading

    from labelloop.logs import configure_logging
    from labelloop.orchestrator import orchestrate as run_orchestrator

    settings = settings_for(db_url)
    undo_logging = configure_logging(level=settings.log_level, fmt=settings.log_format)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    if all_projects:
        from labelloop.orchestrator import run_forever

        if interval is not None:
            settings = dataclasses.replace(settings, orchestrate_interval=interval)
        engine = None
        try:
            engine = engine_for(db_url, create=False)
            run_forever(settings, stop, engine=engine, mode="all")
        finally:
            if engine is not None:
                engine.dispose()
            for sig, old in previous.items():
                signal.signal(sig, old)
            undo_logging()
        return
    try:
        results = run_orchestrator(engine_for(db_url, create=False), settings, project=project, once=once, interval=interval,
                                   min_new_labels=min_new_labels, model=model, strategy=strategy, stop=stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        undo_logging()
    if once and results:
        result = results[0]
        if result.status != "complete":
            raise click.exceptions.Exit(1)
        click.echo(f"version {result.version}: {result.state}, {result.labels_used:,} labels, "
                   f"{result.scored:,} items scored in {result.timings.get('total', 0.0):.1f}s")


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
    """Write a consistent copy of a live SQLite database to TARGET (PostgreSQL: use pg_dump).

    TARGET must not exist and is never written through a symbolic link; it is readable by
    you only (mode 0600), since it holds the session secret and the password hashes."""
    from labelloop.store.backup import backup_sqlite

    engine = engine_for(db_url, create=False)
    try:
        size = backup_sqlite(engine, target=target)
    finally:
        engine.dispose()
    click.echo(f"backed up {size:,} bytes to {target}")


@main.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--text-columns", required=True, help="Comma-separated columns the model reads, e.g. title,body.")
@click.option("--label-column", required=True, help="Column with the true tag (the oracle).")
@click.option("--label-separator", default=None,
              help='Multi-label: the label column holds tags joined by this, e.g. "|".')
@click.option("--none-value", default="__none__", show_default=True,
              help="Multi-label: the label cell meaning that no tag applies.")
@click.option("--strategy", "strategies", default="default,random", show_default=True,
              help="Comma-separated configurations: default, superintendent, random, entropy, margin, "
                   "least-confidence (multi-label: default, max-uncertainty, mean-uncertainty, random); "
                   "each optionally +explore=F, +diverse, +no-diverse.")
@click.option("--model", default=None, help="Model name (default: what a new project uses).")
@click.option("--seeds", type=int, default=3, show_default=True, help="Runs per strategy (seeds 0..N-1).")
@click.option("--initial", type=int, default=10, show_default=True, help="Labels taken from the cold-start order.")
@click.option("--batch", type=int, default=10, show_default=True, help="Labels taken per round.")
@click.option("--budget", type=int, default=500, show_default=True, help="Labels per run in total.")
@click.option("--test-fraction", type=float, default=0.3, show_default=True,
              help="Share of FILE held out (stratified) as the test set.")
@click.option("--test-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Use this file as the test set and all of FILE as the pool.")
@click.option("--cv-every", type=int, default=1, show_default=True,
              help="Cross-validate the labelled items every N rounds (0: never).")
@click.option("--jobs", type=int, default=None, help="Worker processes (default: the available cores).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("results.json"),
              show_default=True, help="Where to write the results (JSON).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the learning curves and the CV drift into this PNG.")
def simulate_cmd(file: Path, text_columns: str, label_column: str, label_separator: str | None, none_value: str,
                 strategies: str, model: str | None, seeds: int,
                 initial: int, batch: int, budget: int, test_fraction: float, test_file: Path | None,
                 cv_every: int, jobs: int | None, out: Path, plot: Path | None) -> None:
    """Simulate labelling FILE with its own labels as the oracle and compare strategies.

    FILE is split (stratified) into a pool and a test set. Each strategy and seed labels
    --initial items in cold-start order, then retrains, scores the test set and takes the next
    --batch items of the serving order, up to --budget. No database is used.

    With --label-separator, FILE is multi-label (tags joined by the separator; split at random,
    not stratified): curves report micro-F1 beside macro-F1, and the strategies are set strategies.
    """
    from labelloop import simulate as sim
    from labelloop.simulate.report import progress_bar, summary_table

    queries = sim.parse_strategies(strategies, multi_label=label_separator is not None)
    columns = [c.strip() for c in text_columns.split(",") if c.strip()]
    dataset = sim.load_dataset(file, text_columns=columns, label_column=label_column,
                               test_fraction=test_fraction, test_file=test_file,
                               label_separator=label_separator, none_value=none_value)
    console = Console(stderr=True)
    with progress_bar(console, f"simulating {file.name}") as hooks:
        results = sim.simulate(dataset, queries, model=model, seeds=seeds, initial=initial, batch=batch,
                               budget=budget, cv_every=cv_every, processes=jobs, progress=hooks)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    if plot is not None:
        sim.plot_results(results, plot)
    Console(width=max(Console().width, 110)).print(summary_table(results))
    click.echo(f"results written to {out}" + (f", plot to {plot}" if plot else ""), err=True)
