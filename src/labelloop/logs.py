"""Logging of `labelloop serve` and `labelloop orchestrate`: text lines or JSON lines on stderr.

:func:`configure_logging` puts one handler on the root logger (so Uvicorn's own messages come
out in the same format). A log call may add structured fields with
``extra={"fields": {...}}``: the ``json`` format puts them at the top level of the line's
object (next to ``time``, ``level``, ``logger`` and ``message``); the ``text`` format shows
the message alone, so messages that carry fields say the important ones in words too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from labelloop.errors import ConfigError

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the record's
    ``fields`` and, for an exception, its traceback under ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging(*, level: str = "INFO", fmt: str = "text") -> Callable[[], None]:
    """Log records of ``level`` and above to stderr in ``fmt`` (``text`` or ``json``).

    Replaces the handler an earlier call installed; returns a function that undoes the call."""
    fmt_name = fmt.strip().lower()
    level_name = level.strip().upper()
    if fmt_name not in FORMATS:
        raise ConfigError(f"LABELLOOP_LOG_FORMAT={fmt!r}: use one of {', '.join(FORMATS)}")
    if level_name not in LEVELS:
        raise ConfigError(f"LABELLOOP_LOG_LEVEL={level!r}: use one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt_name == "json" else logging.Formatter(TEXT_FORMAT, DATE_FORMAT))
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level_name)
    # Alembic says "Context impl ..." whenever a process checks the schema: noise below DEBUG.
    logging.getLogger("alembic").setLevel(level_name if level_name == "DEBUG" else "WARNING")

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    return undo
