"""The search index follows `import` and `import --update` (store/search_index.py), on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text

from labelloop.config import Settings
from labelloop.errors import InputFileError
from labelloop.io import ImportOptions, import_file
from labelloop.store import projects as store_projects
from labelloop.store import reading, search, writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items, utcnow

SETTINGS = Settings(import_chunk_rows=2)


def write_csv(path, rows):
    lines = ["id,body"] + [f"{i},{b}" for i, b in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hits(engine, query, project="p"):
    with reading(engine) as conn:
        p = store_projects.get_project(conn, name=project)
        ids = search.ranked_ids(conn, project_id=p.id, query=query, limit=100)
        ext = dict(conn.execute(select(items.c.id, items.c.external_id).where(items.c.id.in_(ids))).all())
        assert search.count_matches(conn, project_id=p.id, query=query) == (len(ids), True)
    return sorted(ext[i] for i in ids)


def test_import_and_update_keep_the_index_in_step(engine, project, tmp_path, cli):
    rows = [("a1", "red apples"), ("a2", "green apples"), ("a3", "blue sky"), ("a4", "red sky at night"),
            ("a5", "nothing here")]
    opts = ImportOptions(id_column="id", text_columns=["body"])
    import_file(engine, project="p", path=write_csv(tmp_path / "a.csv", rows), options=opts, settings=SETTINGS)
    assert hits(engine, "red") == ["a1", "a4"]
    assert hits(engine, "apple*") == ["a1", "a2"]
    # a second import adds new rows (the bulk path again), skipping known ids
    more = [("a1", "ignored red text"), ("b1", "red balloons"), ("b2", "sky blue")]
    import_file(engine, project="p", path=write_csv(tmp_path / "b.csv", more), options=opts, settings=SETTINGS)
    assert hits(engine, "red") == ["a1", "a4", "b1"]
    assert hits(engine, "ignored") == []
    assert hits(engine, '"blue sky"') == ["a3"]
    # --update through the CLI: changed text re-indexed, the old words gone
    changed = [("a1", "yellow bananas"), ("a3", "blue sky"), ("b2", "grey clouds")]
    result = cli("import", "p", str(write_csv(tmp_path / "c.csv", changed)), "--id-column", "id",
                 "--text-columns", "body", "--update")
    assert result.exit_code == 0, result.output
    assert hits(engine, "red") == ["a4", "b1"]
    assert hits(engine, "banana*") == ["a1"]
    assert hits(engine, "sky") == ["a3", "a4"]
    assert hits(engine, "grey clouds") == ["b2"]
    # single writes after an import are still indexed (SQLite: the insert trigger is back)
    with writing(engine) as conn:
        now = utcnow()
        conn.execute(insert(items).values(project_id=project.id, external_id="z", display={}, text="red zeppelin",
                                          rand=rand_key(project.seed, "z"), created_at=now, updated_at=now))
    assert hits(engine, "red") == ["a4", "b1", "z"]
    with writing(engine) as conn:  # the FTS index agrees with the table exactly (raises otherwise)
        if conn.dialect.name == "sqlite":
            conn.execute(text("INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)"))


def test_a_failed_import_leaves_index_and_trigger_as_they_were(engine, project, tmp_path):
    opts = ImportOptions(id_column="id", text_columns=["body"])
    import_file(engine, project="p", path=write_csv(tmp_path / "a.csv", [("a1", "red apples")]), options=opts,
                settings=SETTINGS)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\nb1,red one\nb2,red two\nb3,red three\nb1,duplicate id\n", encoding="utf-8")
    with pytest.raises(InputFileError):
        import_file(engine, project="p", path=bad, options=opts, settings=SETTINGS)
    assert hits(engine, "red") == ["a1"]
    with writing(engine) as conn:
        now = utcnow()
        conn.execute(insert(items).values(project_id=project.id, external_id="z", display={}, text="red zeppelin",
                                          rand=rand_key(project.seed, "z"), created_at=now, updated_at=now))
        if conn.dialect.name == "sqlite":
            names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
            assert {"items_fts_ai", "items_fts_ad", "items_fts_au"} <= names
    assert hits(engine, "red") == ["a1", "z"]
