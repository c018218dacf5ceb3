"""Streaming import of items (and existing labels) into a project, all in one transaction.

Any problem with the input raises :class:`~labelloop.errors.InputFileError` naming the file,
line and field; since the whole import is one ``writing`` transaction, the database is then
left exactly as it was. Memory stays constant apart from a dict of the ids seen (duplicates).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from labelloop.config import Settings
from labelloop.errors import InvalidInputError
from labelloop.io.bulk import (
    BackgroundWriter,
    ItemRow,
    add_import_annotations,
    lock_project_for_import,
    SqliteItemWriter,
    make_writer,
    max_item_id,
)
from labelloop.io.progress import ProgressBar
from labelloop.io.readers import open_file
from labelloop.io.records import ListCell, RecordSource
from labelloop.store import gold as store_gold
from labelloop.store import projects as store_projects
from labelloop.store import search_index
from labelloop.store import writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items, tags, utcnow

MAX_EXTERNAL_ID = items.c.external_id.type.length or 512
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to read items from a file's columns."""

    id_column: str
    text_columns: Sequence[str]
    display_columns: Sequence[str] | None = None  # default: the text columns
    label_column: str | None = None
    add_labels: bool = False  # unknown tags extend the project's tags instead of failing
    # An existing id gets its display/text replaced instead of skipped (its labels are kept:
    # labels in the file only apply to the items the import creates).
    update: bool = False
    # Multi-label projects: the label cell is the set's tags joined by ``label_separator``
    # (default "|"); ``none_value`` (default "__none__") means "labelled: no tag applies"; an
    # empty cell is unlabelled. Giving either for a single-label project is an error.
    label_separator: str | None = None
    none_value: str | None = None
    # Known answers: a non-empty cell makes the row's item a gold item with that answer (read as
    # a label cell is; store/gold.py). Applies to every row of the file, new or existing items.
    gold_column: str | None = None

    def checked(self) -> ImportOptions:
        text_cols = [self.text_columns] if isinstance(self.text_columns, str) else list(self.text_columns)
        display = self.display_columns
        display = text_cols if display is None else ([display] if isinstance(display, str) else list(display))
        if not self.id_column:
            raise InvalidInputError("name the id column (--id-column)")
        if not text_cols or any(not c for c in text_cols):
            raise InvalidInputError("name at least one text column (--text-columns a,b)")
        if not display or any(not c for c in display):
            raise InvalidInputError("display columns must not be empty (leave them out to show the text columns)")
        for name, cols in (("text", text_cols), ("display", display)):
            if len(set(cols)) != len(cols):
                raise InvalidInputError(f"a {name} column is named twice: {', '.join(cols)}")
        if self.label_separator is not None and not self.label_separator:
            raise InvalidInputError("--label-separator must not be empty")
        if self.none_value is not None and (not self.none_value.strip() or self.none_value != self.none_value.strip()):
            raise InvalidInputError(f"--none-value must be a non-empty word without surrounding spaces, got "
                                    f"{self.none_value!r}")
        if self.label_separator is not None and self.none_value is not None and self.label_separator in self.none_value:
            raise InvalidInputError(
                f"--none-value {self.none_value!r} contains the separator {self.label_separator!r}; choose another"
            )
        if self.gold_column and self.gold_column == self.label_column:
            raise InvalidInputError(
                f"--gold-column and --label-column both name {self.gold_column!r}: a column holds either "
                "imported labels or gold answers")
        return ImportOptions(
            self.id_column, tuple(text_cols), tuple(display), self.label_column or None,
            self.add_labels, self.update, self.label_separator, self.none_value, self.gold_column or None,
        )


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int
    updated: int
    labels: int
    new_tags: tuple[str, ...] = field(default=())
    gold: int = 0  # items made gold items (--gold-column)

    def summary(self) -> str:
        """One line such as ``imported 3,155 items (0 skipped as already present, 0 labels)``."""
        if self.updated:
            detail = f"{self.updated:,} updated, {self.skipped:,} skipped"
        else:
            detail = f"{self.skipped:,} skipped as already present"
        text = f"imported {self.imported:,} items ({detail}, {self.labels:,} labels)"
        if self.gold:
            text += f"; {self.gold:,} gold items"
        if self.new_tags:
            text += f"; new tags: {', '.join(self.new_tags)}"
        return text


def import_file(engine: Engine, *, project: str, path: str | os.PathLike[str], options: ImportOptions,
                settings: Settings, encoding: str = "utf-8", show_progress: bool = False) -> ImportResult:
    """Import a CSV, JSONL or Parquet file into ``project`` (one transaction).

    With ``show_progress`` a progress bar (bytes read, or rows for Parquet) goes to stderr."""
    source = open_file(path, encoding=encoding, max_field_bytes=settings.max_field_bytes,
                       chunk_rows=settings.import_chunk_rows)
    with source:
        if not show_progress:
            return import_source(engine, project=project, source=source, options=options, settings=settings)
        with ProgressBar(f"importing {Path(path).name}", total=source.total(), unit=source.unit) as bar:
            return import_source(engine, project=project, source=source, options=options,
                                 settings=settings, progress=bar.set)


def import_source(engine: Engine, *, project: str, source: RecordSource, options: ImportOptions,
                  settings: Settings, progress: Progress | None = None) -> ImportResult:
    """Import any record source into ``project`` in one write transaction."""
    options = options.checked()
    wanted_columns(source, options)  # fail on a missing column before taking the write lock
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        return import_into(conn, project=proj, source=source, options=options, settings=settings,
                           progress=progress)


def wanted_columns(source: RecordSource, options: ImportOptions) -> list[str]:
    """The columns to read: id, text, display, label (each once), checked against the source."""
    named = [("id", options.id_column)] + [("text", c) for c in options.text_columns]
    named += [("display", c) for c in options.display_columns or ()]
    if options.label_column:
        named.append(("label", options.label_column))
    if options.gold_column:
        named.append(("gold", options.gold_column))
    available = source.columns()
    for role, column in named:
        if column not in available:
            raise source.error(
                f"no {role} column {column!r}; available columns: {', '.join(available)}",
                line=source.header_line(), field=column,
            )
        if available.count(column) > 1:
            raise source.error(f"column {column!r} appears more than once", line=source.header_line(),
                               field=column)
    return list(dict.fromkeys(column for _, column in named))


def import_into(conn: Connection, *, project: store_projects.Project, source: RecordSource,
                options: ImportOptions, settings: Settings, progress: Progress | None = None) -> ImportResult:
    """Import into ``project`` on an open write transaction (the caller commits or rolls back)."""
    options = options.checked()
    if not project.multi_label and (options.label_separator is not None or options.none_value is not None):
        raise InvalidInputError(
            f"--label-separator and --none-value apply to multi-label projects; project {project.name!r} is "
            "single-label (one tag per cell)"
        )
    wanted = wanted_columns(source, options)
    lock_project_for_import(conn, project_id=project.id)
    now = utcnow()
    after_id = max_item_id(conn)
    paused = search_index.begin_bulk_insert(conn)  # new rows are indexed in one pass at the end
    writer = make_writer(conn, project_id=project.id, now=now, update=options.update,
                         overlap_fraction=project.setting("overlap_fraction"), overlap_k=project.setting("overlap_k"),
                         multi_label=project.multi_label)
    if paused and isinstance(writer, SqliteItemWriter):
        writer.index_search, writer.indexed_through = True, after_id
    try:
        background = BackgroundWriter(writer)
        labels = _TagResolver(conn, project, source, options, before_write=background.drain)
        gold = (_TagResolver(conn, project, source, options, before_write=background.drain,
                             field_name=options.gold_column) if options.gold_column else None)
        try:
            n_rows = _feed(source, wanted, options, settings, project.seed, labels, background.put, progress,
                           gold=gold)
        except BaseException:
            background.close(cancel=True)
            raise
        background.close()
    finally:
        writer.close()
    if not n_rows:
        raise source.error("no data rows" + (" after the header" if source.header_line() == 1 else ""))
    search_index.end_bulk_insert(conn, project_id=project.id, paused=paused,
                                 after_id=writer.indexed_through if isinstance(writer, SqliteItemWriter) else after_id)
    n_labels = 0
    if options.label_column:
        n_labels = add_import_annotations(conn, project_id=project.id, after_id=after_id, now=now,
                                          multi_label=project.multi_label)
    n_gold = 0
    if gold is not None and gold.answers:
        values = store_gold.values_by_external_id(conn, project=project, answers=gold.answers)
        n_gold = store_gold.mark_gold(conn, project=project, values=values, user_id=None)
    store_projects.set_import_columns(
        conn, project_id=project.id, id_column=options.id_column, display_columns=list(options.display_columns or ())
    )
    inserted, updated = background.inserted, background.updated
    added = tuple(dict.fromkeys([*labels.added, *(gold.added if gold is not None else ())]))
    return ImportResult(inserted, n_rows - inserted - updated, updated, n_labels, added, n_gold)


def _feed(source: RecordSource, wanted: list[str], options: ImportOptions, settings: Settings, seed: int,
          labels: _TagResolver, put: Callable[[list[ItemRow]], None], progress: Progress | None,
          gold: _TagResolver | None = None) -> int:
    """Check and convert every record, handing chunks of item rows to ``put``; returns the count.
    With ``gold``, each non-empty gold cell's answer goes to ``gold.answers`` by external id."""
    chunk_rows = max(1, settings.import_chunk_rows)
    lists_in = (options.label_column, options.gold_column) if labels.multi_label else ()
    check = _FieldCheck(source, wanted, settings.max_field_bytes, lists_in=lists_in)
    quick = check.quick
    text_pos = [wanted.index(c) for c in options.text_columns]
    single_text = text_pos[0] if len(text_pos) == 1 else None
    display_fields = [(json.dumps(c, ensure_ascii=False) + ": ", wanted.index(c)) for c in options.display_columns or ()]
    label_pos = wanted.index(options.label_column) if options.label_column else None
    gold_pos = wanted.index(options.gold_column) if gold is not None and options.gold_column else None
    encode = json.encoder.encode_basestring  # type: ignore[attr-defined]  # JSON string, UTF-8 kept
    # Multi-label: ``tag_ids`` caches cell text -> mask, and ``resolve`` parses a new cell.
    resolve, tag_ids = (labels.resolve_set, labels.sets) if labels.multi_label else (labels.resolve, labels.ids)
    id_field = options.id_column
    seen: dict[str, int] = {}
    setdefault = seen.setdefault
    chunk: list[ItemRow] = []
    append = chunk.append

    for line, values in source.rows(wanted):
        for value in values:
            if len(value) > quick or "\x00" in value:
                check.slow(line, values)
        external_id = values[0]
        if not external_id.strip() or len(external_id) > MAX_EXTERNAL_ID:
            problem = "empty id" if not external_id.strip() else f"id longer than {MAX_EXTERNAL_ID} characters"
            raise source.error(problem, line=line, field=id_field)
        if setdefault(external_id, line) != line:
            raise source.error(f"duplicate id {external_id!r}: also on line {seen[external_id]}",
                               line=line, field=id_field)
        if single_text is None:
            body = "\n\n".join([p for p in [values[i] for i in text_pos] if p.strip()])
        else:
            body = values[single_text]
        display = "{" + ", ".join([key + encode(values[i]) for key, i in display_fields]) + "}"
        tag_id = None  # or, multi-label, the mask
        if label_pos is not None:
            cell = values[label_pos]
            tag_id = tag_ids.get(cell)
            if tag_id is None and cell:
                tag_id = resolve(cell, line)
        if gold_pos is not None:
            cell = values[gold_pos]
            answer = (gold.resolve_set(cell, line) if gold.multi_label else gold.resolve(cell, line)) if cell else None
            if answer is not None:
                gold.answers[external_id] = answer
        append((external_id, display, body, rand_key(seed, external_id), tag_id))
        if len(chunk) >= chunk_rows:
            put(chunk)
            chunk = []
            append = chunk.append
            if progress:
                progress(source.position())
    if chunk:
        put(chunk)
    if progress:
        progress(source.position())
    return len(seen)


class _FieldCheck:
    """Rejects NUL characters and fields over ``max_field_bytes`` (UTF-8), naming the field."""

    def __init__(self, source: RecordSource, wanted: Sequence[str], max_bytes: int, *,
                 lists_in: Sequence[str | None] = ()):
        self.source, self.wanted, self.max_bytes = source, list(wanted), max_bytes
        self.quick = max_bytes // 4  # at most 4 UTF-8 bytes per character
        self.lists_in = {c for c in lists_in if c}  # where a list of tags may stand (multi-label)

    def slow(self, line: int, values: Sequence[str]) -> None:
        for name, value in zip(self.wanted, values):
            if isinstance(value, ListCell):
                if name not in self.lists_in:
                    raise self.source.error("a nested list value; expected text or a number", line=line, field=name)
                if any("\x00" in item for item in value.items):
                    raise self.source.error("contains a NUL character (\\x00)", line=line, field=name)
                continue
            if "\x00" in value:
                raise self.source.error("contains a NUL character (\\x00)", line=line, field=name)
            if len(value) > self.quick and len(value.encode("utf-8", "surrogatepass")) > self.max_bytes:
                raise self.source.error(
                    f"field longer than the limit of {self.max_bytes:,} bytes (LABELLOOP_MAX_FIELD_BYTES)",
                    line=line, field=name,
                )


class _TagResolver:
    """Maps label cells to tag ids (multi-label: to masks); unknown tags are an error, or added
    with ``add_labels``."""

    def __init__(self, conn: Connection, project: store_projects.Project, source: RecordSource,
                 options: ImportOptions, *, before_write: Callable[[], None], field_name: str | None = None):
        self.conn, self.project, self.source = conn, project, source
        self.before_write = before_write  # frees the connection from the background writer
        self.field = field_name or options.label_column
        self.answers: dict[str, int] = {}  # the gold column's: external id -> tag id or mask
        self.add = options.add_labels
        self.ids = {t.name: t.id for t in project.tags if not t.retired}
        self.retired = {t.name for t in project.tags if t.retired}
        self.added: list[str] = []
        self.multi_label = project.multi_label
        self.bits = {t.name: t.bit for t in project.tags if not t.retired and t.bit is not None}
        self.separator = options.label_separator or "|"
        self.none_value = options.none_value or "__none__"
        self.sets: dict[str, int | None] = {}  # cell -> mask (None: unlabelled)

    def resolve_set(self, cell: str, line: int) -> int | None:
        """The mask of a multi-label cell: tags joined by the separator; the none value is the
        empty set; an empty cell is unlabelled (None)."""
        if isinstance(cell, ListCell):  # a list (Parquet, JSON): empty = no tag applies
            names = [item.strip() for item in cell.items]
            if not all(names):
                raise self.source.error(f"an empty tag name in the list {list(cell.items)!r}", line=line,
                                        field=self.field)
            if not names:
                return 0
            text = ""
        else:
            text = cell.strip()
            if not text:
                return None
            if text == self.none_value:
                self.sets[cell] = 0
                return 0
            names = [part.strip() for part in text.split(self.separator)]
            names = [n for n in names if n]
        if not names:
            raise self.source.error(
                f"no tag in {cell!r}: leave the cell empty for an unlabelled item, or write "
                f"{self.none_value!r} for \"labelled: no tag applies\"", line=line, field=self.field)
        if self.none_value in names:
            shown = list(cell.items) if isinstance(cell, ListCell) else cell
            raise self.source.error(f"{self.none_value!r} (no tag applies) cannot go with tags: {shown!r}",
                                    line=line, field=self.field)
        mask = 0
        for name in names:
            if name not in self.bits:
                self.resolve(name, line)  # an error, or the tag is added (with its bit)
            mask |= 1 << self.bits[name]
        self.sets[cell] = mask
        return mask

    def resolve(self, cell: str, line: int) -> int | None:
        tag_id = self.ids.get(cell)
        if tag_id is not None:
            return tag_id
        name = cell.strip()
        if not name:
            return None
        if name in self.ids:
            return self.ids[name]
        if name in self.retired:
            raise self.source.error(f"tag {name!r} is retired in project {self.project.name!r}",
                                    line=line, field=self.field)
        if not self.add:
            known = ", ".join(self.ids) or "(none)"
            raise self.source.error(
                f"unknown tag {name!r}; project {self.project.name!r} has: {known} "
                "(use --add-labels to add new tags)", line=line, field=self.field,
            )
        self.before_write()
        try:
            store_projects.add_tags(self.conn, project_id=self.project.id, names=[name])
        except InvalidInputError as exc:
            raise self.source.error(f"cannot add tag: {exc}", line=line, field=self.field) from None
        row = self.conn.execute(
            select(tags.c.id, tags.c.bit).where(tags.c.project_id == self.project.id, tags.c.name == name)
        ).one()
        self.ids[name] = row.id
        if row.bit is not None:
            self.bits[name] = row.bit
        self.added.append(name)
        return self.ids[name]
