"""Streaming export of a project's items and final labels (CSV, JSONL, Parquet).

One row per item: the external id under the id column's original name, the display fields in
the project's order, ``label`` (final label, empty if none) and ``label_source`` (``human``,
``bulk`` (an admin's bulk label, :mod:`labelloop.store.bulklabels`), ``conflict`` or empty).
With predictions, items without a human or bulk final label get the current
model's prediction (``label_source = model``; no label below ``min_confidence``), plus the
columns ``confidence`` and ``model_version``.

Rows are read with a streaming cursor (server-side on PostgreSQL) and written per chunk, into
a temporary file next to the target that is moved into place at the end
(:mod:`labelloop.store.outfiles`): a failure never leaves a half file behind, nothing is written
through a symbolic link, an existing file is replaced only with ``overwrite`` (``--force``), and
the file gets the user's umask like any other (0644 with the usual 022).

Multi-label projects (:mod:`labelloop.io.export_sets`): ``labels`` (the final set) instead of
``label``, and with predictions ``p_<tag>`` per tag and ``predicted_labels``; sets are lists in
Parquet and joined with a separator in CSV and JSONL.

With comments (``--with-comments``, :mod:`labelloop.io.export_notes`): a last column
``comments``, each item's comments, flags and skip reasons (a list in JSONL, JSON text in CSV and
Parquet).

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) get a leading ``'``, header included, unless ``raw``
(``--raw``); JSONL and Parquet keep every value as it is.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.io import export_notes, export_sets
from labelloop.io.progress import ProgressBar
from labelloop.store import notes as store_notes
from labelloop.store import projects as store_projects
from labelloop.store import reading
from labelloop.store.outfiles import EXPORT_MODE, new_file, nofollow, refuse_existing
from labelloop.store.projects import Project
from labelloop.store.schema import item_scores, items, model_runs

FORMATS = (".csv", ".jsonl", ".parquet")
LABEL_COLUMNS = ("label", "label_source")
PREDICTION_COLUMNS = ("confidence", "model_version")
Progress = Callable[[int], None]
#: What makes a spreadsheet read a CSV cell as a formula (OWASP's "CSV injection" list).
FORMULA_START = frozenset("=+-@\t\r")
OVERWRITE_HINT = "choose a new name, or overwrite it with --force"


@dataclass(frozen=True)
class ExportResult:
    rows: int
    path: Path


@dataclass(frozen=True)
class ExportPlan:
    """What an export reads: the project, its column names and the model run, if any."""

    project: Project
    columns: tuple[str, ...]
    run_id: int | None
    model_version: int | None
    min_confidence: float | None
    # Multi-label projects: (p_<tag> column, position in the run's proba) per tag, and how CSV
    # and JSONL write sets (None: single-label, no set columns).
    probabilities: tuple[tuple[str, int | None], ...] = ()
    lists: tuple[str, str] | None = None
    with_comments: bool = False  # a last column, export_notes.COLUMN


def _set_format(project: Project, separator: str | None, none_value: str | None) -> tuple[str, str] | None:
    if not project.multi_label:
        if separator is not None or none_value is not None:
            raise InvalidInputError(
                f"--label-separator and --none-value apply to multi-label projects; project {project.name!r} "
                "is single-label"
            )
        return None
    separator = export_sets.DEFAULT_SEPARATOR if separator is None else separator
    none_value = export_sets.DEFAULT_NONE_VALUE if none_value is None else none_value
    if not separator:
        raise InvalidInputError("--label-separator must not be empty")
    if not none_value.strip() or separator in none_value:
        raise InvalidInputError(f"--none-value {none_value!r} must be a word without the separator {separator!r}")
    clash = [t.name for t in project.tags if separator in t.name or t.name == none_value]
    if clash:
        raise InvalidInputError(
            f"tag {clash[0]!r} contains the separator {separator!r} or is the none value {none_value!r}; "
            "choose others with --label-separator / --none-value"
        )
    return separator, none_value


def plan_export(conn: Connection, *, project: Project, with_predictions: bool = False,
                min_confidence: float | None = None, label_separator: str | None = None,
                none_value: str | None = None, with_comments: bool = False) -> ExportPlan:
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InvalidInputError(f"--min-confidence must be between 0 and 1, got {min_confidence}")
    if min_confidence is not None and not with_predictions:
        raise InvalidInputError("--min-confidence only applies with --with-predictions")
    lists = _set_format(project, label_separator, none_value)
    label_columns = export_sets.SET_LABEL_COLUMNS if lists else LABEL_COLUMNS
    columns = (project.id_column, *project.display_columns, *label_columns)
    probabilities: list[tuple[str, int | None]] = []
    if with_predictions and lists:
        if project.current_run_id is not None:
            probabilities = export_sets.probability_columns(conn, project=project, run_id=project.current_run_id)
        columns += (*(name for name, _ in probabilities), "predicted_labels")
    if with_predictions:
        columns += PREDICTION_COLUMNS
    if with_comments:
        columns += (export_notes.COLUMN,)
    clash = sorted({c for c in columns if columns.count(c) > 1})
    if clash:
        raise InvalidInputError(
            f"cannot export project {project.name!r}: column name {clash[0]!r} is used twice "
            f"(columns: {', '.join(columns)})"
        )
    run_id = version = None
    if with_predictions:
        run_id = project.current_run_id
        if run_id is not None:
            version = conn.execute(select(model_runs.c.version).where(model_runs.c.id == run_id)).scalar()
        if run_id is None or version is None:
            raise NotFoundError(
                f"project {project.name!r} has no current model yet, so there are no predictions to "
                "export; export without --with-predictions, or wait for the first training round"
            )
    return ExportPlan(project, columns, run_id, version, min_confidence, tuple(probabilities), lists, with_comments)


def export_rows(conn: Connection, plan: ExportPlan, *, chunk_rows: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of rows (tuples in ``plan.columns`` order; None for an empty cell; multi-label
    sets and the comments as lists)."""
    if plan.with_comments:
        notes = store_notes.notes_by_external_id(conn, project=plan.project)
        yield from export_notes.with_comments(_rows(conn, plan, chunk_rows), notes)
    else:
        yield from _rows(conn, plan, chunk_rows)


def _rows(conn: Connection, plan: ExportPlan, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    project = plan.project
    if plan.lists is not None:
        yield from export_sets.set_rows(
            conn, project=project, run_id=plan.run_id, model_version=plan.model_version,
            min_confidence=plan.min_confidence, probabilities=list(plan.probabilities), chunk_rows=chunk_rows,
        )
        return
    names = {t.id: t.name for t in project.tags}
    display_columns = project.display_columns
    cols = [items.c.external_id, items.c.display, items.c.label_tag_id, items.c.label_source]
    query = select(*cols)
    if plan.run_id is not None:
        query = select(*cols, item_scores.c.predicted_tag_id, item_scores.c.confidence).select_from(
            items.outerjoin(
                item_scores, and_(item_scores.c.item_id == items.c.id, item_scores.c.run_id == plan.run_id)
            )
        )
    query = query.where(items.c.project_id == project.id).order_by(items.c.id)
    result = conn.execute(query.execution_options(stream_results=True, yield_per=max(1, chunk_rows)))
    with_predictions, version, floor = plan.run_id is not None, plan.model_version, plan.min_confidence
    for part in result.partitions():
        out = []
        for row in part:
            display = row[1] or {}
            shown = tuple(_shown(display.get(c)) for c in display_columns)
            label = names.get(row[2]) if row[2] is not None else None
            source = row[3] if row[3] in ("human", "bulk", "conflict") else None
            if source == "conflict":
                label = None
            if not with_predictions:
                out.append((row[0], *shown, label, source))
                continue
            confidence = model = None
            if source not in ("human", "bulk") and row[4] is not None:
                confidence, model = row[5], version
                if floor is None or (confidence is not None and confidence >= floor):
                    label, source = names.get(row[4]), "model"
            out.append((row[0], *shown, label, source, confidence, model))
        yield out


def _shown(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def export_project(engine: Engine, *, project: str, path: str | os.PathLike[str], with_predictions: bool = False,
                   min_confidence: float | None = None, chunk_rows: int = 20_000,
                   show_progress: bool = False, overwrite: bool = False, raw: bool = False,
                   label_separator: str | None = None, none_value: str | None = None,
                   with_comments: bool = False) -> ExportResult:
    """Write ``project`` to ``path`` (.csv, .jsonl or .parquet) and return the row count.

    An existing file at ``path`` is an error unless ``overwrite``. CSV cells that start like
    a formula are neutralised unless ``raw``. With ``show_progress`` a progress bar (rows
    written) goes to stderr. Multi-label projects: sets are joined with ``label_separator``
    (default ``|``; an empty set is ``none_value``, default ``__none__``) in CSV and JSONL.
    ``with_comments``: a last column of each item's notes (:mod:`labelloop.io.export_notes`)."""
    target = check_target(path, overwrite=overwrite)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        plan = plan_export(conn, project=proj, with_predictions=with_predictions, min_confidence=min_confidence,
                           label_separator=label_separator, none_value=none_value, with_comments=with_comments)
        chunks = export_rows(conn, plan, chunk_rows=chunk_rows)
        if not show_progress:
            return ExportResult(write_atomically(target, plan.columns, chunks, overwrite=overwrite, raw=raw,
                                                 lists=plan.lists), target)
        total = conn.execute(select(func.count()).where(items.c.project_id == proj.id)).scalar_one()
        with ProgressBar(f"exporting {target.name}", total=total, unit="rows") as bar:
            return ExportResult(write_atomically(target, plan.columns, chunks, progress=bar.advance,
                                                 overwrite=overwrite, raw=raw, lists=plan.lists), target)


def check_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise InvalidInputError(
            f"{target}: unknown export format {target.suffix or '(no extension)'!r}; use one of {', '.join(FORMATS)}"
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(f"{target}: the folder {str(parent)!r} does not exist")
    if target.is_dir():
        raise InvalidInputError(f"{target}: is a folder")
    refuse_existing(target, overwrite=overwrite, hint=OVERWRITE_HINT)
    return target


def write_atomically(target: Path, columns: tuple[str, ...], chunks: Iterator[list[tuple[Any, ...]]],
                     *, progress: Progress | None = None, overwrite: bool = False, raw: bool = False,
                     lists: tuple[str, str] | None = None) -> int:
    """Write chunks to a new temporary file beside ``target``, then move it into place
    (:func:`labelloop.store.outfiles.new_file`). ``lists``: (separator, none value) with which
    CSV and JSONL join the set columns (Parquet writes them as lists)."""
    suffix = target.suffix.lower()
    if columns[-1] == export_notes.COLUMN and suffix != ".jsonl":  # (never a display column: labels follow)
        chunks = export_notes.as_text(chunks)
    if lists is not None and suffix != ".parquet":
        positions = [i for i, c in enumerate(columns) if c in export_sets.LIST_COLUMNS]
        chunks = ([export_sets.joined(row, positions, *lists) for row in chunk] for chunk in chunks)
    with new_file(target, mode=EXPORT_MODE, overwrite=overwrite, hint=OVERWRITE_HINT) as tmp:
        if suffix == ".csv":
            return _write_csv(tmp, columns, chunks, progress, raw=raw)
        writer = {".jsonl": _write_jsonl, ".parquet": _write_parquet}[suffix]
        return writer(tmp, columns, chunks, progress)


def _counting(chunks: Iterator[list[tuple[Any, ...]]], progress: Progress | None) -> Iterator[list[tuple[Any, ...]]]:
    for chunk in chunks:
        yield chunk
        if progress:
            progress(len(chunk))


def neutralise(row: tuple[Any, ...]) -> list[Any]:
    """The row with a ``'`` before every text cell a spreadsheet would run as a formula."""
    return ["'" + v if type(v) is str and v[:1] in FORMULA_START else v for v in row]


def _write_csv(tmp: Path, columns: tuple[str, ...], chunks: Iterator[list[tuple[Any, ...]]],
               progress: Progress | None, *, raw: bool = False) -> int:
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="", opener=nofollow) as f:
        writer = csv.writer(f)
        writer.writerow(columns if raw else neutralise(columns))
        for chunk in _counting(chunks, progress):
            writer.writerows(chunk if raw else map(neutralise, chunk))
            n += len(chunk)
    return n


def _write_jsonl(tmp: Path, columns: tuple[str, ...], chunks: Iterator[list[tuple[Any, ...]]],
                 progress: Progress | None) -> int:
    n = 0
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with open(tmp, "w", encoding="utf-8", newline="\n", opener=nofollow) as f:
        for chunk in _counting(chunks, progress):
            f.write("".join(dumps(dict(zip(columns, row))) + "\n" for row in chunk))
            n += len(chunk)
    return n


def _write_parquet(tmp: Path, columns: tuple[str, ...], chunks: Iterator[list[tuple[Any, ...]]],
                   progress: Progress | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tail = columns[-1:] if columns[-1] == export_notes.COLUMN else ()  # JSON text, after everything else
    columns = columns[:len(columns) - len(tail)]
    types = {"confidence": pa.float64(), "model_version": pa.int64()}
    n_text = len(columns) - (2 if columns[-1] == "model_version" else 0)
    n_sets = sum(1 for c in columns if c in export_sets.LIST_COLUMNS)
    if n_sets:  # multi-label: the set columns are lists, the p_<tag> columns floats
        n_text = columns.index("label_source") + 1
        types |= {c: pa.float64() for c in columns[n_text:] if c.startswith("p_")}
        types |= {c: pa.list_(pa.string()) for c in export_sets.LIST_COLUMNS}
    schema = pa.schema(
        [pa.field(c, types[c] if c in export_sets.LIST_COLUMNS else pa.string()) for c in columns[:n_text]]
        + [pa.field(c, types[c]) for c in columns[n_text:]]
        + [pa.field(c, pa.string()) for c in tail]
    )
    n = 0
    with open(tmp, "wb", opener=nofollow) as out, pq.ParquetWriter(out, schema) as writer:
        for chunk in _counting(chunks, progress):
            arrays = [pa.array(list(values), type=f.type) for values, f in zip(zip(*chunk), schema)]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            n += len(chunk)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n
