"""Full-text search over the items' text, the same syntax on SQLite and PostgreSQL.

The syntax is :mod:`labelloop.store.search_syntax` (errors: ``SearchSyntaxError``, a 422). The
index (store/search_schema.py, migrations 0006 and 0016): SQLite an FTS5 external-content table
``items_fts``, PostgreSQL a GIN index over the stored column ``items.search_tsv``.

Three functions other modules call (keyword-only, each parses the query itself):

- :func:`match_condition`: a boolean clause over the ``items`` table (project and match), to
  put in any query that selects from ``items`` (or ``column=`` another table's item id column);
- :func:`ranked_ids`: matching ids, best match first (bm25 on SQLite, ``ts_rank`` on
  PostgreSQL). **Ranking is bounded**: only the first :data:`RANK_WINDOW` matches (SQLite: in id
  order; PostgreSQL: in the table's physical order, which is about import order) are ranked, so
  that a common word costs what a rare one does. Positions past the window list the other
  matches in id order;
- :func:`count_matches`: ``(count, exact)``, counting at most ``cap`` (then ``exact`` is False:
  "more than 10,000").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger, ColumnElement, Connection, Float, String, and_, bindparam, column, func, literal_column, select,
    table,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from labelloop.store.schema import items
from labelloop.store.search_schema import PG_SEARCH_COLUMN, SEARCH_CONFIG
from labelloop.store.search_syntax import Node, parse, to_fts5, to_tsquery

RANK_WINDOW = 1000  # matches ranked per query (see the module's docstring)
COUNT_CAP = 10_000

_fts = table("items_fts", column("rowid", BigInteger), column("items_fts", String), column("rank", Float))
_CONFIG = literal_column(f"'{SEARCH_CONFIG}'::regconfig")


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def pg_document() -> ColumnElement[Any]:
    """The items' stored tsvector (the indexed column; not in ``schema.items``: PostgreSQL only)."""
    return literal_column(f"items.{PG_SEARCH_COLUMN}", type_=TSVECTOR)


def _match(conn: Connection, node: Node) -> ColumnElement[bool]:
    """The match on ``items`` rows (without the project)."""
    if _is_sqlite(conn):
        fts_ids = select(_fts.c.rowid).where(
            _fts.c.items_fts.op("MATCH")(bindparam(None, to_fts5(node), type_=String)))
        return items.c.id.in_(fts_ids)
    return pg_document().op("@@")(func.to_tsquery(_CONFIG, bindparam(None, to_tsquery(node), type_=String)))


def match_condition(conn: Connection, *, project_id: int, query: str,
                    column: ColumnElement[Any] | None = None) -> ColumnElement[bool]:
    """A boolean clause: the item is in the project and matches ``query``.

    Without ``column`` the clause refers to the ``items`` table (select from it); with
    ``column`` (e.g. ``score_ranks.c.item_id``) it is ``column IN (matching item ids)``.
    Raises ``SearchSyntaxError`` for a bad query."""
    cond = and_(items.c.project_id == project_id, _match(conn, parse(query)))
    if column is None:
        return cond
    return column.in_(select(items.c.id).where(cond))


def _ids(conn: Connection, project_id: int, node: Node, *, ordered: bool = True) -> Any:
    """A select of the matching ids in id order (SQLite: driven by the FTS table, which yields
    rowids in order, so that LIMIT stops early instead of collecting every match first).
    PostgreSQL with ``ordered=False``: no ORDER BY, so that the planner takes the GIN index
    instead of walking the primary key and computing every row's tsvector."""
    if _is_sqlite(conn):
        return (select(items.c.id).join_from(_fts, items, items.c.id == _fts.c.rowid)
                .where(_fts.c.items_fts.op("MATCH")(bindparam(None, to_fts5(node), type_=String)),
                       items.c.project_id == project_id)
                .order_by(_fts.c.rowid))
    q = select(items.c.id).where(items.c.project_id == project_id, _match(conn, node))
    return q.order_by(items.c.id) if ordered else q


def _window(conn: Connection, project_id: int, node: Node) -> Any:
    """The first RANK_WINDOW matches with their score (lower is better), a subquery (id, r)."""
    if _is_sqlite(conn):
        q = (select(_fts.c.rowid.label("id"), _fts.c.rank.label("r"))
             .join_from(_fts, items, items.c.id == _fts.c.rowid)
             .where(_fts.c.items_fts.op("MATCH")(bindparam(None, to_fts5(node), type_=String)),
                    items.c.project_id == project_id)
             .order_by(_fts.c.rowid).limit(RANK_WINDOW))
    else:
        tsq = func.to_tsquery(_CONFIG, bindparam(None, to_tsquery(node), type_=String))
        inner = (select(items.c.id, pg_document().label("doc"))
                 .where(items.c.project_id == project_id, pg_document().op("@@")(tsq))
                 .limit(RANK_WINDOW).subquery())
        # ts_rank is higher for better matches: negate it, so that lower is better on both
        q = select(inner.c.id, (-func.ts_rank(inner.c.doc, tsq)).label("r"))
    return q.subquery()


def ranked_ids(conn: Connection, *, project_id: int, query: str, limit: int, offset: int = 0) -> list[int]:
    """Ids of the project's items matching ``query``, best match first (ties by id), from
    position ``offset``; at most ``limit``. Ranking is bounded to the first RANK_WINDOW matches
    (module docstring). Raises ``SearchSyntaxError`` for a bad query."""
    node = parse(query)
    limit, offset = max(0, int(limit)), max(0, int(offset))
    if limit == 0:
        return []
    window = _window(conn, project_id, node)
    if offset + limit <= RANK_WINDOW:
        q = select(window.c.id).order_by(window.c.r, window.c.id).limit(limit).offset(offset)
        return [int(i) for i in conn.execute(q).scalars()]
    ranked = [int(i) for i in conn.execute(select(window.c.id).order_by(window.c.r, window.c.id)).scalars()]
    out = ranked[offset:offset + limit]
    if len(ranked) < RANK_WINDOW or len(out) == limit:
        return out
    rest = (_ids(conn, project_id, node).where(items.c.id.not_in(ranked))
            .limit(limit - len(out)).offset(max(0, offset - RANK_WINDOW)))
    return out + [int(i) for i in conn.execute(rest).scalars()]


def count_matches(conn: Connection, *, project_id: int, query: str, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(number of the project's items matching ``query``, exact): counts at most ``cap``; with
    more matches the answer is ``(cap, False)`` ("more than 10,000"). Raises
    ``SearchSyntaxError`` for a bad query."""
    node = parse(query)
    cap = max(0, int(cap))
    probe = _ids(conn, project_id, node, ordered=False).limit(cap + 1)  # SQLite: by rowid, so FTS drives the join
    n = int(conn.execute(select(func.count()).select_from(probe.subquery())).scalar_one())
    return (cap, False) if n > cap else (n, True)
