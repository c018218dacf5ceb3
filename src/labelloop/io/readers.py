"""File readers: CSV, JSONL and Parquet, chosen by extension, read in constant memory.

Line numbers in errors: the physical line where a CSV record starts (records may span lines),
the line of a JSONL record, the 1-based data row of a Parquet file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from labelloop.errors import InputFileError, InvalidInputError
from labelloop.io.records import MappingSource, RecordSource, convert_cells

READERS = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf_16", "utf_32")


def open_file(path: str | os.PathLike[str], *, encoding: str = "utf-8", max_field_bytes: int = 1_000_000,
              chunk_rows: int = 20_000) -> RecordSource:
    """A record source for ``path`` by its extension (.csv, .jsonl, .parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise InvalidInputError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}; use one of "
            + ", ".join(f"{ext} ({kind})" for ext, kind in READERS.items())
        )
    if not path.exists():
        raise InputFileError(str(path), "no such file")
    if not path.is_file():
        raise InputFileError(str(path), "not a regular file")
    if suffix == ".parquet":
        return ParquetSource(path, chunk_rows=chunk_rows)
    codec = _codec(encoding)
    if suffix == ".csv":
        return CsvSource(path, encoding=codec, max_field_bytes=max_field_bytes)
    return JsonlSource(path, encoding=codec)


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInputError(f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)") from None


class _LineFile:
    """Physical lines of a file, decoded one by one so a decoding error names its line."""

    def __init__(self, path: Path, encoding: str, name: str):
        self.name = name
        self.encoding = encoding
        self.file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the source
        self.size = os.fstat(self.file.fileno()).st_size
        self.count = 0

    def lines(self) -> Iterator[str]:
        if self.encoding.startswith(_NOT_ASCII_COMPATIBLE):
            yield from self._text_lines()
            return
        decode = codecs.getdecoder(self.encoding)
        for raw in self.file:
            self.count += 1
            try:
                text = decode(raw)[0]
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc, self.count) from None
            if self.count == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield text

    def _text_lines(self) -> Iterator[str]:
        wrapper = io.TextIOWrapper(self.file, encoding=self.encoding, newline="")
        while True:
            try:
                text = wrapper.readline()
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc, self.count + 1) from None
            if not text:
                return
            self.count += 1
            yield text.lstrip("\ufeff") if self.count == 1 else text

    def _decode_error(self, exc: UnicodeDecodeError, line: int) -> InputFileError:
        return InputFileError(
            self.name,
            f"not valid {self.encoding} text (byte {exc.start + 1} of the line); if the file is in "
            "another encoding, give it with --encoding, e.g. --encoding cp1252",
            line=line,
        )

    def position(self) -> int:
        try:
            return self.file.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self.file.close()


class CsvSource(RecordSource):
    """A CSV file with a header row (RFC 4180 quoting, strict: malformed quoting is an error)."""

    unit = "bytes"

    def __init__(self, path: Path, *, encoding: str = "utf-8", max_field_bytes: int = 1_000_000):
        self.name = str(path)
        self._file = _LineFile(path, encoding, self.name)
        self._max = max_field_bytes
        self._header: list[str] | None = None
        # The csv module's limit is process-wide: only ever raise it (the importer checks the
        # byte limit itself, naming the field), so other readers in the process are not affected.
        csv.field_size_limit(max(csv.field_size_limit(), max_field_bytes))
        self._reader = csv.reader(self._file.lines(), strict=True)

    def _next(self) -> list[str] | None:
        start = self._reader.line_num + 1
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            text = str(exc)
            if "field larger than field limit" in text:
                text = f"a field is longer than the limit of {self._max:,} bytes (LABELLOOP_MAX_FIELD_BYTES)"
            else:
                text = f"malformed CSV: {text} (check the quoting of this record)"
            raise self.error(text, line=start) from None

    def columns(self) -> list[str]:
        if self._header is None:
            header = self._next()
            while header == []:
                header = self._next()
            if header is None:
                raise self.error("the file is empty: no header row")
            self._header = header
        return list(self._header)

    def header_line(self) -> int | None:
        return 1

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Sequence[str]]]:
        header = self.columns()
        positions = [header.index(c) for c in wanted]
        pick = itemgetter(*positions) if len(positions) > 1 else (lambda row: (row[positions[0]],))
        width = len(header)
        reader = self._reader
        while True:
            start = reader.line_num + 1
            row = self._next()
            if row is None:
                return
            if len(row) != width:
                if not row:
                    continue  # a blank line
                raise self.error(
                    f"expected {width} fields as in the header, found {len(row)}", line=start
                )
            yield start, pick(row)

    def total(self) -> int | None:
        return self._file.size

    def position(self) -> int:
        return self._file.position()

    def close(self) -> None:
        self._file.close()


class JsonlSource(MappingSource):
    """A JSON Lines file: one JSON object per line; blank lines are ignored."""

    unit = "bytes"

    def __init__(self, path: Path, *, encoding: str = "utf-8"):
        super().__init__((), name=str(path))
        self._file = _LineFile(path, encoding, self.name)

    def _records(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        loads = json.loads
        for text in self._file.lines():
            line = self._file.count
            if not text.strip():
                continue
            try:
                record = loads(text)
            except json.JSONDecodeError as exc:
                raise self.error(f"invalid JSON: {exc.msg} (column {exc.colno})", line=line) from None
            if not isinstance(record, dict):
                raise self.error(f"expected a JSON object, found {type(record).__name__}", line=line)
            yield line, record

    def _start(self) -> None:
        try:
            super()._start()
        except InputFileError as exc:
            if exc.line is None:
                raise self.error("the file is empty: no JSON records") from None
            raise

    def total(self) -> int | None:
        return self._file.size

    def position(self) -> int:
        return self._file.position()

    def close(self) -> None:
        self._file.close()


class ParquetSource(RecordSource):
    """A Parquet file, read a batch of rows at a time (row numbers are 1-based data rows)."""

    def __init__(self, path: Path, *, chunk_rows: int = 20_000):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.name = str(path)
        self._arrow_error = pa.ArrowException
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise self.error(f"not a readable Parquet file: {exc}") from None
        self._chunk = max(1, chunk_rows)
        self._read = 0

    def columns(self) -> list[str]:
        names = list(self._file.schema_arrow.names)
        if not names:
            raise self.error("the file is empty: no columns")
        return names

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Sequence[str]]]:
        unique = list(dict.fromkeys(wanted))
        batches = self._file.iter_batches(batch_size=self._chunk, columns=unique)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except self._arrow_error as exc:
                raise self.error(f"cannot read Parquet data: {exc}", line=self._read + 1) from None
            by_name = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
            lists = [by_name[c] for c in wanted]
            for offset, cells in enumerate(zip(*lists)):
                line = self._read + offset + 1
                yield line, convert_cells(self, line, wanted, cells)
            self._read += batch.num_rows

    def total(self) -> int | None:
        return self._file.metadata.num_rows

    def position(self) -> int:
        return self._read

    def close(self) -> None:
        self._file.close()
