"""Export: one row per item with its final label, predictions, formats, atomic writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import insert, update

from labelloop.config import Settings
from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.io import ImportOptions, export_project, import_file
from labelloop.io.export import write_atomically
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import scores as store_scores
from labelloop.store import users as store_users
from labelloop.store.items import project_summary
from labelloop.store.labels import refresh_items
from labelloop.store.schema import annotations, items, model_runs, projects, utcnow

SETTINGS = Settings()


def read_back(path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix == ".jsonl":
        return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])
    return pd.read_parquet(path)


def values(frame, column):
    """A column as a list, missing values as None (pandas reads them as NaN)."""
    return [None if pd.isna(v) else v for v in frame[column]]


def small_project(engine, tmp_path, rows=None):
    """Project 'p' (tags A, B) with five items, a1 labelled A by import."""
    rows = rows or [{"key": f"a{i}", "title": f"title {i}", "body": f"body {i}", "label": ""} for i in range(1, 6)]
    rows[0]["label"] = "A"
    path = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    import_file(engine, project="p", path=path, settings=SETTINGS,
                options=ImportOptions(id_column="key", text_columns=["title", "body"], label_column="label"))
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name="p")
        ids = dict(conn.execute(items.select().with_only_columns(items.c.external_id, items.c.id)).all())
    return proj, ids


def make_conflict(engine, proj, item_id):
    with writing(engine) as conn:
        for name, tag in (("u1", "A"), ("u2", "B")):
            user = store_users.create_user(conn, name=name, role="labeller", password="a long password")
            now = utcnow()
            conn.execute(insert(annotations).values(
                project_id=proj.id, item_id=item_id, user_id=user.id, tag_id=proj.tag_id(tag), source="human",
                created_at=now, updated_at=now))
        refresh_items(conn, item_ids=[item_id])


def add_model(engine, proj, scores):
    """A complete model run (version 3) with predicted tag and confidence per item id."""
    with writing(engine) as conn:
        run_id = conn.execute(insert(model_runs).values(
            project_id=proj.id, version=3, status="complete", model_name="m", strategy="margin",
            created_at=utcnow())).inserted_primary_key[0]
        store_scores.insert_scores(conn, run_id=run_id, item_ids=list(scores), priorities=[0.0] * len(scores),
                                   predicted_tag_ids=[proj.tag_id(t) for t, _ in scores.values()],
                                   confidences=[c for _, c in scores.values()])
        conn.execute(update(projects).where(projects.c.id == proj.id).values(current_run_id=run_id))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_rows_columns_labels_and_conflicts(suffix, engine, project, tmp_path):
    proj, ids = small_project(engine, tmp_path)
    make_conflict(engine, proj, ids["a2"])
    out = tmp_path / f"out{suffix}"
    result = export_project(engine, project="p", path=out, chunk_rows=2)
    assert result.rows == 5 and result.path == out
    frame = read_back(out)
    assert list(frame.columns) == ["key", "title", "body", "label", "label_source"]
    assert list(frame["key"]) == ["a1", "a2", "a3", "a4", "a5"]
    assert list(frame["title"]) == [f"title {i}" for i in range(1, 6)]
    empty = "" if suffix == ".csv" else None
    assert values(frame, "label") == ["A", empty, empty, empty, empty]
    assert values(frame, "label_source") == ["human", "conflict", empty, empty, empty]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_with_predictions_and_min_confidence(engine, project, tmp_path):
    proj, ids = small_project(engine, tmp_path)
    make_conflict(engine, proj, ids["a2"])
    with pytest.raises(NotFoundError, match="project 'p' has no current model yet"):
        export_project(engine, project="p", path=tmp_path / "x.csv", with_predictions=True)
    add_model(engine, proj, {ids["a2"]: ("B", 0.9), ids["a3"]: ("A", 0.8), ids["a4"]: ("B", 0.4)})
    out = tmp_path / "pred.parquet"
    export_project(engine, project="p", path=out, with_predictions=True, min_confidence=0.5)
    frame = read_back(out).set_index("key")
    assert list(frame.columns) == ["title", "body", "label", "label_source", "confidence", "model_version"]
    as_rows = {k: (r.label, r.label_source, r.confidence, r.model_version) for k, r in frame.iterrows()}
    nan_free = {k: tuple(None if pd.isna(v) else v for v in row) for k, row in as_rows.items()}
    assert nan_free == {
        "a1": ("A", "human", None, None),  # human labels win and carry no confidence
        "a2": ("B", "model", 0.9, 3),  # no human final label (a tie): the model's prediction
        "a3": ("A", "model", 0.8, 3),
        "a4": (None, None, 0.4, 3),  # below --min-confidence: no label
        "a5": (None, None, None, None),  # no score in the current run
    }
    csv_out = tmp_path / "pred.csv"
    export_project(engine, project="p", path=csv_out, with_predictions=True)
    rows = read_back(csv_out).set_index("key")
    assert rows.loc["a4", "label"] == "B" and rows.loc["a4", "confidence"] == "0.4"
    assert rows.loc["a1", "confidence"] == "" and rows.loc["a1", "model_version"] == ""


def test_bad_targets_are_clear_errors(engine, project, tmp_path):
    small_project(engine, tmp_path)
    with pytest.raises(InvalidInputError, match="the folder '.*nowhere' does not exist"):
        export_project(engine, project="p", path=tmp_path / "nowhere" / "out.csv")
    with pytest.raises(InvalidInputError, match=r"unknown export format '\.xlsx'; use one of \.csv, \.jsonl, \.parquet"):
        export_project(engine, project="p", path=tmp_path / "out.xlsx")
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        export_project(engine, project="p", path=tmp_path / "out.csv", with_predictions=True, min_confidence=2)
    assert not (tmp_path / "out.xlsx").exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(suffix, tmp_path):
    target = tmp_path / f"out{suffix}"
    target.write_text("previous export")

    def chunks():
        yield [("a1", "t", "A", "human")]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        write_atomically(target, ("id", "title", "label", "label_source"), chunks(), overwrite=True)
    assert target.read_text() == "previous export"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_empty_project_exports_a_header(engine, project, tmp_path):
    out = tmp_path / "empty.parquet"
    assert export_project(engine, project="p", path=out).rows == 0
    assert list(read_back(out).columns) == ["id", "label", "label_source"]


def test_bbc_news_labels_and_round_trip_in_every_format(engine, shared_datasets, tmp_path):
    with writing(engine) as conn:
        store_projects.create_project(conn, name="bbc", labels=["sports", "tech"])
    source = shared_datasets / "bbc_news.csv"
    opts = ImportOptions(id_column="id", text_columns=["title", "body"], label_column="label", add_labels=True)
    result = import_file(engine, project="bbc", path=source, options=opts, settings=SETTINGS)
    assert (result.imported, result.labels) == (2225, 2225)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name="bbc")
        counts = project_summary(conn, project=proj)["labels"]
    assert counts == {"sports": 511, "tech": 401, "business": 510, "politics": 417, "entertainment": 386}
    original = pd.read_csv(source, dtype=str, keep_default_na=False)
    for n, suffix in enumerate([".csv", ".jsonl", ".parquet"]):
        out = tmp_path / f"bbc{suffix}"
        export_project(engine, project="bbc", path=out)
        back = read_back(out)
        assert list(back.columns) == ["id", "title", "body", "label", "label_source"]
        pd.testing.assert_frame_equal(back[["id", "title", "body", "label"]], original, check_dtype=False)
        assert set(back["label_source"]) == {"human"}
        # and the export imports again, labels included, into a fresh project
        name = f"again{n}"
        with writing(engine) as conn:
            store_projects.create_project(conn, name=name, labels=["x"])
        again = import_file(engine, project=name, path=out, options=opts, settings=SETTINGS)
        assert (again.imported, again.labels) == (2225, 2225)
        with reading(engine) as conn:
            assert project_summary(conn, project=store_projects.get_project(conn, name=name))["labels"] == {
                "x": 0, **counts}


def test_a_display_column_named_like_an_export_column_is_a_clear_error(engine, project, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,title,label\n1,a,x\n")
    import_file(engine, project="p", path=path, settings=SETTINGS,
                options=ImportOptions(id_column="id", text_columns=["title"], display_columns=["title", "label"]))
    with pytest.raises(InvalidInputError, match="cannot export project 'p': column name 'label' is used twice"):
        export_project(engine, project="p", path=tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
