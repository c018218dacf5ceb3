"""Exporting multi-label projects: sets joined (CSV, JSONL) or as lists (Parquet), round trips,
and the model's probabilities and sets."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from labelloop.config import Settings
from labelloop.errors import InvalidInputError
from labelloop.io import ImportOptions, export_project, import_file
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import item_scores, items, model_runs, projects, utcnow

SETTINGS = Settings()
LEASE = 600


def read_back(path) -> list[dict]:
    """The file's rows as dicts of Python values (None for a missing value in JSONL and Parquet)."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    elif path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    return rows


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in rows}


def as_set(value, suffix):
    """A labels cell read back as a set of tag names (None: no final set)."""
    if suffix == ".parquet":
        return None if value is None else set(value)
    if value in ("", None):
        return None
    return set() if value == "__none__" else set(value.split("|"))


@pytest.fixture
def labelled(engine, tmp_path):
    """Project 'ml' (tags A, B, C): six items; two imported with sets, three labelled by people
    (one of them a conflict), one unlabelled. Returns (what was labelled, external id -> item id)."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=5, multi_label=True)
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="password1").id
                 for i in range(2)]
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"x{i}" for i in range(6)], "title": [f"=title {i}" for i in range(6)],
                  "labels": ["A|C", "__none__", "", "", "", ""]}).to_csv(path, index=False)
    import_file(engine, project="ml", path=path, settings=SETTINGS,
                options=ImportOptions(id_column="id", text_columns=["title"], label_column="labels"))
    with reading(engine) as conn:
        ids = dict(conn.execute(select(items.c.external_id, items.c.id)).all())
    plan = {"x2": [(users[0], ["B", "C"])], "x3": [(users[0], [])], "x4": [(users[0], ["A"]), (users[1], ["B"])]}
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == ids["x4"]).values(target_labels=2))
    for ext, labels in plan.items():
        for user, chosen in labels:
            with writing(engine) as conn:
                assert queue.claim_from(conn, project=project, user_id=user, item_ids=[ids[ext]],
                                        lease_seconds=LEASE).lease is not None
                labelling.label_item(conn, project=project, user_id=user, item_id=ids[ext], tags=chosen)
    expected = {"x0": ({"A", "C"}, "human"), "x1": (set(), "human"), "x2": ({"B", "C"}, "human"),
                "x3": (set(), "human"), "x4": (None, "conflict"), "x5": (None, None)}
    return expected, ids


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip_equals_what_was_labelled(engine, labelled, tmp_path, suffix):
    expected, _ = labelled
    out = tmp_path / f"out{suffix}"
    assert export_project(engine, project="ml", path=out, chunk_rows=4).rows == 6
    rows = read_back(out)
    assert list(rows[0]) == ["id", "title", "labels", "label_source"]
    got = {r["id"]: (as_set(r["labels"], suffix), r["label_source"] or None) for r in rows}
    assert got == expected
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        assert str(pq.read_schema(out).field("labels").type) == "list<element: string>"
        assert by_id(rows)["x1"]["labels"] == []  # none applies: an empty list
    # The file imports back into a new project as the same sets (lists, in Parquet).
    with writing(engine) as conn:
        store_projects.create_project(conn, name="again", labels=["A", "B", "C"], multi_label=True)
    import_file(engine, project="again", path=out, settings=SETTINGS,
                options=ImportOptions(id_column="id", text_columns=["title"], label_column="labels"))
    with reading(engine) as conn:
        again = store_projects.get_project(conn, name="again")
        rows = conn.execute(select(items.c.external_id, items.c.label_mask)
                            .where(items.c.project_id == again.id)).all()
    from labelloop.store.tagsets import names_of

    reimported = {ext: None if mask is None else set(names_of(again, mask)) for ext, mask in rows}
    assert reimported == {k: (v if s == "human" else None) for k, (v, s) in expected.items()}


def test_another_separator_and_the_errors(engine, labelled, tmp_path):
    out = tmp_path / "semi.csv"
    export_project(engine, project="ml", path=out, label_separator=";", none_value="NONE")
    rows = by_id(read_back(out))
    assert rows["x0"]["labels"] == "A;C" and rows["x1"]["labels"] == "NONE"
    assert rows["x0"]["title"] == "'=title 0"  # formulas neutralised as for single-label exports
    with pytest.raises(InvalidInputError, match="must be a word without the separator"):
        export_project(engine, project="ml", path=tmp_path / "bad.csv", none_value="a;b", label_separator=";")
    with writing(engine) as conn:
        store_projects.create_project(conn, name="sl", labels=["A"])
        store_projects.create_project(conn, name="pipes", labels=["A|B", "C"], multi_label=True)
    with pytest.raises(InvalidInputError, match="apply to multi-label projects; project 'sl' is single-label"):
        export_project(engine, project="sl", path=tmp_path / "sl.csv", label_separator=";")
    with pytest.raises(InvalidInputError, match="tag 'A\\|B' contains the separator '\\|'"):
        export_project(engine, project="pipes", path=tmp_path / "pipes.csv")
    assert not (tmp_path / "pipes.csv").exists() and not (tmp_path / "sl.csv").exists()


def add_set_model(engine, ids, rows):
    """A complete multi-label run (version 2) over tags A, B, C with these score rows:
    external id -> (predicted mask, confidence, probabilities)."""
    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="ml")
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=2, status="complete", model_name="m", strategy="max_uncertainty",
            metrics={"multi_label": True, "tags": ["A", "B", "C"], "bits": [0, 1, 2]},
            created_at=utcnow())).inserted_primary_key[0]
        conn.execute(insert(item_scores), [
            {"run_id": run_id, "item_id": ids[ext], "priority": 0.0, "predicted_mask": mask, "confidence": conf,
             "proba": np.asarray(p, dtype="<f4").tobytes()}
            for ext, (mask, conf, p) in rows.items()
        ])
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_with_predictions(engine, labelled, tmp_path, suffix):
    _, ids = labelled
    add_set_model(engine, ids, {"x4": (0b011, 0.5, [0.75, 0.625, 0.25]), "x5": (0, 0.25, [0.125, 0.25, 0.375])})
    out = tmp_path / f"pred{suffix}"
    export_project(engine, project="ml", path=out, with_predictions=True)
    rows = by_id(read_back(out))
    assert list(rows["x0"]) == ["id", "title", "labels", "label_source", "p_A", "p_B", "p_C", "predicted_labels",
                                "confidence", "model_version"]
    x4, x5, x0 = rows["x4"], rows["x5"], rows["x0"]
    if suffix == ".csv":
        assert (x4["p_A"], x4["p_B"], x4["p_C"], x4["predicted_labels"]) == ("0.75", "0.625", "0.25", "A|B")
        assert (x5["predicted_labels"], x5["model_version"]) == ("__none__", "2")
        assert (x0["p_A"], x0["predicted_labels"], x0["labels"]) == ("", "", "A|C")
    else:
        assert (x4["p_A"], x4["p_B"], x4["p_C"], x4["predicted_labels"]) == (0.75, 0.625, 0.25, ["A", "B"])
        assert (x5["predicted_labels"], x5["model_version"]) == ([], 2)
        assert x0["p_A"] is None and x0["predicted_labels"] is None
    below = tmp_path / f"floor{suffix}"
    export_project(engine, project="ml", path=below, with_predictions=True, min_confidence=0.4)
    floor = by_id(read_back(below))
    assert floor["x5"]["predicted_labels"] in ("", None)  # below the floor: no set, p_ kept
    assert floor["x5"]["p_C"] in ("0.375", 0.375)
    with writing(engine) as conn:  # a renamed tag keeps its probabilities (matched by bit)
        from labelloop.store.tags import rename_tag

        rename_tag(conn, project=store_projects.get_project(conn, name="ml"), old="B", new="Bee", user_id=None)
    renamed = tmp_path / f"renamed{suffix}"
    export_project(engine, project="ml", path=renamed, with_predictions=True)
    assert by_id(read_back(renamed))["x4"]["p_Bee"] in ("0.625", 0.625)
