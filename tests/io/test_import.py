"""Importing items: what is stored, skipping and updating, labels, all three file formats."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import select

from labelloop.config import Settings
from labelloop.errors import InputFileError
from labelloop.io import ImportOptions, MappingSource, import_file, import_source
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.items import project_summary, rand_key
from labelloop.store.schema import annotations

SETTINGS = Settings(import_chunk_rows=3)
ROWS = [
    {"id": "a1", "title": "Cheap flights", "body": "Fly to Bali", "note": "n1", "label": "A"},
    {"id": "a2", "title": "Exam tips", "body": "", "note": "n2", "label": ""},
    {"id": "a3", "title": "Ergonomic chair", "body": "Line one\nline two", "note": "", "label": "B"},
    {"id": "a4", "title": "Café ☕", "body": "emoji 🎉", "note": "n4", "label": " A "},
    {"id": "a5", "title": "", "body": "only a body", "note": "n5", "label": ""},
]


def write(tmp_path, kind, rows=ROWS):
    path = tmp_path / f"items.{kind}"
    frame = pd.DataFrame(rows)
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


def options(**kw):
    return ImportOptions(**{"id_column": "id", "text_columns": ["title", "body"], **kw})


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_each_format_stores_text_display_rand_and_labels(kind, engine, project, stored_items, tmp_path):
    path = write(tmp_path, kind)
    result = import_file(engine, project="p", path=path, settings=SETTINGS,
                         options=options(display_columns=["title", "note"], label_column="label"))
    assert (result.imported, result.skipped, result.labels) == (5, 0, 3)
    stored = stored_items()
    assert list(stored) == ["a1", "a2", "a3", "a4", "a5"]  # file order
    assert stored["a1"]["text"] == "Cheap flights\n\nFly to Bali"
    assert stored["a2"]["text"] == "Exam tips"  # empty parts are left out
    assert stored["a3"]["text"] == "Ergonomic chair\n\nLine one\nline two"
    assert stored["a5"]["text"] == "only a body"
    assert stored["a4"]["display"] == {"title": "Café ☕", "note": "n4"}
    assert stored["a3"]["display"] == {"title": "Ergonomic chair", "note": ""}
    for ext_id, item in stored.items():
        assert item["rand"] == rand_key(project.seed, ext_id)
    labelled = {k: (v["label"], v["label_source"], v["n_labels"]) for k, v in stored.items()}
    assert labelled == {
        "a1": ("A", "human", 1), "a2": (None, None, 0), "a3": ("B", "human", 1),
        "a4": ("A", "human", 1), "a5": (None, None, 0),
    }
    with reading(engine) as conn:
        notes = conn.execute(select(annotations.c.user_id, annotations.c.source, annotations.c.tag_id)).all()
        proj = store_projects.get_project(conn, name="p")
        assert project_summary(conn, project=proj)["labels"] == {"A": 2, "B": 1}
    assert sorted((u, s, proj.tag_name(t)) for u, s, t in notes) == [
        (None, "import", "A"), (None, "import", "A"), (None, "import", "B")]
    assert proj.id_column == "id" and proj.display_columns == ("title", "note")


def test_reimport_skips_existing_ids_and_update_replaces_text(engine, project, stored_items, tmp_path):
    first = import_file(engine, project="p", path=write(tmp_path, "csv", ROWS[:3]), options=options(),
                        settings=SETTINGS)
    assert (first.imported, first.skipped) == (3, 0)
    changed = [dict(r, title=r["title"] + " (v2)") for r in ROWS]
    again = import_file(engine, project="p", path=write(tmp_path, "csv", changed), options=options(),
                        settings=SETTINGS)
    assert (again.imported, again.skipped, again.updated) == (2, 3, 0)
    assert again.summary() == "imported 2 items (3 skipped as already present, 0 labels)"
    stored = stored_items()
    assert stored["a1"]["text"].startswith("Cheap flights\n") and stored["a4"]["text"].startswith("Café ☕ (v2)")
    rand_before = {k: v["rand"] for k, v in stored.items()}
    updated = import_file(engine, project="p", path=write(tmp_path, "csv", [dict(r, body="new") for r in changed]),
                          options=options(update=True), settings=SETTINGS)
    assert (updated.imported, updated.skipped, updated.updated) == (0, 0, 5)
    assert "5 updated" in updated.summary()
    stored = stored_items()
    assert stored["a1"]["text"] == "Cheap flights (v2)\n\nnew"
    assert stored["a1"]["display"] == {"title": "Cheap flights (v2)", "body": "new"}
    assert {k: v["rand"] for k, v in stored.items()} == rand_before


def test_add_labels_extends_the_tags_in_order_of_appearance(engine, project, stored_items, tmp_path):
    rows = [dict(r, label=lab) for r, lab in zip(ROWS, ["Zeta", "A", "Alpha", "Zeta", ""])]
    result = import_file(engine, project="p", path=write(tmp_path, "csv", rows), settings=SETTINGS,
                         options=options(label_column="label", add_labels=True))
    assert result.new_tags == ("Zeta", "Alpha") and result.labels == 4
    assert result.summary().endswith("; new tags: Zeta, Alpha")
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="p").tag_names == ["A", "B", "Zeta", "Alpha"]
    assert stored_items()["a3"]["label"] == "Alpha"


def test_labels_of_skipped_items_are_not_added_again(engine, project, tmp_path):
    path = write(tmp_path, "csv")
    import_file(engine, project="p", path=path, options=options(label_column="label"), settings=SETTINGS)
    again = import_file(engine, project="p", path=path, options=options(label_column="label"), settings=SETTINGS)
    assert (again.imported, again.skipped, again.labels) == (0, 5, 0)
    with reading(engine) as conn:
        assert len(conn.execute(select(annotations.c.id)).all()) == 3


def test_dict_records_and_numeric_ids(engine, project, stored_items):
    records = [{"id": 1, "title": "one", "score": 0.5}, {"id": 2, "title": "two", "score": None}]
    source = MappingSource(records, name="records")
    result = import_source(engine, project="p", source=source, settings=SETTINGS,
                           options=ImportOptions(id_column="id", text_columns=["title"],
                                                 display_columns=["title", "score"]))
    assert result.imported == 2
    stored = stored_items()
    assert stored["1"]["display"] == {"title": "one", "score": "0.5"}
    assert stored["2"]["display"] == {"title": "two", "score": ""}


def test_missing_project_and_bad_options(engine, project, tmp_path):
    path = write(tmp_path, "csv")
    with pytest.raises(Exception, match="no project named 'nope'"):
        import_file(engine, project="nope", path=path, options=options(), settings=SETTINGS)
    with pytest.raises(Exception, match="name at least one text column"):
        import_file(engine, project="p", path=path, options=options(text_columns=[]), settings=SETTINGS)
    with pytest.raises(InputFileError, match="id longer than 512 characters"):
        import_file(engine, project="p", path=write(tmp_path, "csv", [dict(ROWS[0], id="x" * 513)]),
                    options=options(), settings=SETTINGS)


def test_reddit_sg_imports_and_reimport_adds_nothing(engine, shared_datasets, stored_items):
    with writing(engine) as conn:
        store_projects.create_project(conn, name="p", labels=["Advice", "Other"])
    path = shared_datasets / "reddit_sg.csv"
    opts = ImportOptions(id_column="id", text_columns=["title", "selftext"])
    first = import_file(engine, project="p", path=path, options=opts, settings=Settings())
    assert first.summary() == "imported 3,155 items (0 skipped as already present, 0 labels)"
    again = import_file(engine, project="p", path=path, options=opts, settings=Settings())
    assert again.summary() == "imported 0 items (3,155 skipped as already present, 0 labels)"
    stored = stored_items()
    assert len(stored) == 3155
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    sample = frame.sample(50, random_state=1)
    for row in sample.itertuples():
        item = stored[row.id]
        assert item["display"] == {"title": row.title, "selftext": row.selftext}
        assert item["text"] == "\n\n".join(p for p in (row.title, row.selftext) if p.strip())
