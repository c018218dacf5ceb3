"""Numbers for people, as Jinja2 filters of every page (installed by :func:`install`).

- ``count``: an integer with thousands separators (``12,345``);
- ``rank``: a position or serving priority as a whole number (``510``, never ``510.000``);
- ``score``: a fixed number of decimals (2 by default) without a negative zero (``0.00``,
  never ``-0.0000``);
- ``percent``: a share 0-1 as a percentage (``80.0%``);
- ``ago``: a number of seconds as a short duration (``12 s``, ``4 min``, ``2 h 5 min``).

Each shows ``—`` for a missing value (None, NaN).
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def count(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{round(number):,}"


def rank(value: Any) -> str:
    return count(value)


def score(value: Any, digits: int = 2) -> str:
    number = _number(value)
    if number is None:
        return MISSING
    return f"{round(number, digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def percent(value: Any, digits: int = 1) -> str:
    number = _number(value)
    return MISSING if number is None else score(100 * number, digits) + "%"


def ago(seconds: Any) -> str:
    number = _number(seconds)
    if number is None:
        return MISSING
    whole = max(0, round(number))
    if whole < 120:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24:,} days"


FILTERS = {"count": count, "rank": rank, "score": score, "percent": percent, "ago": ago}


def install(env: Any) -> None:
    """Add the filters to a Jinja2 environment."""
    env.filters.update(FILTERS)
