"""`labelloop import --gold-column`: known answers make gold items, as strictly as
--label-column reads labels (one line naming file, line and field; exit 2; nothing written)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import tags as store_tags
from labelloop.store.schema import gold_items, items

ARGS = ("--id-column", "id", "--text-columns", "title", "--gold-column", "gold")


def _gold(engine):
    with reading(engine) as conn:
        rows = conn.execute(select(items.c.external_id, items.c.label_tag_id, items.c.label_mask,
                                   items.c.target_labels, items.c.n_labels)
                            .join(gold_items, gold_items.c.item_id == items.c.id).order_by(items.c.external_id))
        return [tuple(r) for r in rows]


def test_gold_column_makes_gold_items_of_new_and_existing_rows(project, cli, engine, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("id,title,gold\nr1,one,A\nr2,two,\nr3,three, B \n")
    result = cli("import", "p", first, *ARGS)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "imported 3 items (0 skipped as already present, 0 labels); 2 gold items"
    a, b = project.tag_id("A"), project.tag_id("B")
    assert _gold(engine) == [("r1", a, None, 0, 0), ("r3", b, None, 0, 0)]
    again = tmp_path / "again.csv"  # existing ids are marked too (and a gold answer changed)
    again.write_text("id,title,gold\nr2,two,A\nr3,three,A\n")
    result = cli("import", "p", again, *ARGS)
    assert result.exit_code == 0 and "2 gold items" in result.stdout
    assert _gold(engine) == [("r1", a, None, 0, 0), ("r2", a, None, 0, 0), ("r3", a, None, 0, 0)]


def _rejected(cli, engine, path, *args):
    with reading(engine) as conn:
        before = conn.execute(select(func.count()).select_from(items)).scalar_one()
    result = cli("import", "p", path, *(args or ARGS))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == before
        assert conn.execute(select(func.count()).select_from(gold_items)).scalar_one() == 0
    return lines[0]


def test_gold_column_errors(project, cli, engine, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,title,gold\nr1,one,A\nr2,two,C\n")
    assert _rejected(cli, engine, path) == (
        f"error: {path}, line 3, field 'gold': unknown tag 'C'; project 'p' has: A, B (use --add-labels to add new tags)")
    missing = tmp_path / "missing.csv"
    missing.write_text("id,title\nr1,one\n")
    assert "no gold column 'answer'; available columns: id, title" in _rejected(
        cli, engine, missing, "--id-column", "id", "--text-columns", "title", "--gold-column", "answer")
    same = _rejected(cli, engine, path, "--id-column", "id", "--text-columns", "title", "--gold-column", "gold",
                     "--label-column", "gold")
    assert same == "error: --gold-column and --label-column both name 'gold': a column holds either imported " \
                   "labels or gold answers"
    with writing(engine) as conn:
        store_tags.add_tag(conn, project=project, name="Old", user_id=None)
        proj = store_projects.get_project(conn, name="p")
        store_tags.retire_tag(conn, project=proj, name="Old", user_id=None)
    retired = tmp_path / "retired.csv"
    retired.write_text("id,title,gold\nr1,one,Old\n")
    assert _rejected(cli, engine, retired).endswith("line 2, field 'gold': tag 'Old' is retired in project 'p'")
    listed = tmp_path / "listed.jsonl"  # a list in a single-label project's gold column
    listed.write_text(json.dumps({"id": "r1", "title": "one", "gold": ["A"]}) + "\n")
    assert "field 'gold': a nested list value" in _rejected(cli, engine, listed)


@pytest.fixture
def multi(engine):
    with writing(engine) as conn:
        return store_projects.create_project(conn, name="m", labels=["A", "B", "C"], seed=2, multi_label=True)


def test_multi_label_gold_sets(multi, cli, engine, tmp_path):
    path = tmp_path / "sets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "r1", "title": "one", "gold": ["A", "C"]},
        {"id": "r2", "title": "two", "gold": "B|C"},
        {"id": "r3", "title": "three", "gold": "__none__"},
        {"id": "r4", "title": "four", "gold": ""},
        {"id": "r5", "title": "five", "gold": []},
    ]))
    result = cli("import", "m", path, "--id-column", "id", "--text-columns", "title", "--gold-column", "gold")
    assert result.exit_code == 0, result.output
    assert _gold(engine) == [("r1", None, 1 | 4, 0, 0), ("r2", None, 2 | 4, 0, 0), ("r3", None, 0, 0, 0),
                             ("r5", None, 0, 0, 0)]
