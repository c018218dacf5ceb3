"""Streaming import and export of items (CSV, JSON Lines, Parquet; DataFrames in the API).

- :func:`import_file` / :func:`import_source`: one transaction per import, constant memory,
  every bad input rejected whole with file, line and field (:class:`InputFileError`).
- :func:`export_project`: one row per item with its final label (and optionally the model's
  prediction), streamed and written atomically.
"""

from labelloop.io.export import ExportResult, export_project
from labelloop.io.importer import ImportOptions, ImportResult, import_file, import_into, import_source
from labelloop.io.readers import open_file
from labelloop.io.records import DataFrameSource, MappingSource, RecordSource

__all__ = [
    "DataFrameSource",
    "ExportResult",
    "ImportOptions",
    "ImportResult",
    "MappingSource",
    "RecordSource",
    "export_project",
    "import_file",
    "import_into",
    "import_source",
    "open_file",
]
