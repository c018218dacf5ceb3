"""Codebook verbs: ``codebook show PROJECT [TAG]`` and ``codebook set PROJECT TAG --file F``.

``show PROJECT TAG`` prints the definition's Markdown source alone (its version goes to stderr),
so that ``show ... > def.md``, an edit, and ``set ... --file def.md`` round-trip. Changes from the
command line are audit-logged without a user, as other command-line changes are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labelloop.cli.base import db_option, engine_for, main
from labelloop.errors import InvalidInputError
from labelloop.store import codebook as store_codebook
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects

EXAMPLE_CHARS = 100  # of each pinned example, in `show PROJECT`


@main.group()
def codebook() -> None:
    """Show and set a project's codebook: per tag a definition (Markdown) and pinned examples."""


@codebook.command("show")
@click.argument("project")
@click.argument("tag", required=False)
@db_option
def codebook_show(project: str, tag: str | None, db_url: str | None) -> None:
    """Print PROJECT's codebook: its version, and per active tag the definition (Markdown source)
    and pinned examples. With TAG, only that tag's definition, as it is stored."""
    engine = engine_for(db_url, create=False)
    try:
        with reading(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
            book = store_codebook.get_codebook(conn, project=proj)
    finally:
        engine.dispose()
    if tag is not None:
        entry = next((e for e in book.entries if e.tag == tag), None)
        if entry is None:
            raise InvalidInputError(f"no active tag {tag!r} in project {proj.name!r}: use one of "
                                    + ", ".join(repr(e.tag) for e in book.entries))
        since = f"defined in codebook version {entry.version}" if entry.version else "no definition yet"
        click.echo(f"tag {tag!r}: {since}; the codebook is at version {book.version}", err=True)
        if entry.definition:
            click.echo(entry.definition)
        return
    click.echo(f"# Codebook of project {proj.name!r}, version {book.version}")
    for e in book.entries:
        since = f" (version {e.version})" if e.version else ""
        click.echo(f"\n## {e.tag}{since}\n")
        click.echo(e.definition if e.definition else "(no definition yet)")
        for x in e.examples:
            text = " ".join(x.text.split())
            cut = text[:EXAMPLE_CHARS] + ("…" if len(text) > EXAMPLE_CHARS else "")
            click.echo(f"- example #{x.item_id} {x.external_id}: {cut}")


def _read(file: str) -> str:
    if file == "-":
        data = sys.stdin.buffer.read()
        where = "standard input"
    else:
        path = Path(file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInputError(f"no file {file!r}: give the path of a Markdown file, or - for stdin") from None
        except IsADirectoryError:
            raise InvalidInputError(f"{file!r} is a directory: give the path of a Markdown file") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {file!r}: {exc.strerror}") from None
        where = repr(file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{where} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


@codebook.command("set")
@click.argument("project")
@click.argument("tag")
@click.option("--file", "file", required=True, metavar="FILE",
              help="The definition, a Markdown file (UTF-8); - reads standard input. An empty file clears it.")
@db_option
def codebook_set(project: str, tag: str, file: str, db_url: str | None) -> None:
    """Set TAG's definition in PROJECT's codebook from a Markdown file. A change raises the
    codebook version (new labels record it); the same text again changes nothing."""
    text = _read(file)
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            proj = store_projects.get_project(conn, name=project)
            done = store_codebook.set_definition(conn, project=proj, tag=tag, definition=text, user_id=None)
    finally:
        engine.dispose()
    if done["changed"]:
        click.echo(f"tag {tag!r} of project {proj.name!r}: definition saved as codebook version {done['version']}")
    else:
        click.echo(f"tag {tag!r} of project {proj.name!r}: unchanged (codebook version {done['version']})")
