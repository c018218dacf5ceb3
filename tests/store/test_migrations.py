from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import pytest

from labelloop.errors import SchemaTooNewError
from labelloop.store import open_engine
from labelloop.store.migrate import current_revision, head_revision
from labelloop.store.schema import metadata


def test_migrations_produce_exactly_the_model_schema(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_migrations_run_on_first_use_and_are_idempotent(db_url):
    first = open_engine(db_url)
    with first.connect() as conn:
        assert current_revision(conn) == head_revision()
    first.dispose()
    again = open_engine(db_url)  # nothing to do the second time
    with again.connect() as conn:
        assert current_revision(conn) == head_revision()
    again.dispose()


def test_a_newer_schema_is_a_clear_error(engine, db_url):
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaTooNewError, match="9999_from_the_future.*upgrade labelloop"):
        open_engine(db_url)


def test_sqlite_pragmas(tmp_path):
    eng = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    eng.dispose()
