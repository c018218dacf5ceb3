from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import pytest

from labelloop.errors import SchemaTooNewError
from labelloop.store import ensure_schema, open_engine, writing
from labelloop.store.migrate import alembic_config, current_revision, head_revision
from labelloop.store.schema import comparison_filter, metadata


def test_migrations_produce_exactly_the_model_schema(engine):
    with engine.connect() as conn:
        # Leaves out the search objects SQLAlchemy cannot describe (schema.py, comparison_filter).
        opts = {"compare_type": True, "include_object": comparison_filter(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
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


def test_0002_gives_existing_runs_their_serving_order(db_url):
    """A database with scores written by 0001 (one table, a priority index) keeps every score
    row, and each run gets its serving order: by priority, highest first, ties by item id."""
    engine = open_engine(db_url, migrate=False)
    with writing(engine) as conn:
        command.upgrade(alembic_config(conn), "0001")
    rows = [(run, item, prio) for run in (1, 2) for item, prio in [(5, 0.5), (3, 0.9), (9, 0.5), (4, 0.1)]]
    with writing(engine) as conn:
        for run, item, prio in rows:
            conn.execute(text("INSERT INTO item_scores (run_id, item_id, priority, predicted_tag_id, confidence) "
                              "VALUES (:r, :i, :p, 2, 0.75)"), {"r": run, "i": item, "p": prio})
    ensure_schema(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        kept = conn.execute(text("SELECT run_id, item_id, priority, predicted_tag_id, confidence FROM item_scores "
                                 "ORDER BY run_id, item_id")).all()
        ranks = conn.execute(text("SELECT run_id, rank, item_id, priority FROM score_ranks "
                                  "ORDER BY run_id, rank")).all()
        if conn.dialect.name == "sqlite":  # both tables are their key's b-tree alone
            for table in ("item_scores", "score_ranks"):
                sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar_one()
                assert sql.rstrip().endswith("WITHOUT ROWID"), sql
    assert [tuple(r) for r in kept] == sorted((r, i, p, 2, 0.75) for r, i, p in rows)
    order = [(0, 3, 0.9), (1, 5, 0.5), (2, 9, 0.5), (3, 4, 0.1)]
    assert [tuple(r) for r in ranks] == [(run, *o) for run in (1, 2) for o in order]
    engine.dispose()
