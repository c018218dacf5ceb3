"""The database layer: schema, migrations and query functions (keyword-only arguments).

Open a database with :func:`open_engine`; it migrates the schema on first use. With
``create=False`` it refuses (``NoDatabaseError``) to create a database that does not exist;
a database that cannot be opened raises ``DatabaseUnavailableError`` (see
:mod:`labelloop.store.opening`).
"""

from labelloop.store.engine import make_engine, reading, writing
from labelloop.store.migrate import ensure_schema
from labelloop.store.opening import open_engine

__all__ = ["open_engine", "make_engine", "reading", "writing", "ensure_schema"]
