"""Tag rename, merge, retire and reactivation on multi-label projects (bit arithmetic in SQL)."""
# ruff: noqa: F811  (the fixture `setup` is imported from test_multilabel_labelling)

from __future__ import annotations

from sqlalchemy import select, update
from test_multilabel_labelling import A, B, C, add_items, item_state, setup  # noqa: F401
from test_multilabel_review import label_all

from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.labels import label_counts
from labelloop.store.schema import annotations, items
from labelloop.store.tags import add_tag, merge_tags, rename_tag, retire_tag


def masks(engine):
    with reading(engine) as conn:
        return conn.execute(select(annotations.c.item_id, annotations.c.tag_mask)
                            .order_by(annotations.c.id)).all()


def test_rename_merge_retire_on_sets(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 3, target=2)
    with reading(engine) as conn:
        one, two, three = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
    label_all(engine, project, one, [(u0, ["A", "B"]), (u1, ["A", "B"])])
    label_all(engine, project, two, [(u0, ["B"]), (u1, ["C"])])  # B and C tie
    label_all(engine, project, three, [(u0, ["C"]), (u1, ["A", "C"])])  # A ties
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == three).values(adjudicated_mask=B))

    with writing(engine) as conn:  # rename keeps the bit: the sets read with the new name
        rename_tag(conn, project=project, old="B", new="Bee", user_id=None)
        project = store_projects.get_project(conn, name="ml")
    assert project.tag_bits == {"A": 0, "Bee": 1, "C": 2}
    assert item_state(engine, one) == (2, A | B, "human", None)

    with writing(engine) as conn:  # merge Bee into C: bit 1 moves to bit 2 everywhere
        counts = merge_tags(conn, project=project, source="Bee", into="C", user_id=None)
        project = store_projects.get_project(conn, name="ml")
        tally = label_counts(conn, project_id=project.id)
    assert counts == {"annotations": 3, "adjudications": 1, "items": 3}
    assert [tuple(r) for r in masks(engine)] == [(one, A | C), (one, A | C), (two, C), (two, C),
                                                 (three, C), (three, A | C)]
    assert project.tag_names == ["A", "C"] and project.tag_bits == {"A": 0, "C": 2}
    assert item_state(engine, one) == (2, A | C, "human", None)
    assert item_state(engine, two) == (2, C, "human", None)  # the B/C tie is now agreement on C
    assert item_state(engine, three) == (2, C, "human", None)  # the adjudication moved too
    assert tally == {project.tag_id("A"): 1, project.tag_id("C"): 3}

    with writing(engine) as conn:  # retire A: its bit is ignored; nothing is reopened
        counts = retire_tag(conn, project=project, name="A", user_id=None)
        project = store_projects.get_project(conn, name="ml")
    assert counts == {"items": 2, "reopened": 0, "adjudications": 0}
    assert item_state(engine, one) == (2, C, "human", None)
    with reading(engine) as conn:
        assert label_counts(conn, project_id=project.id) == {project.tag_id("C"): 3}

    with writing(engine) as conn:  # adding A back: its labels count again
        assert add_tag(conn, project=project, name="A", user_id=None) == "reactivated"
        project = store_projects.get_project(conn, name="ml")
    assert project.tag_bits == {"A": 0, "C": 2}
    assert item_state(engine, one) == (2, A | C, "human", None)
    with writing(engine) as conn:  # a new tag gets the next bit, never a freed one
        add_tag(conn, project=project, name="D", user_id=None)
        assert store_projects.get_project(conn, name="ml").tag_bits == {"A": 0, "C": 2, "D": 3}
