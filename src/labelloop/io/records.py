"""Record sources: what the importer reads, whatever the input (a file, a DataFrame, dicts).

A :class:`RecordSource` names its columns and yields ``(line, values)`` pairs, where ``line``
is the number to cite in an error (physical line of the record start in CSV, line in JSONL,
1-based data row otherwise) and ``values`` are the *wanted* columns' cells as ``str`` (an
empty string for a missing value). Every source is read once, front to back, in constant
memory, so the file readers and the notebook's DataFrame path share one writer.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, Self

from labelloop.errors import InputFileError


class CellError(ValueError):
    """A cell cannot be turned into text; the source adds file, line and field."""


class ListCell(str):
    """A list of strings in one cell (a Parquet ``list<string>`` or a JSON array), kept for a
    multi-label project's label column. Its text is NUL followed by the items joined by NUL, so
    the importer's NUL check stops at it: every other column refuses it (as a nested list), and
    the label column of a multi-label project reads :attr:`items`."""

    items: tuple[str, ...]

    def __new__(cls, items: Sequence[str]) -> Self:
        cell = super().__new__(cls, "\x00" + "\x00".join(items))
        cell.items = tuple(items)
        return cell


def cell_text(value: Any) -> str:
    """The text of one cell from JSON, Parquet or a DataFrame (None/NaN -> empty)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise CellError("binary value that is not valid UTF-8 text") from None
    if isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
        return ListCell(value)
    if isinstance(value, (dict, list, tuple)):
        raise CellError(f"a nested {type(value).__name__} value; expected text or a number")
    if _is_missing(value):
        return ""
    return str(value)


def _is_missing(value: Any) -> bool:
    # pandas.NA, NaT and numpy NaN-likes, without importing pandas here.
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return type(value).__name__ in {"NAType", "NaTType"}


class RecordSource(ABC):
    """Base class of record sources. Subclasses set :attr:`name` and implement the reads."""

    name: str = "<records>"
    #: what :meth:`position` and :meth:`total` count: "bytes" or "rows"
    unit: str = "rows"

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names available in the source (raises InputFileError if it is empty)."""

    def header_line(self) -> int | None:
        """The line to cite when a named column is missing."""
        return None

    @abstractmethod
    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Sequence[str]]]:
        """``(line, cells of the wanted columns)`` for each record, in order."""

    def total(self) -> int | None:
        """Total of :attr:`unit` to read, when known (for the progress bar)."""
        return None

    def position(self) -> int:
        """How many :attr:`unit` have been read so far."""
        return 0

    def close(self) -> None:
        """Release any open file."""

    def __enter__(self) -> RecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, problem: str, *, line: int | None = None, field: str | None = None) -> InputFileError:
        return InputFileError(self.name, problem, line=line, field=field)


def convert_cells(source: RecordSource, line: int, wanted: Sequence[str], values: Iterable[Any]) -> list[str]:
    """Cells to text, naming line and field of a cell that cannot be converted."""
    out = []
    for field, value in zip(wanted, values):
        if type(value) is str:
            out.append(value)
            continue
        try:
            out.append(cell_text(value))
        except CellError as exc:
            raise source.error(str(exc), line=line, field=field) from None
    return out


class MappingSource(RecordSource):
    """Records from an iterable of mappings (dict rows). The first record names the columns;
    a key missing from a later record counts as an empty cell."""

    def __init__(self, records: Iterable[Mapping[str, Any]], *, name: str = "<records>",
                 total: int | None = None, first_line: int = 1):
        self.name = name
        self._iter = iter(records)
        self._first: tuple[int, Mapping[str, Any]] | None = None
        self._columns: list[str] | None = None
        self._total = total
        self._read = 0
        self._first_line = first_line

    def _records(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """``(line, record)`` pairs; file readers override this to parse their lines."""
        for n, record in enumerate(self._iter, start=self._first_line):
            if not isinstance(record, Mapping):
                raise self.error(f"expected a record with named fields, got {type(record).__name__}", line=n)
            yield n, record

    def _start(self) -> None:
        if self._columns is not None:
            return
        self._gen = self._records()
        first = next(self._gen, None)
        if first is None:
            raise self.error("no records: the input is empty")
        self._first = first
        self._columns = [str(k) for k in first[1]]

    def columns(self) -> list[str]:
        self._start()
        assert self._columns is not None
        return list(self._columns)

    def header_line(self) -> int | None:
        self._start()
        return self._first[0] if self._first else None

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Sequence[str]]]:
        self._start()
        first, self._first = self._first, None
        pending = [first] if first is not None else []
        for line, record in _chain(pending, self._gen):
            self._read += 1
            get = record.get
            yield line, convert_cells(self, line, wanted, [get(c) for c in wanted])

    def total(self) -> int | None:
        return self._total

    def position(self) -> int:
        return self._read


def _chain(head: list[Any], tail: Iterator[Any]) -> Iterator[Any]:
    yield from head
    yield from tail


class DataFrameSource(RecordSource):
    """Records from a pandas DataFrame, converted a chunk of rows at a time."""

    def __init__(self, frame: Any, *, name: str = "DataFrame", chunk_rows: int = 20_000):
        self.name = name
        self._frame = frame
        self._chunk = max(1, chunk_rows)
        self._read = 0

    def columns(self) -> list[str]:
        if len(self._frame.columns) == 0:
            raise self.error("no columns: the DataFrame is empty")
        return [str(c) for c in self._frame.columns]

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Sequence[str]]]:
        by_name = {str(c): c for c in self._frame.columns}
        n = len(self._frame)
        for start in range(0, n, self._chunk):
            part = self._frame.iloc[start : start + self._chunk]
            lists = []
            for field in wanted:
                series = part[by_name[field]]
                values = series.astype(object).where(series.notna(), None).tolist()
                lists.append(values)
            for offset, cells in enumerate(zip(*lists)):
                line = start + offset + 1
                yield line, convert_cells(self, line, wanted, cells)
            self._read = min(n, start + self._chunk)

    def total(self) -> int | None:
        return len(self._frame)

    def position(self) -> int:
        return self._read
