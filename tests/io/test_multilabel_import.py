"""Importing multi-label projects: tag sets in one cell, "none", unknown tags with line numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from labelloop.config import Settings
from labelloop.errors import InputFileError, InvalidInputError
from labelloop.io import ImportOptions, MappingSource, import_file, import_source
from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.schema import annotations, items

SETTINGS = Settings()
A, B, C = 1, 2, 4


@pytest.fixture
def ml(engine):
    with writing(engine) as conn:
        return store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=7, multi_label=True)


def write_csv(tmp_path, labels, name="in.csv", start=0):
    path = tmp_path / name
    pd.DataFrame({"id": [f"x{start + i}" for i in range(len(labels))],
                  "text": [f"text {start + i}" for i in range(len(labels))], "labels": labels}).to_csv(path, index=False)
    return path


def options(**kwargs):
    return ImportOptions(id_column="id", text_columns=["text"], label_column="labels", **kwargs)


def stored(engine):
    with reading(engine) as conn:
        rows = conn.execute(select(items.c.external_id, items.c.n_labels, items.c.target_labels, items.c.label_mask,
                                   items.c.label_source, items.c.label_tag_id).order_by(items.c.id)).all()
        notes = conn.execute(select(annotations.c.item_id, annotations.c.tag_mask, annotations.c.tag_id,
                                    annotations.c.source, annotations.c.user_id).order_by(annotations.c.id)).all()
    return {r.external_id: tuple(r)[1:] for r in rows}, [tuple(n)[1:] for n in notes]


def test_sets_none_and_empty_cells(engine, ml, tmp_path):
    path = write_csv(tmp_path, ["A|B", "", "__none__", "C", " B | A ", "A||C"])
    result = import_file(engine, project="ml", path=path, settings=SETTINGS, options=options())
    assert (result.imported, result.labels) == (6, 5)
    rows, notes = stored(engine)
    assert rows == {
        "x0": (1, 1, A | B, "human", None), "x1": (0, 1, None, None, None), "x2": (1, 1, 0, "human", None),
        "x3": (1, 1, C, "human", None), "x4": (1, 1, A | B, "human", None), "x5": (1, 1, A | C, "human", None),
    }
    assert notes == [(A | B, None, "import", None), (0, None, "import", None), (C, None, "import", None),
                     (A | B, None, "import", None), (A | C, None, "import", None)]
    # A second import into the project (PostgreSQL: through the staging table this time).
    more = write_csv(tmp_path, ["C|A", "", "__none__"], name="more.csv", start=10)
    import_file(engine, project="ml", path=more, settings=SETTINGS, options=options())
    rows, _ = stored(engine)
    assert (rows["x10"], rows["x11"], rows["x12"]) == ((1, 1, A | C, "human", None), (0, 1, None, None, None),
                                                       (1, 1, 0, "human", None))


def test_another_separator_and_none_value(engine, ml, tmp_path):
    path = write_csv(tmp_path, ["A; C", "NONE", ""])
    import_file(engine, project="ml", path=path, settings=SETTINGS,
                options=options(label_separator=";", none_value="NONE"))
    rows, _ = stored(engine)
    assert [r[2] for r in rows.values()] == [A | C, 0, None]


@pytest.mark.parametrize(
    ("labels", "line", "problem"),
    [
        (["A", "B|Z"], 3, "unknown tag 'Z'; project 'ml' has: A, B, C (use --add-labels to add new tags)"),
        (["A|B", "C", "Q|A"], 4, "unknown tag 'Q'"),
        (["|"], 2, "no tag in '|': leave the cell empty for an unlabelled item, or write '__none__'"),
        (["A", "__none__|A"], 3, "'__none__' (no tag applies) cannot go with tags"),
    ],
)
def test_bad_cells_name_the_line_and_change_nothing(engine, ml, tmp_path, db_snapshot, labels, line, problem):
    before = db_snapshot()
    path = write_csv(tmp_path, labels)
    with pytest.raises(InputFileError) as raised:
        import_file(engine, project="ml", path=path, settings=SETTINGS, options=options())
    assert raised.value.line == line and raised.value.field == "labels"
    assert problem in str(raised.value)
    assert db_snapshot() == before


def test_a_retired_tag_is_an_error(engine, ml, tmp_path):
    from labelloop.store.tags import retire_tag

    with writing(engine) as conn:
        retire_tag(conn, project=ml, name="B", user_id=None)
    with pytest.raises(InputFileError, match="line 2, field 'labels': tag 'B' is retired"):
        import_file(engine, project="ml", path=write_csv(tmp_path, ["A|B"]), settings=SETTINGS, options=options())


def test_add_labels_gives_new_tags_new_bits(engine, ml, tmp_path):
    path = write_csv(tmp_path, ["A|New", "Other|New", "__none__"])
    result = import_file(engine, project="ml", path=path, settings=SETTINGS, options=options(add_labels=True))
    assert result.new_tags == ("New", "Other")
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="ml")
    assert project.tag_bits == {"A": 0, "B": 1, "C": 2, "New": 3, "Other": 4}
    rows, _ = stored(engine)
    assert [r[2] for r in rows.values()] == [A | 8, 16 | 8, 0]


def test_add_labels_stops_at_63_tags(engine, tmp_path, db_snapshot):
    with writing(engine) as conn:
        store_projects.create_project(conn, name="ml", labels=[f"t{i}" for i in range(62)], multi_label=True)
    before = db_snapshot()
    path = write_csv(tmp_path, ["t0|extra1", "extra2"])
    with pytest.raises(InputFileError, match="line 3, field 'labels': cannot add tag: a multi-label project has at "
                                             "most 63 tags"):
        import_file(engine, project="ml", path=path, settings=SETTINGS, options=options(add_labels=True))
    assert db_snapshot() == before


def test_separator_options_are_refused_for_a_single_label_project(engine, tmp_path, db_snapshot):
    with writing(engine) as conn:
        store_projects.create_project(conn, name="sl", labels=["A", "B"])
    before = db_snapshot()
    with pytest.raises(InvalidInputError, match="apply to multi-label projects; project 'sl' is single-label"):
        import_source(engine, project="sl", source=MappingSource([{"id": "1", "text": "t", "labels": "A|B"}]),
                      options=options(label_separator="|"), settings=SETTINGS)
    # Without them a single-label cell with a "|" is one (unknown) tag, as before.
    with pytest.raises(InputFileError, match="unknown tag 'A\\|B'"):
        import_source(engine, project="sl", source=MappingSource([{"id": "1", "text": "t", "labels": "A|B"}]),
                      options=options(), settings=SETTINGS)
    assert db_snapshot() == before


@pytest.mark.parametrize(("kwargs", "words"), [({"label_separator": ""}, "--label-separator must not be empty"),
                                                ({"none_value": " x"}, "--none-value must be a non-empty word"),
                                                ({"none_value": "a|b"}, "contains the separator")])
def test_bad_separator_options(kwargs, words):
    if "none_value" in kwargs and "|" in kwargs["none_value"]:
        kwargs = {**kwargs, "label_separator": "|"}
    with pytest.raises(InvalidInputError, match=words):
        options(**kwargs).checked()


def test_lists_in_json_and_parquet(engine, ml, tmp_path, db_snapshot):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.jsonl"
    records = [{"id": "j0", "text": "a", "labels": ["A", "C"]}, {"id": "j1", "text": "b", "labels": []},
               {"id": "j2", "text": "c", "labels": None}, {"id": "j3", "text": "d", "labels": "B|A"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_file(engine, project="ml", path=path, settings=SETTINGS, options=options())
    table = pa.table({"id": ["p0", "p1"], "text": ["e", "f"],
                      "labels": pa.array([["B"], []], type=pa.list_(pa.string()))})
    pq.write_table(table, tmp_path / "in.parquet")
    import_file(engine, project="ml", path=tmp_path / "in.parquet", settings=SETTINGS, options=options())
    rows, _ = stored(engine)
    assert {k: v[2] for k, v in rows.items()} == {"j0": A | C, "j1": 0, "j2": None, "j3": A | B, "p0": B, "p1": 0}
    with writing(engine) as conn:
        store_projects.create_project(conn, name="sl", labels=["A"])
    before = db_snapshot()
    for bad, words in [({"id": "k0", "text": ["x"], "labels": "A"}, "field 'text': a nested list value"),
                       ({"id": "k0", "text": "x", "labels": ["A", "Z"]}, "field 'labels': unknown tag 'Z'"),
                       ({"id": "k0", "text": "x", "labels": ["A", " "]}, "an empty tag name in the list")]:
        path.write_text(json.dumps(bad) + "\n")
        with pytest.raises(InputFileError, match=words):
            import_file(engine, project="ml", path=path, settings=SETTINGS, options=options())
    path.write_text(json.dumps({"id": "k0", "text": "x", "labels": ["A"]}) + "\n")
    with pytest.raises(InputFileError, match="line 1, field 'labels': a nested list value"):
        import_file(engine, project="sl", path=path, settings=SETTINGS, options=options())
    assert db_snapshot() == before
