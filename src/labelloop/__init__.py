"""labelloop: label texts with a team and a model in the loop.

For notebooks: ``labelloop.open_project(name, db=url)`` and ``labelloop.create_project(...)``
(see :mod:`labelloop.api`); imported lazily, so ``import labelloop`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Project", "create_project", "open_project"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from labelloop import api

        return getattr(api, name)
    raise AttributeError(f"module 'labelloop' has no attribute {name!r}")
