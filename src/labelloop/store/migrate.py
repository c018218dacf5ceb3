"""Schema migrations (Alembic), run automatically on first use of a database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from labelloop.errors import SchemaTooNewError
from labelloop.store.engine import is_sqlite, writing

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do: it serialises migrations of concurrent processes on PostgreSQL.
_PG_MIGRATION_LOCK = 0x6C6C6D67


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the newest schema; fail clearly if it is newer than the code."""
    with engine.connect() as conn:
        current = current_revision(conn)
    if current == head_revision():
        return
    _check_known(current)
    with writing(engine) as conn:
        if not is_sqlite(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        current = current_revision(conn)  # another process may have migrated meanwhile
        _check_known(current)
        if current != head_revision():
            command.upgrade(alembic_config(conn), "head")


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        raise SchemaTooNewError(
            f"the database schema is at revision {revision!r}, which this version of labelloop "
            f"does not know (newest known: {head_revision()!r}); upgrade labelloop"
        )
