"""Each labeller's accuracy on gold items: the store's counts through ``learn/gold.py``.

:func:`gold_report` is what ``labelloop status`` (the ``gold`` key of ``--json``) and the
dashboard show: per labeller who answered gold items, ``answered``, ``correct``, ``accuracy``,
``ci95`` (Wilson's 95 % interval) and ``flagged`` (the interval's upper bound is below the
project's ``gold_min_accuracy``: see :mod:`labelloop.learn.gold`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from labelloop.learn.gold import gold_accuracy
from labelloop.store import gold as store_gold
from labelloop.store.projects import Project


def gold_report(conn: Connection, *, project: Project) -> dict[str, Any]:
    """``items`` (gold items), ``fraction``, ``min_accuracy``, ``labellers`` ({name: figures},
    by name) and ``flagged`` (the names flagged)."""
    bar = float(project.setting("gold_min_accuracy"))
    labellers = {
        c.name: gold_accuracy(c.correct, c.answered, min_accuracy=bar).as_dict()
        for c in store_gold.answer_counts(conn, project_id=project.id)
    }
    return {
        "items": store_gold.gold_count(conn, project_id=project.id),
        "fraction": float(project.setting("gold_fraction")),
        "min_accuracy": bar,
        "labellers": labellers,
        "flagged": [name for name, figures in labellers.items() if figures["flagged"]],
    }
