"""Final sets read in bulk for training and export (store/labelsets.py)."""
# ruff: noqa: F811  (the fixture `setup` is imported from test_multilabel_labelling)

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from test_multilabel_labelling import A, B, C, add_items, setup  # noqa: F401
from test_multilabel_review import label_all

from labelloop.errors import InvalidInputError
from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.labelsets import (
    item_sets,
    labelled_sets,
    mask_matrix,
    matrix_masks,
    set_snapshot,
)
from labelloop.store.schema import items
from labelloop.store.tags import retire_tag


def test_labelled_sets_snapshot_and_item_sets(setup):
    engine, project, (u0, u1, u2) = setup
    add_items(engine, project, 5, target=2)
    with reading(engine) as conn:
        ids = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
    label_all(engine, project, ids[0], [(u0, ["A", "B"]), (u1, ["A", "B"])])
    label_all(engine, project, ids[1], [(u0, ["C"]), (u1, ["B"])])  # conflict
    label_all(engine, project, ids[2], [(u2, [])])  # one label of two: a final set (none) already
    label_all(engine, project, ids[3], [(u0, ["C"]), (u1, ["C"])])
    with reading(engine) as conn:
        got_ids, got_masks = labelled_sets(conn, project=project)
        snap = set_snapshot(conn, project=project)
        sets = item_sets(conn, project=project)
        some = item_sets(conn, project=project, item_ids=[ids[1], ids[3]])
    assert got_ids.dtype == np.int64 and got_masks.dtype == np.int64
    assert got_ids.tolist() == [ids[0], ids[2], ids[3]] and got_masks.tolist() == [A | B, 0, C]
    assert snap["train_ids"].tolist() == [ids[0], ids[2], ids[3]] and snap["train_masks"].tolist() == [A | B, 0, C]
    assert snap["closed_ids"].tolist() == [ids[0], ids[3]] and snap["audit_ids"].tolist() == []
    assert sets == {ids[0]: (["A", "B"], "human"), ids[1]: (None, "conflict"), ids[2]: ([], "human"),
                    ids[3]: (["C"], "human"), ids[4]: (None, None)}
    assert some == {ids[1]: (None, "conflict"), ids[3]: (["C"], "human")}
    matrix = mask_matrix(got_masks, list(project.tag_bits.values()))
    assert matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert matrix_masks(matrix, list(project.tag_bits.values())).tolist() == [A | B, 0, C]
    with writing(engine) as conn:  # a retired tag's bit is gone from the training sets
        retire_tag(conn, project=project, name="B", user_id=None)
        project = store_projects.get_project(conn, name="ml")
        assert labelled_sets(conn, project=project)[1].tolist() == [A, 0, C]
        single = store_projects.create_project(conn, name="sl", labels=["A"])
        with pytest.raises(InvalidInputError, match="single-label"):
            labelled_sets(conn, project=single)
