"""The Python API for notebooks: the same import, export and status as the command line.

    import labelloop
    p = labelloop.create_project("tickets", labels=["bug", "question"], db="sqlite:///l.db")
    p.add_items(df, id_column="id", text_columns=["title", "body"])
    p.status()                      # {"items": ..., "labelled": ..., "labels": {...}}
    p.labels()                      # DataFrame: id, label, label_source (labelled items)
    p.to_dataframe(with_predictions=True)

A multi-label project (``create_project(..., multi_label=True)``) gives each item a set of tags:
``labels()`` then has a ``labels`` column of lists of tag names (an empty list: no tag applies),
and ``add_items`` reads label cells as tags joined by ``label_separator`` (default ``|``) or as
lists.

``db`` defaults to ``LABELLOOP_DATABASE_URL`` (else ``sqlite:///labelloop.db``). Errors are the
same :mod:`labelloop.errors` the command line reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from labelloop.config import Settings
from labelloop.io import (
    DataFrameSource,
    ExportResult,
    ImportOptions,
    ImportResult,
    MappingSource,
    export_project,
    import_file,
    import_source,
)
from labelloop.io.export import export_rows, plan_export
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.items import project_summary

if TYPE_CHECKING:
    import pandas as pd


class Project:
    """A handle on one project in one database (cheap: reads happen on each call)."""

    def __init__(self, name: str, *, engine: Engine, settings: Settings):
        self.name = name
        self.engine = engine
        self.settings = settings

    def __repr__(self) -> str:
        return f"<labelloop.Project {self.name!r}>"

    def info(self) -> store_projects.Project:
        """The project's current record: tags, id column, display columns, model run."""
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name=self.name)

    @property
    def tags(self) -> list[str]:
        return self.info().tag_names

    def add_items(
        self,
        data: pd.DataFrame | Iterable[Mapping[str, Any]] | str | os.PathLike[str],
        *,
        id_column: str,
        text_columns: str | Sequence[str],
        display_columns: str | Sequence[str] | None = None,
        label_column: str | None = None,
        add_labels: bool = False,
        update: bool = False,
        encoding: str = "utf-8",
        label_separator: str | None = None,
        none_value: str | None = None,
        gold_column: str | None = None,
    ) -> ImportResult:
        """Import items from a DataFrame, an iterable of dicts or a file (.csv/.jsonl/.parquet).

        Same rules as ``labelloop import``: all rows or none; existing ids are skipped (or
        updated with ``update=True``); labels in ``label_column`` become imported labels.
        Multi-label projects: a label cell is a list of tags, or the tags joined by
        ``label_separator`` (default ``|``), or ``none_value`` (default ``__none__``) for "no tag
        applies"; an empty cell is unlabelled. ``gold_column``: known answers (gold items), read
        as label cells are."""
        options = ImportOptions(
            id_column=id_column,
            text_columns=[text_columns] if isinstance(text_columns, str) else list(text_columns),
            display_columns=display_columns,
            label_column=label_column,
            add_labels=add_labels,
            update=update,
            label_separator=label_separator,
            none_value=none_value,
            gold_column=gold_column,
        )
        if isinstance(data, (str, os.PathLike)):
            return import_file(self.engine, project=self.name, path=Path(data), options=options,
                               settings=self.settings, encoding=encoding)
        if hasattr(data, "iloc") and hasattr(data, "columns"):
            source: Any = DataFrameSource(data, chunk_rows=self.settings.import_chunk_rows)
        else:
            source = MappingSource(data, name="records")
        return import_source(self.engine, project=self.name, source=source, options=options,
                             settings=self.settings)

    def to_dataframe(self, *, with_predictions: bool = False, min_confidence: float | None = None,
                     with_comments: bool = False) -> pd.DataFrame:
        """One row per item, exactly like ``labelloop export`` (missing values are None; the sets
        of a multi-label project are lists of tag names, as in a Parquet export; ``comments``,
        with ``with_comments``, a list of dicts)."""
        import pandas as pd

        with reading(self.engine) as conn:
            project = store_projects.get_project(conn, name=self.name)
            plan = plan_export(conn, project=project, with_predictions=with_predictions,
                               min_confidence=min_confidence, with_comments=with_comments)
            rows = [row for chunk in export_rows(conn, plan, chunk_rows=self.settings.import_chunk_rows)
                    for row in chunk]
        return pd.DataFrame.from_records(rows, columns=list(plan.columns))

    def labels(self) -> pd.DataFrame:
        """Items with a final label or a conflict: columns id (by its original name), label,
        label_source. A multi-label project has ``labels`` instead of ``label``: the final set as
        a list of tag names (empty: no tag applies; None for a conflict)."""
        frame = self.to_dataframe()
        id_column = frame.columns[0]
        kept = frame[frame["label_source"].notna()]
        label = "labels" if "labels" in frame.columns and "label" not in frame.columns else "label"
        return kept[[id_column, label, "label_source"]].reset_index(drop=True)

    def status(self) -> dict[str, Any]:
        """``items``, ``labelled``, ``conflicts`` and ``labels`` per tag (as `labelloop status`)."""
        with reading(self.engine) as conn:
            project = store_projects.get_project(conn, name=self.name)
            return project_summary(conn, project=project)

    def export(self, path: str | os.PathLike[str], *, with_predictions: bool = False,
               min_confidence: float | None = None, overwrite: bool = False, raw: bool = False,
               label_separator: str | None = None, none_value: str | None = None,
               with_comments: bool = False) -> ExportResult:
        """Write the project to a .csv, .jsonl or .parquet file (as `labelloop export`; an
        existing file only with ``overwrite``, CSV formula cells as they are only with ``raw``;
        multi-label sets joined with ``label_separator`` in CSV and JSONL)."""
        return export_project(self.engine, project=self.name, path=path, with_predictions=with_predictions,
                              min_confidence=min_confidence, chunk_rows=self.settings.import_chunk_rows,
                              overwrite=overwrite, raw=raw, label_separator=label_separator,
                              none_value=none_value, with_comments=with_comments)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _connect(db: str | None) -> tuple[Engine, Settings]:
    settings = Settings.from_env(database_url=db)
    return open_engine(settings.database_url), settings


def open_project(name: str, *, db: str | None = None) -> Project:
    """Open an existing project (NotFoundError if there is none of that name)."""
    engine, settings = _connect(db)
    try:
        with reading(engine) as conn:
            store_projects.get_project(conn, name=name)
    except BaseException:
        engine.dispose()
        raise
    return Project(name, engine=engine, settings=settings)


def create_project(name: str, *, labels: Sequence[str], db: str | None = None, seed: int | None = None,
                   settings: Mapping[str, Any] | None = None, multi_label: bool = False) -> Project:
    """Create a project with an ordered list of tags (AlreadyExistsError if it exists).
    ``multi_label``: each item gets a set of tags (at most 63 tags), for the project's life."""
    engine, config = _connect(db)
    try:
        with writing(engine) as conn:
            store_projects.create_project(conn, name=name, labels=list(labels), seed=seed,
                                          settings=dict(settings or {}), multi_label=multi_label)
    except BaseException:
        engine.dispose()
        raise
    return Project(name, engine=engine, settings=config)


__all__ = ["Project", "create_project", "open_project"]
