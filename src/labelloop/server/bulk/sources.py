"""Where the bulk page's items come from: a search (``q``, :mod:`labelloop.store.search`,
best match first), a ``likely`` list (``tag``: unlabelled items the model thinks most probably
have the tag) or a ``similar`` list (``item``: the nearest neighbours of an item), both
:mod:`labelloop.store.steerlists`; or a plain list of item ids (``ids``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from labelloop.errors import InvalidInputError
from labelloop.store import search as store_search
from labelloop.store import steerlists
from labelloop.store.projects import Project

LIMITS = (50, 100, 200, 500)
_ID_LIST = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Found:
    kind: str | None  # "search", "likely", "similar", "ids"; None: no source given
    ids: list[int]
    total: str | None = None  # a search's number of matches ("1,234" or "more than 10,000")


def parse_ids(text: str) -> list[int]:
    """Item ids separated by commas or spaces; InvalidInputError names the first bad one."""
    out = []
    for part in _ID_LIST.split(text.strip()):
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or len(part) > 18 or int(part) < 1:
            raise InvalidInputError(f"not an item id: {part[:40]!r}; give ids (the API's `id`) separated by commas")
        out.append(int(part))
    return out


def find(conn: Connection, *, project: Project, q: str, tag: str, item: int | None, ids: str,
         limit: int) -> Found:
    """The items of the first source given (``q``, ``tag``, ``item``, ``ids``), at most ``limit``.
    Errors (a bad query, an unknown tag or item) are LabelloopErrors with the fix."""
    if q:
        found = store_search.ranked_ids(conn, project_id=project.id, query=q, limit=limit)
        count, exact = store_search.count_matches(conn, project_id=project.id, query=q)
        return Found("search", found, f"{count:,}" if exact else f"more than {count:,}")
    if tag:
        if tag not in project.tag_names:
            raise InvalidInputError(f"unknown tag {tag[:100]!r}: use one of {', '.join(project.tag_names)}")
        return Found("likely", steerlists.likely_ids(conn, project_id=project.id, tag=tag, limit=limit))
    if item is not None:
        return Found("similar", steerlists.similar_ids(conn, project_id=project.id, item_id=item, limit=limit))
    if ids:
        return Found("ids", parse_ids(ids)[:limit])
    return Found(None, [])
