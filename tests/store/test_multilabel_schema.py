"""Multi-label projects: tag bits, the 63-tag limit, masks, and the migration 0005."""

import pytest
from alembic import command
from sqlalchemy import text

from labelloop.errors import AlreadyExistsError, InvalidInputError
from labelloop.store import ensure_schema, open_engine, reading, writing
from labelloop.store.migrate import alembic_config, current_revision, head_revision
from labelloop.store.projects import add_tags, create_project, get_project
from labelloop.store.tags import add_tag, rename_tag, retire_tag
from labelloop.store.tagsets import active_mask, mask_of, names_of


def test_multi_label_tags_get_bits_in_order(engine):
    with writing(engine) as conn:
        create_project(conn, name="ml", labels=["A", "B", "C"], multi_label=True)
        single = create_project(conn, name="sl", labels=["A", "B"])
    with reading(engine) as conn:
        project = get_project(conn, name="ml")
    assert project.multi_label and not single.multi_label
    assert project.tag_bits == {"A": 0, "B": 1, "C": 2}
    assert single.tag_bits == {} and all(t.bit is None for t in single.tags)


def test_masks_of_names_and_back(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="ml", labels=["A", "B", "C"], multi_label=True)
    assert mask_of(project, ["C", "A"]) == 0b101
    assert mask_of(project, []) == 0
    assert names_of(project, 0b101) == ["A", "C"]
    assert names_of(project, 0) == []
    assert active_mask(project) == 0b111
    with pytest.raises(InvalidInputError, match=r"unknown tags 'X', 'Y'; project 'ml' has: A, B, C"):
        mask_of(project, ["A", "X", "Y"])


def test_retired_bits_are_dropped_and_bits_never_reused(engine):
    with writing(engine) as conn:
        project = create_project(conn, name="ml", labels=["A", "B", "C"], multi_label=True)
        retire_tag(conn, project=project, name="B", user_id=None)
        rename_tag(conn, project=project, old="C", new="Z", user_id=None)
        add_tag(conn, project=project, name="D", user_id=None)
    with reading(engine) as conn:
        project = get_project(conn, name="ml")
    assert project.tag_bits == {"A": 0, "Z": 2, "D": 3}
    assert names_of(project, 0b1111) == ["A", "Z", "D"]
    assert active_mask(project) == 0b1101
    with pytest.raises(InvalidInputError, match=r"'B' \(retired\)"):
        mask_of(project, ["B"])


def test_the_64th_tag_is_refused(engine):
    names = [f"t{i}" for i in range(63)]
    with writing(engine) as conn, pytest.raises(InvalidInputError, match="at most 63 tags, retired ones included"):
        create_project(conn, name="big", labels=[*names, "t63"], multi_label=True)
    with writing(engine) as conn:
        project = create_project(conn, name="big", labels=names[:62], multi_label=True)
        retire_tag(conn, project=project, name="t0", user_id=None)
        add_tags(conn, project_id=project.id, names=["t62"])  # bit 62, the last one
    with writing(engine) as conn, pytest.raises(InvalidInputError, match="has 63 and would have 64"):
        add_tag(conn, project=get_project(conn, name="big"), name="t63", user_id=None)
    with reading(engine) as conn:
        project = get_project(conn, name="big")
    assert len(project.tags) == 63 and project.tag_bits["t62"] == 62
    assert mask_of(project, ["t62"]) == 1 << 62
    # A single-label project has no such limit.
    with writing(engine) as conn:
        create_project(conn, name="single", labels=[f"t{i}" for i in range(70)])
    with writing(engine) as conn, pytest.raises(AlreadyExistsError):
        add_tags(conn, project_id=project.id, names=["t1"])  # a name clash comes first


def test_0005_keeps_single_label_data_unchanged(db_url):
    """A database at 0004 with a project, labels and scores: after the upgrade every row is as it
    was, the project is single-label, and every new column is null."""
    engine = open_engine(db_url, migrate=False)
    with writing(engine) as conn:
        command.upgrade(alembic_config(conn), "0004")
    now = "2026-01-02 03:04:05"
    statements = [
        "INSERT INTO users (id, name, role, password_hash, created_at) VALUES (1, 'ann', 'labeller', 'x', :now)",
        ("INSERT INTO projects (id, name, id_column, display_columns, settings, seed, created_at) "
         "VALUES (1, 'p', 'id', '[\"text\"]', '{}', 7, :now)"),
        "INSERT INTO tags (id, project_id, name, position, created_at) VALUES (1, 1, 'A', 0, :now), (2, 1, 'B', 1, :now)",
        ("INSERT INTO items (id, project_id, external_id, display, text, rand, n_labels, label_tag_id, label_source, "
         "created_at, updated_at) VALUES (10, 1, 'x1', '{}', 'hello', 5, 1, 2, 'human', :now, :now)"),
        ("INSERT INTO annotations (id, project_id, item_id, user_id, tag_id, source, created_at, updated_at) "
         "VALUES (100, 1, 10, 1, 2, 'human', :now, :now)"),
        "INSERT INTO item_scores (run_id, item_id, priority, predicted_tag_id, confidence) VALUES (1, 10, 0.5, 1, 0.9)",
    ]
    with writing(engine) as conn:
        for sql in statements:
            conn.execute(text(sql), {"now": now})
    ensure_schema(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(text("SELECT multi_label FROM projects")).scalar_one() in (False, 0)
        assert [tuple(r) for r in conn.execute(text("SELECT id, name, position, retired, bit FROM tags ORDER BY id"))] \
            == [(1, "A", 0, False, None), (2, "B", 1, False, None)]
        assert tuple(conn.execute(text(
            "SELECT n_labels, label_tag_id, label_source, label_mask, adjudicated_mask FROM items")).one()) \
            == (1, 2, "human", None, None)
        assert tuple(conn.execute(text(
            "SELECT id, item_id, user_id, tag_id, tag_mask, source FROM annotations")).one()) \
            == (100, 10, 1, 2, None, "human")
        assert tuple(conn.execute(text(
            "SELECT priority, predicted_tag_id, confidence, predicted_mask, proba FROM item_scores")).one()) \
            == (0.5, 1, 0.9, None, None)
    with reading(engine) as conn:
        project = get_project(conn, name="p")
    assert not project.multi_label and project.tag_names == ["A", "B"]
    # Exactly one of tag_id and tag_mask.
    with pytest.raises(Exception, match="(?i)check"), writing(engine) as conn:
        conn.execute(text("INSERT INTO annotations (project_id, item_id, user_id, tag_id, tag_mask, source, "
                          "created_at, updated_at) VALUES (1, 10, NULL, 1, 3, 'import', :now, :now)"), {"now": now})
    engine.dispose()
