"""Bulk labelling (store/bulklabels.py): apply, undo, the final-label rule, training, audit,
agreement, export and tag changes, on single- and multi-label projects and both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.io.export import export_rows, plan_export
from labelloop.orchestrator.heldout import read_labels
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import bulklabels as bulk
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.browse import audit_entries
from labelloop.store.configure import configure_project
from labelloop.store.items import rand_key
from labelloop.store.quality import overlap_labels
from labelloop.store.schema import annotations, assignments, bulk_ops, items
from labelloop.store.tags import merge_tags, retire_tag

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
A, B, C = 1, 2, 4


def _setup(engine, *, multi: bool, n: int = 6, target: int = 1):
    name = "ml" if multi else "p"
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name=name, labels=["A", "B", "C"], seed=3, multi_label=multi)
        other = store_projects.create_project(conn, name="other", labels=["A"], seed=1)
        admin = store_users.create_user(conn, name="boss", role="admin", password="a long password").id
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password").id
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password").id
        for proj, count in ((project, n), (other, 2)):
            conn.execute(insert(items), [
                {"project_id": proj.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"text {i}",
                 "rand": rand_key(proj.seed, f"e{i}"), "target_labels": target, "created_at": T0, "updated_at": T0}
                for i in range(count)
            ])
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).scalars())
        foreign = list(conn.execute(select(items.c.id).where(items.c.project_id == other.id)).scalars())
    return project, {"admin": admin, "ann": ann, "bob": bob}, ids, foreign


@pytest.fixture
def single(engine):
    return (engine, *_setup(engine, multi=False))


@pytest.fixture
def multi(engine):
    return (engine, *_setup(engine, multi=True))


def fresh(engine, name):
    with reading(engine) as conn:
        return store_projects.get_project(conn, name=name)


def give(engine, name, user, item_id, **label):
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name=name)
        lease = queue.try_claim(conn, project=proj, user_id=user, item_id=item_id, lease_seconds=600)
        assert isinstance(lease, queue.Lease), lease
        labelling.label_item(conn, project=proj, user_id=user, item_id=item_id, **label)


def state(engine, item_id):
    """(n_labels, final tag name or set mask, label_source)."""
    with reading(engine) as conn:
        row = conn.execute(select(items.c.project_id, items.c.n_labels, items.c.label_tag_id, items.c.label_mask,
                                  items.c.label_source).where(items.c.id == item_id)).one()
        proj = store_projects.get_project_by_id(conn, project_id=row.project_id)
    if proj.multi_label:
        return row.n_labels, row.label_mask, row.label_source
    names = {t.id: t.name for t in proj.tags}
    return row.n_labels, names.get(row.label_tag_id), row.label_source


def apply(engine, name, user, tag, ids, action="add"):
    with writing(engine) as conn:
        return bulk.apply_bulk(conn, project=store_projects.get_project(conn, name=name), tag=tag, item_ids=ids,
                               action=action, user_id=user)


def undo(engine, name, user, bulk_id):
    with writing(engine) as conn:
        return bulk.undo_bulk(conn, project=store_projects.get_project(conn, name=name), bulk_id=bulk_id,
                              user_id=user)


def test_apply_and_undo_single_label(single):
    engine, project, who, ids, _ = single
    give(engine, "p", who["ann"], ids[0], tag="A")
    first = apply(engine, "p", who["admin"], "B", ids[:3])
    assert first == {"bulk_id": first["bulk_id"], "tag": "B", "action": "add", "items": 3, "changed": 2, "human": 1}
    assert state(engine, ids[0]) == (1, "A", "human")  # a human label wins
    assert state(engine, ids[1]) == (0, "B", "bulk")  # n_labels untouched: still in the queue
    assert state(engine, ids[2]) == (0, "B", "bulk")
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 1  # no annotation
        assert bulk.bulk_ids_of(conn, item_ids=ids) == {ids[0]: first["bulk_id"], ids[1]: first["bulk_id"],
                                                        ids[2]: first["bulk_id"]}
    second = apply(engine, "p", who["admin"], "C", ids[2:4])
    assert second["bulk_id"] > first["bulk_id"] and second["changed"] == 2
    assert state(engine, ids[2]) == (0, "C", "bulk") and state(engine, ids[3]) == (0, "C", "bulk")

    assert undo(engine, "p", who["admin"], first["bulk_id"]) == {"bulk_id": first["bulk_id"], "items": 3,
                                                                 "changed": 1}
    assert state(engine, ids[0]) == (1, "A", "human")
    assert state(engine, ids[1]) == (0, None, None)  # back to unlabelled
    assert state(engine, ids[2]) == (0, "C", "bulk")  # the later operation still holds
    undo(engine, "p", who["admin"], second["bulk_id"])
    assert [state(engine, i) for i in ids[1:]] == [(0, None, None)] * 5

    with pytest.raises(ConflictError, match=f"bulk operation {first['bulk_id']} was undone already"):
        undo(engine, "p", who["admin"], first["bulk_id"])
    with pytest.raises(NotFoundError, match="no bulk operation 999 in project 'p'"):
        undo(engine, "p", who["admin"], 999)
    with reading(engine) as conn:
        ops = bulk.list_bulk(conn, project=project)
        log = audit_entries(conn, project_id=project.id, limit=10)
    assert [(o.id, o.tag, o.n_items, o.user, o.undone_by) for o in ops] == [
        (second["bulk_id"], "C", 2, "boss", "boss"), (first["bulk_id"], "B", 3, "boss", "boss")]
    assert all(o.undone_at is not None for o in ops)
    assert [e["action"] for e in log][:4] == ["bulk.undo", "bulk.undo", "bulk.apply", "bulk.apply"]


def test_human_label_wins_and_the_bulk_label_returns_after_its_undo(single):
    engine, _project, who, ids, _ = single
    apply(engine, "p", who["admin"], "A", ids[:2])
    give(engine, "p", who["ann"], ids[0], tag="C")
    assert state(engine, ids[0]) == (1, "C", "human")
    with writing(engine) as conn:  # the labeller takes their label back: the bulk label shows again
        labelling.undo_last(conn, project=fresh(engine, "p"), user_id=who["ann"], lease_seconds=600)
    assert state(engine, ids[0]) == (0, "A", "bulk")


def test_refusals_change_nothing(single):
    engine, project, who, ids, foreign = single
    cases = [
        (dict(tag="Z", ids=ids[:1]), "unknown tag 'Z' in project 'p': use one of 'A', 'B', 'C'"),
        (dict(tag="A", ids=[]), "give at least one item id"),
        (dict(tag="A", ids=[ids[0], foreign[0]]), f"1 item id\\(s\\) are not items of project 'p': {foreign[0]}"),
        (dict(tag="A", ids=[10**9]), "are not items of project 'p': 1000000000"),
        (dict(tag="A", ids=["x"]), "item ids must be positive integers"),
        (dict(tag="A", ids=[True]), "item ids must be positive integers"),
        (dict(tag="A", ids=list(range(1, bulk.MAX_ITEMS + 2))), "too many items: 10001; .* at most 10000"),
        (dict(tag="A", ids=ids[:1], action="remove"), "'remove' is for multi-label projects only"),
        (dict(tag="A", ids=ids[:1], action="zap"), "unknown action 'zap'"),
    ]
    for case, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            apply(engine, "p", who["admin"], case["tag"], case["ids"], case.get("action", "add"))
    with writing(engine) as conn:
        retire_tag(conn, project=project, name="C", user_id=None)
    with pytest.raises(InvalidInputError, match="retired tag 'C'"):
        apply(engine, "p", who["admin"], "C", ids[:1])
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(bulk_ops)).scalar_one() == 0
    assert [state(engine, i) for i in ids] == [(0, None, None)] * 6


def test_multi_label_add_remove_and_undo(multi):
    engine, _project, who, ids, _ = multi
    one, two, three, four = ids[:4]
    add_a = apply(engine, "ml", who["admin"], "A", [one, two])
    add_b = apply(engine, "ml", who["admin"], "B", [two])
    rem_a = apply(engine, "ml", who["admin"], "A", [two, three], action="remove")
    assert rem_a["changed"] == 1  # item three had no set: removing from nothing leaves nothing
    assert state(engine, one) == (0, A, "bulk")
    assert state(engine, two) == (0, B, "bulk")
    assert state(engine, three) == (0, None, None)
    give(engine, "ml", who["ann"], four, tags=["C"])
    apply(engine, "ml", who["admin"], "A", [four])
    assert state(engine, four) == (1, C, "human")  # the human set wins
    undo(engine, "ml", who["admin"], rem_a["bulk_id"])
    assert state(engine, two) == (0, A | B, "bulk")
    undo(engine, "ml", who["admin"], add_a["bulk_id"])
    assert state(engine, one) == (0, None, None) and state(engine, two) == (0, B, "bulk")
    undo(engine, "ml", who["admin"], add_b["bulk_id"])
    assert state(engine, two) == (0, None, None)


def test_training_uses_bulk_labels_unless_the_setting_is_off_and_the_audit_never(single):
    engine, project, who, ids, _ = single
    give(engine, "p", who["ann"], ids[0], tag="A")
    applied = apply(engine, "p", who["admin"], "B", ids[1:4])
    with reading(engine) as conn:
        labels = read_labels(conn, project=fresh(engine, "p"))
        assert conn.execute(select(func.count()).where(annotations.c.is_audit.is_(True))).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(assignments)).scalar_one() == 1
    b = project.tag_id("B")
    assert labels.train_ids.tolist() == ids[:4]
    assert labels.train_tags.tolist() == [project.tag_id("A"), b, b, b]
    assert labels.human_labels == 1  # round_due counts human labels only
    assert not np.isin(labels.audit_ids, ids[1:4]).any()
    with writing(engine) as conn:
        done = configure_project(conn, project=fresh(engine, "p"), values={"bulk_training": False})
    assert done.changes == {"bulk_training": (True, False)}
    with reading(engine) as conn:
        assert read_labels(conn, project=fresh(engine, "p")).train_ids.tolist() == ids[:1]
    with pytest.raises(InvalidInputError, match="bulk_training must be true or false"):
        with writing(engine) as conn:
            configure_project(conn, project=fresh(engine, "p"), values={"bulk_training": "yes"})
    undo(engine, "p", who["admin"], applied["bulk_id"])
    with writing(engine) as conn:
        configure_project(conn, project=fresh(engine, "p"), values={"bulk_training": True})
        assert read_labels(conn, project=fresh(engine, "p")).train_ids.tolist() == ids[:1]


def test_agreement_ignores_bulk_labels(engine):
    project, who, ids, _ = _setup(engine, multi=False, target=2)
    give(engine, "p", who["ann"], ids[0], tag="A")
    apply(engine, "p", who["admin"], "B", ids[:2])
    with reading(engine) as conn:
        assert overlap_labels(conn, project_id=project.id) == []  # one human label: no overlap
    give(engine, "p", who["bob"], ids[0], tag="A")
    with reading(engine) as conn:
        assert [(i, t) for i, _n, t in overlap_labels(conn, project_id=project.id)] == [
            (ids[0], project.tag_id("A"))] * 2
    assert state(engine, ids[0]) == (2, "A", "human")


def test_export_writes_bulk_labels_with_their_source(single):
    engine, _project, who, ids, _ = single
    apply(engine, "p", who["admin"], "B", ids[:2])
    with reading(engine) as conn:
        rows = [r for chunk in export_rows(conn, plan_export(conn, project=fresh(engine, "p"))) for r in chunk]
    assert [(r[0], r[-2], r[-1]) for r in rows[:3]] == [("e0", "B", "bulk"), ("e1", "B", "bulk"), ("e2", None, None)]


def test_export_of_sets(multi):
    engine, _project, who, ids, _ = multi
    apply(engine, "ml", who["admin"], "C", ids[:1])
    apply(engine, "ml", who["admin"], "A", ids[:1])
    with reading(engine) as conn:
        rows = [r for chunk in export_rows(conn, plan_export(conn, project=fresh(engine, "ml"))) for r in chunk]
    assert (rows[0][0], rows[0][-2], rows[0][-1]) == ("e0", ["A", "C"], "bulk")
    assert rows[1][-2:] == (None, None)


def test_tag_merge_and_retire_carry_bulk_labels(single):
    engine, project, who, ids, _ = single
    applied = apply(engine, "p", who["admin"], "B", ids[:2])
    with writing(engine) as conn:
        merge_tags(conn, project=project, source="B", into="C", user_id=None)
    assert state(engine, ids[0]) == (0, "C", "bulk")
    with writing(engine) as conn:
        retire_tag(conn, project=fresh(engine, "p"), name="C", user_id=None)
    assert state(engine, ids[0]) == (0, None, None)  # a retired tag's bulk label no longer counts
    undo(engine, "p", who["admin"], applied["bulk_id"])
    assert state(engine, ids[1]) == (0, None, None)
