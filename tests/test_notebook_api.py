"""The notebook API (labelloop.open_project / create_project) on both databases."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import insert, select, update

import labelloop
from labelloop.errors import AlreadyExistsError, InputFileError, NotFoundError
from labelloop.store import writing
from labelloop.store import scores as store_scores
from labelloop.store.schema import items, model_runs, projects, utcnow


@pytest.fixture
def frame():
    return pd.DataFrame({
        "doc_id": [101, 102, 103, 104],
        "subject": ["Refund please", "App crashes", "Love it", None],
        "message": ["I was charged twice", "On start-up", "", "empty subject"],
        "topic": ["billing", "bug", None, "bug"],
    })


def test_create_add_items_labels_status_and_dataframe(db_url, frame):
    p = labelloop.create_project("tickets", labels=["billing", "bug"], db=db_url, seed=3)
    try:
        result = p.add_items(frame, id_column="doc_id", text_columns=["subject", "message"], label_column="topic")
        assert (result.imported, result.skipped, result.labels) == (4, 0, 3)
        status = p.status()
        assert (status["items"], status["labelled"], status["labels"]) == (4, 3, {"billing": 1, "bug": 2})
        labels = p.labels()
        assert list(labels.columns) == ["doc_id", "label", "label_source"]
        assert labels.values.tolist() == [["101", "billing", "human"], ["102", "bug", "human"],
                                          ["104", "bug", "human"]]
        whole = p.to_dataframe()
        assert list(whole.columns) == ["doc_id", "subject", "message", "label", "label_source"]
        assert whole["doc_id"].tolist() == ["101", "102", "103", "104"]
        assert whole.loc[3, "subject"] == "" and whole.loc[0, "message"] == "I was charged twice"
        assert whole["label"].isna().tolist() == [False, False, True, False]
        again = p.add_items(frame, id_column="doc_id", text_columns="subject")
        assert (again.imported, again.skipped) == (0, 4)
    finally:
        p.close()


def test_open_project_and_records_and_predictions(db_url, tmp_path):
    with pytest.raises(NotFoundError, match="no project named 'nope'"):
        labelloop.open_project("nope", db=db_url)
    labelloop.create_project("p", labels=["A", "B"], db=db_url).close()
    with pytest.raises(AlreadyExistsError):
        labelloop.create_project("p", labels=["A"], db=db_url)
    p = labelloop.open_project("p", db=db_url)
    try:
        records = [{"id": "x", "text": "first"}, {"id": "y", "text": "second"}]
        assert p.add_items(records, id_column="id", text_columns=["text"]).imported == 2
        with pytest.raises(InputFileError, match=r"^records, line 2, field 'id': duplicate id 'x': also on line 1$"):
            p.add_items([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}], id_column="id", text_columns="text")
        with pytest.raises(NotFoundError, match="no current model"):
            p.to_dataframe(with_predictions=True)
        info = p.info()
        with writing(p.engine) as conn:
            run = conn.execute(insert(model_runs).values(
                project_id=info.id, version=1, status="complete", model_name="m", strategy="margin",
                created_at=utcnow())).inserted_primary_key[0]
            item_ids = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
            store_scores.insert_scores(conn, run_id=run, item_ids=[item_ids[0]], priorities=[0.0],
                                       predicted_tag_ids=[info.tag_id("B")], confidences=[0.7])
            conn.execute(update(projects).where(projects.c.id == info.id).values(current_run_id=run))
        predicted = p.to_dataframe(with_predictions=True)
        assert predicted[["id", "label", "label_source", "confidence", "model_version"]].iloc[0].tolist() == [
            "x", "B", "model", 0.7, 1]
        assert predicted["label"].isna().tolist() == [False, True]
        out = p.export(tmp_path / "p.csv", with_predictions=True)
        assert out.rows == 2 and pd.read_csv(out.path)["label_source"].tolist()[0] == "model"
        csv_path = tmp_path / "more.csv"
        csv_path.write_text("id,text\nz,third\n")
        assert p.add_items(csv_path, id_column="id", text_columns="text").imported == 1
        assert p.status()["items"] == 3
    finally:
        p.close()


def test_bad_dataframe_is_rejected_whole(db_url):
    p = labelloop.create_project("p", labels=["A"], db=db_url)
    try:
        bad = pd.DataFrame({"id": ["a", "b", "c"], "text": ["ok", "ok", "x"], "label": ["A", "A", "Z"]})
        with pytest.raises(InputFileError, match=r"^DataFrame, line 3, field 'label': unknown tag 'Z'"):
            p.add_items(bad, id_column="id", text_columns="text", label_column="label")
        assert p.status()["items"] == 0 and p.tags == ["A"]
        with pytest.raises(InputFileError, match="no text column 'body'; available columns: id, text, label"):
            p.add_items(bad, id_column="id", text_columns="body")
    finally:
        p.close()
