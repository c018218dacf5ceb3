from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import pytest

from labelloop.errors import SchemaTooNewError
from labelloop.store import ensure_schema, open_engine, writing
from labelloop.store.migrate import alembic_config, current_revision, head_revision
from labelloop.store.schema import metadata
from labelloop.store.search_schema import comparison_filter


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


def test_0006_to_head_keep_a_live_project_working(db_url):
    """A project labelled under 0005 (items, a label, a live lease) upgraded to the head: its items
    are found by the new search, the lease held before is still the user's and can be labelled
    (PostgreSQL: the label functions of 0010), old assignments are not steered, nothing is bulk."""
    from datetime import UTC, datetime, timedelta

    from labelloop.store import labelling, projects, search, users
    from labelloop.store.items import rand_key

    engine = open_engine(db_url, migrate=False)
    with writing(engine) as conn:
        command.upgrade(alembic_config(conn), "0005")
    now = datetime.now(UTC)
    with writing(engine) as conn:
        # Raw SQL: today's store functions know columns later migrations add (0011's codebook_version).
        conn.execute(text("INSERT INTO projects (name, id_column, display_columns, settings, seed, created_at)"
                          " VALUES ('old', 'id', '[\"text\"]', '{}', 5, :now)"), {"now": now})
        pid = conn.execute(text("SELECT id FROM projects WHERE name = 'old'")).scalar_one()
        for pos, tag in enumerate(["Pos", "Neg"]):
            conn.execute(text("INSERT INTO tags (project_id, name, position, retired, created_at)"
                              " VALUES (:p, :n, :pos, false, :now)"), {"p": pid, "n": tag, "pos": pos, "now": now})
        pos_tag = conn.execute(text("SELECT id FROM tags WHERE name = 'Pos'")).scalar_one()
        user = users.create_user(conn, name="ann", role="labeller", password="correct horse battery")
        texts = ["a refund please", "the weather is fine", "refund refund", "nothing here"]
        for i, body in enumerate(texts):
            conn.execute(text("INSERT INTO items (project_id, external_id, display, text, rand, n_labels, target_labels,"
                              " created_at, updated_at) VALUES (:p, :e, :d, :t, :r, 0, 1, :now, :now)"),
                         {"p": pid, "e": f"x{i}", "d": '{"text": "%s"}' % body, "t": body,
                          "r": rand_key(5, f"x{i}"), "now": now})
        ids = conn.execute(text("SELECT id FROM items ORDER BY id")).scalars().all()
        for item_id, state, expires in ((ids[0], "labelled", now), (ids[1], "leased", now + timedelta(minutes=10))):
            conn.execute(text("INSERT INTO assignments (project_id, item_id, user_id, state, is_audit, leased_at,"
                              " expires_at) VALUES (:p, :i, :u, :s, false, :now, :x)"),
                         {"p": pid, "i": item_id, "u": user.id, "s": state, "now": now, "x": expires})
        conn.execute(text("INSERT INTO annotations (project_id, item_id, user_id, tag_id, source, is_audit, created_at,"
                          " updated_at) VALUES (:p, :i, :u, :t, 'human', false, :now, :now)"),
                     {"p": pid, "i": ids[0], "u": user.id, "t": pos_tag, "now": now})
        conn.execute(text("UPDATE items SET n_labels = 1, label_tag_id = :t, label_source = 'human' WHERE id = :i"),
                     {"t": pos_tag, "i": ids[0]})
    ensure_schema(engine)
    with writing(engine) as conn:
        assert current_revision(conn) == head_revision()
        project = projects.get_project(conn, name="old")
        assert search.ranked_ids(conn, project_id=project.id, query="refund", limit=10) in ([ids[2], ids[0]],
                                                                                             [ids[0], ids[2]])
        assert search.count_matches(conn, project_id=project.id, query="weather OR nothing") == (2, True)
        assert conn.execute(text("SELECT count(*) FROM assignments WHERE steered")).scalar_one() == 0
        labelling.label_item(conn, project=project, user_id=user.id, item_id=ids[1], tag="Neg")
        assert conn.execute(text("SELECT count(*) FROM bulk_ops")).scalar_one() == 0
    with engine.connect() as conn:
        labelled = conn.execute(text("SELECT id, n_labels, label_source FROM items WHERE n_labels > 0 ORDER BY id")).all()
    assert [tuple(r) for r in labelled] == [(ids[0], 1, "human"), (ids[1], 1, "human")]
    with writing(engine) as conn:  # the search index follows new and changed items after the upgrade
        conn.execute(text("UPDATE items SET text = 'refund at last' WHERE id = :i"), {"i": ids[3]})
        assert search.count_matches(conn, project_id=project.id, query="refund") == (3, True)
    engine.dispose()
