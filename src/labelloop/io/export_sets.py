"""Export of multi-label projects: the rows' set columns (see :mod:`labelloop.io.export`).

One row per item: the id, the display fields, ``labels`` (the final set: a list of tag names
in the project's order; None without a final set) and ``label_source`` (``human``, ``bulk``,
``conflict`` or empty). With predictions, for every item the current model scored: a column
``p_<tag>`` per active tag (the model's probability, from ``item_scores.proba`` and the run's
``metrics["bits"]`` or ``metrics["tags"]``), ``predicted_labels`` (the model's set above its
thresholds, ``item_scores.predicted_mask``; None below ``min_confidence``), ``confidence`` and
``model_version``.

The rows carry sets as Python lists: Parquet writes them as ``list<string>`` columns, CSV and
JSONL join them with the separator (default ``|``), writing the none value (default
``__none__``) for an empty set, as the importer reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, select

from labelloop.store.projects import Project
from labelloop.store.schema import item_scores, items, model_runs
from labelloop.store.tagsets import names_of

SET_LABEL_COLUMNS = ("labels", "label_source")
LIST_COLUMNS = frozenset({"labels", "predicted_labels"})
DEFAULT_SEPARATOR = "|"
DEFAULT_NONE_VALUE = "__none__"


def probability_columns(conn: Connection, *, project: Project, run_id: int) -> list[tuple[str, int | None]]:
    """(``p_<tag>``, the tag's position in the run's ``proba`` rows, or None if the run has no
    such tag) per active tag, in display order. Tags are matched by bit (``metrics["bits"]``,
    which survives a rename), else by name (``metrics["tags"]``)."""
    metrics = conn.execute(select(model_runs.c.metrics).where(model_runs.c.id == run_id)).scalar() or {}
    bits = [int(b) for b in metrics.get("bits") or []]
    names = [str(t) for t in metrics.get("tags") or []]
    out: list[tuple[str, int | None]] = []
    for name, bit in project.tag_bits.items():
        if bits:
            position = bits.index(bit) if bit in bits else None
        else:
            position = names.index(name) if name in names else None
        out.append((f"p_{name}", position))
    return out


def set_rows(
    conn: Connection, *, project: Project, run_id: int | None, model_version: int | None,
    min_confidence: float | None, probabilities: list[tuple[str, int | None]], chunk_rows: int,
) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of rows for a multi-label project's export (see the module documentation)."""
    display_columns = project.display_columns
    cols = [items.c.external_id, items.c.display, items.c.label_mask, items.c.label_source]
    query = select(*cols)
    if run_id is not None:
        query = select(
            *cols, item_scores.c.predicted_mask, item_scores.c.confidence, item_scores.c.proba,
            item_scores.c.item_id,
        ).select_from(
            items.outerjoin(item_scores, and_(item_scores.c.item_id == items.c.id, item_scores.c.run_id == run_id))
        )
    query = query.where(items.c.project_id == project.id).order_by(items.c.id)
    result = conn.execute(query.execution_options(stream_results=True, yield_per=max(1, chunk_rows)))
    cache: dict[int, list[str]] = {}

    def names(mask: int) -> list[str]:
        found = cache.get(mask)
        if found is None:
            found = cache[mask] = names_of(project, mask)
        return list(found)

    positions = [p for _, p in probabilities]
    empty_p = (None,) * len(positions)
    for part in result.partitions():
        out = []
        for row in part:
            display = row[1] or {}
            shown = tuple(_shown(display.get(c)) for c in display_columns)
            source = row[3] if row[3] in ("human", "bulk", "conflict") else None
            labels = names(row[2]) if source in ("human", "bulk") and row[2] is not None else None
            if run_id is None:
                out.append((row[0], *shown, labels, source))
                continue
            if row[7] is None:  # no score for this item in the run
                out.append((row[0], *shown, labels, source, *empty_p, None, None, None))
                continue
            proba = np.frombuffer(row[6], dtype="<f4") if row[6] is not None else None
            p_values = tuple(
                float(proba[p]) if proba is not None and p is not None and p < len(proba) else None for p in positions
            )
            confidence = row[5]
            predicted = None
            if row[4] is not None and (min_confidence is None or (confidence is not None and confidence >= min_confidence)):
                predicted = names(row[4])
            out.append((row[0], *shown, labels, source, *p_values, predicted, confidence, model_version))
        yield out


def _shown(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def joined(row: tuple[Any, ...], list_positions: list[int], separator: str, none_value: str) -> tuple[Any, ...]:
    """The row with its set cells joined for CSV and JSONL (an empty set: ``none_value``)."""
    cells = list(row)
    for i in list_positions:
        value = cells[i]
        if value is not None:
            cells[i] = separator.join(value) if value else none_value
    return tuple(cells)
