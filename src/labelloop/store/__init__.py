"""The database layer: schema, migrations and query functions (keyword-only arguments).

Open a database with :func:`open_engine`; it migrates the schema on first use.
"""

from labelloop.store.engine import make_engine, reading, writing
from labelloop.store.migrate import ensure_schema
from sqlalchemy import Engine


def open_engine(url: str, *, migrate: bool = True, **kwargs: object) -> Engine:
    """Create an engine for ``url`` and bring its schema up to date."""
    engine = make_engine(url, **kwargs)
    if migrate:
        ensure_schema(engine)
    return engine


__all__ = ["open_engine", "make_engine", "reading", "writing", "ensure_schema"]
