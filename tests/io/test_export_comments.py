"""``export --with-comments`` (issue 14), on both databases: each item's comments, flags and skip
reasons in a last column, in CSV, JSONL and Parquet, single- and multi-label; without the flag
the export is as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import insert, select

from labelloop.io import export_project
from labelloop.store import labelling, notes, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _world(engine, *, multi: bool):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=7, multi_label=multi)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="doc", display_columns=["title"])
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"d{i}", "display": {"title": f"=t{i}"}, "text": f"t{i}",
             "rand": rand_key(project.seed, f"d{i}"), "created_at": T0, "updated_at": T0} for i in range(3)])
        project = store_projects.get_project(conn, name="p")
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password").id
        boss = store_users.create_user(conn, name="boss", role="admin", password="a long password").id
        ids = dict(conn.execute(select(items.c.external_id, items.c.id)).all())
        label = {"tags": ["A"]} if multi else {"tag": "A"}
        for ext in ("d0", "d1"):
            queue.try_claim(conn, project=project, user_id=ann, item_id=ids[ext], lease_seconds=60)
        labelling.label_item(conn, project=project, user_id=ann, item_id=ids["d0"], **label)
        notes.add_label_note(conn, project=project, user_id=ann, item_id=ids["d0"], comment="Ünïcode, \"quotes\"\nand a line",
                             unsure=True, now=T0)
        labelling.skip_item(conn, project=project, user_id=ann, item_id=ids["d1"])
        note = notes.add_skip_note(conn, project=project, user_id=ann, item_id=ids["d1"], reason="off-topic", now=T0)
        notes.resolve_note(conn, project=project, note_id=note, user_id=boss, now=T0)
    return project


EXPECTED = {
    "d0": [{"user": "ann", "kind": "unsure", "reason": None, "text": "Ünïcode, \"quotes\"\nand a line",
            "created_at": T0.isoformat(), "resolved_at": None, "resolved_by": None}],
    "d1": [{"user": "ann", "kind": "skip", "reason": "off-topic", "text": None, "created_at": T0.isoformat(),
            "resolved_at": T0.isoformat(), "resolved_by": "boss"}],
    "d2": None,
}


def _comments(path) -> dict[str, object]:
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        cells = {r["doc"]: r["comments"] for r in rows}  # a real list in JSONL
    else:
        frame = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv"
                 else pd.read_parquet(path))
        cells = {d: (json.loads(c) if isinstance(c, str) and c else None) for d, c in zip(frame["doc"], frame["comments"], strict=True)}
    for found in cells.values():  # ids are the database's; the rest is checked exactly
        for note in found or []:
            assert isinstance(note.pop("id"), int)
    return cells


@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_with_comments(engine, tmp_path, multi, suffix):
    _world(engine, multi=multi)
    path = tmp_path / f"out{suffix}"
    result = export_project(engine, project="p", path=path, with_comments=True)
    assert result.rows == 3
    assert _comments(path) == EXPECTED
    if suffix == ".csv":
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",")[-1] == "comments"
        assert "'=t0" in path.read_text(encoding="utf-8")  # formula cells still neutralised


def test_without_the_flag_no_column_and_the_cli_flag(engine, tmp_path, cli):
    _world(engine, multi=False)
    plain = tmp_path / "plain.csv"
    export_project(engine, project="p", path=plain)
    assert "comments" not in pd.read_csv(plain).columns
    out = tmp_path / "cli.parquet"
    result = cli("export", "p", out, "--with-comments")
    assert result.exit_code == 0, result.output
    assert _comments(out) == EXPECTED
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["doc", "title", "label", "label_source", "comments"]


def test_a_display_column_named_comments_is_a_clear_error(engine, tmp_path, cli):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A"], seed=7)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="doc", display_columns=["comments"])
    result = cli("export", "p", tmp_path / "x.csv", "--with-comments")
    assert result.exit_code == 2
    assert "column name 'comments' is used twice" in result.output
    assert not (tmp_path / "x.csv").exists()
    with reading(engine) as conn:
        assert list(store_projects.get_project(conn, name="p").display_columns) == ["comments"]
