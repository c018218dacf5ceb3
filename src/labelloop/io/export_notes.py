"""``export --with-comments``: the comments, "unsure" flags and skip reasons of each item.

One more column, ``comments``, last: per item a list of its notes, oldest first, each
``{"id", "user", "kind" ("unsure", "comment" or "skip"), "reason" (a skip's: unclear, off-topic,
needs-context, other; else null), "text" (the comment, or null), "created_at", "resolved_at",
"resolved_by"}`` (times in ISO 8601, UTC); an item without notes has an empty cell (null). JSONL
writes the list itself, CSV and Parquet its JSON text. Resolved notes are included (see
``resolved_at``). The notes are read once (:func:`labelloop.store.notes.notes_by_external_id`)
and joined to the rows by external id (the first column of every export row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

COLUMN = "comments"

Chunks = Iterator[list[tuple[Any, ...]]]


def with_comments(chunks: Chunks, notes: dict[str, list[dict[str, Any]]]) -> Chunks:
    """The rows with their item's notes (a list, or None) added last."""
    for chunk in chunks:
        yield [(*row, notes.get(row[0]) or None) for row in chunk]


def as_text(chunks: Chunks) -> Chunks:
    """The rows with the last cell (the notes) as JSON text, for CSV and Parquet."""
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    for chunk in chunks:
        yield [(*row[:-1], None if row[-1] is None else dumps(row[-1])) for row in chunk]
