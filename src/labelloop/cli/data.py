"""Data verbs: ``import``, ``export``, ``migrate`` and ``backup``."""

from __future__ import annotations

from pathlib import Path

import click

from labelloop.cli.base import db_option, engine_for, main, settings_for


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
@click.option("--label-column", default=None,
              help="Column with existing labels (empty cells: unlabelled). Multi-label projects: the tags "
                   "joined by --label-separator, or a list (Parquet, JSON).")
@click.option("--label-separator", default=None,
              help='Multi-label projects: what joins the tags in a label cell, e.g. "A|B" (default "|").')
@click.option("--none-value", default=None,
              help='Multi-label projects: the label cell meaning "labelled: no tag applies" (default __none__; '
                   "an empty cell is unlabelled).")
@click.option("--gold-column", default=None,
              help="Column with known answers: a non-empty cell makes the item a gold item with that answer "
                   "(read as a --label-column cell; empty: not gold). Applies to existing ids too.")
@click.option("--add-labels", is_flag=True, help="Add unknown tags of --label-column to the project.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of a CSV or JSONL file.")
@click.option("--update", is_flag=True, help="Replace display and text of ids already present (else skip them).")
@db_option
def import_cmd(project: str, file: Path, id_column: str, text_columns: str, display_columns: str | None,
               label_column: str | None, label_separator: str | None, none_value: str | None, gold_column: str | None,
               add_labels: bool, encoding: str, update: bool, db_url: str | None) -> None:
    """Import items from FILE (.csv, .jsonl or .parquet) into PROJECT: all rows or, on any error, none."""
    from labelloop.io import ImportOptions, import_file

    options = ImportOptions(
        id_column=id_column, text_columns=_column_list(text_columns) or [],
        display_columns=_column_list(display_columns), label_column=label_column,
        add_labels=add_labels, update=update, label_separator=label_separator, none_value=none_value,
        gold_column=gold_column,
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
              help="Fill items without a human label with the current model's prediction. Multi-label projects: "
                   "add a p_<tag> column per tag (the model's probability) and predicted_labels (its set).")
@click.option("--min-confidence", type=float, default=None,
              help="With --with-predictions: leave predictions below this probability unlabelled.")
@click.option("--label-separator", default=None,
              help='Multi-label projects: what joins the tags of a set in CSV and JSONL (default "|"; '
                   "Parquet writes lists).")
@click.option("--none-value", default=None,
              help='Multi-label projects: what CSV and JSONL write for "no tag applies" (default __none__).')
@click.option("--with-comments", is_flag=True,
              help="Add a last column, comments: each item's comments, unsure flags and skip reasons (a list "
                   "of {user, kind, reason, text, created_at, ...}; JSON text in CSV and Parquet).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists (else an existing OUT is an error).")
@click.option("--raw", is_flag=True,
              help="CSV: write cells as they are; by default a cell starting with = + - @, a tab or a "
                   "carriage return gets a leading ' so spreadsheets do not run it as a formula.")
@db_option
def export_cmd(project: str, out: Path, with_predictions: bool, min_confidence: float | None,
               label_separator: str | None, none_value: str | None, with_comments: bool, force: bool, raw: bool,
               db_url: str | None) -> None:
    """Export PROJECT's items and final labels to OUT (.csv, .jsonl or .parquet).

    OUT is written completely or not at all, never through a symbolic link, with your umask."""
    from labelloop.io import export_project

    settings = settings_for(db_url)
    engine = engine_for(db_url, create=False)
    try:
        result = export_project(engine, project=project, path=out, with_predictions=with_predictions,
                                min_confidence=min_confidence, chunk_rows=settings.import_chunk_rows,
                                show_progress=True, overwrite=force, raw=raw, label_separator=label_separator,
                                none_value=none_value, with_comments=with_comments)
    finally:
        engine.dispose()
    click.echo(f"exported {result.rows:,} items to {result.path}")


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
