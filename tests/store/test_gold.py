"""Gold items (store/gold.py): marking, serving, answers that are not labels, undo, unmarking;
single- and multi-label projects, both databases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.orchestrator.heldout import read_labels
from labelloop.store import gold, labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.configure import configure_project
from labelloop.store.items import rand_key
from labelloop.store.quality import overlap_labels
from labelloop.store.schema import annotations, assignments, gold_answers, items
from labelloop.store.stats import project_stats

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
A, B, C = 1, 2, 4


def _setup(engine, *, multi: bool = False, n: int = 6, settings=None):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=3, multi_label=multi,
                                                settings={"audit_fraction": 0.0, **(settings or {})})
        users = {name: store_users.create_user(conn, name=name, role=role, password="a long password").id
                 for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))}
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"text {i}",
             "rand": rand_key(project.seed, f"e{i}"), "target_labels": 1, "created_at": T0, "updated_at": T0}
            for i in range(n)
        ])
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).scalars())
    return project, users, ids


def _item(conn, item_id):
    return conn.execute(select(items).where(items.c.id == item_id)).one()


def _serve_gold(engine, project, user_id, *, seed=0):
    with writing(engine) as conn:
        return gold.claim_gold(conn, project=project, user_id=user_id, lease_seconds=60, rng=random.Random(seed))


def test_a_gold_item_leaves_the_queue_and_its_answer_is_its_label(engine):
    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="B", user_id=users["boss"])
    with reading(engine) as conn:
        row = _item(conn, ids[0])
        assert (row.target_labels, row.n_labels, row.label_tag_id, row.label_source) == (0, 0, project.tag_id("B"),
                                                                                          "human")
        open_ids = queue.candidates(conn, project=project, now=T0, limit=100)
        assert ids[0] not in open_ids and len(open_ids) == 5
        assert ids[0] not in queue.candidates(conn, project=project, now=T0, limit=100, audit=True)
        stats = project_stats(conn, project=project, user_id=users["ann"])
        assert (stats["labelled"], stats["remaining"]) == (1, 5)  # not counted as unlabelled
        assert gold.gold_ids(conn, project_ids=[project.id]) == {project.id: frozenset({ids[0]})}
        # training reads the gold answer as the item's label
        labels = read_labels(conn, project=project)
        assert labels.train_ids.tolist() == [ids[0]] and labels.train_tags.tolist() == [project.tag_id("B")]
    with writing(engine) as conn:  # a new overlap setting leaves the gold item's target alone
        configure_project(conn, project=project, values={"overlap_fraction": 1.0, "overlap_k": 3})
    with reading(engine) as conn:
        assert _item(conn, ids[0]).target_labels == 0 and _item(conn, ids[1]).target_labels == 3


def test_a_gold_answer_is_not_a_label_of_the_item(engine):
    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="B", user_id=users["boss"])
    lease = _serve_gold(engine, project, users["ann"])
    assert lease is not None and lease.item_id == ids[0] and not lease.is_audit
    with writing(engine) as conn:
        assert gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], tag="A")
    lease = _serve_gold(engine, project, users["bob"])
    assert lease is not None and lease.item_id == ids[0]
    with writing(engine) as conn:
        assert gold.answer_gold(conn, project=project, user_id=users["bob"], item_id=ids[0], tag="B")
    with reading(engine) as conn:
        row = _item(conn, ids[0])
        assert (row.n_labels, row.label_tag_id) == (0, project.tag_id("B"))  # the gold answer, nothing counted
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 0
        assert overlap_labels(conn, project_id=project.id) == []  # two answers, no agreement pair
        labels = read_labels(conn, project=project)
        assert labels.train_tags.tolist() == [project.tag_id("B")]  # not ann's A
        assert conn.execute(select(assignments.c.state).where(assignments.c.item_id == ids[0])).scalars().all() \
            == ["labelled", "labelled"]
        counts = {c.name: (c.answered, c.correct) for c in gold.answer_counts(conn, project_id=project.id)}
        assert counts == {"ann": (1, 0), "bob": (1, 1)}


def test_gold_is_never_served_twice_and_refusals_read_as_for_any_item(engine):
    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_gold(conn, project=project, values={ids[0]: project.tag_id("A"), ids[1]: project.tag_id("C")},
                       user_id=None)
    with writing(engine) as conn:
        with pytest.raises(ConflictError, match=f"item {ids[0]} is not leased to you"):
            gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], tag="A")
    served = []
    for _ in range(2):
        lease = _serve_gold(engine, project, users["ann"])
        served.append(lease.item_id)
        with writing(engine) as conn:
            with pytest.raises(InvalidInputError, match="unknown tag 'Z'"):
                gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=lease.item_id, tag="Z")
            gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=lease.item_id, tag="A")
        with writing(engine) as conn, pytest.raises(ConflictError, match="you have labelled item .* already"):
            gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=lease.item_id, tag="A")
    assert sorted(served) == ids[:2]
    assert _serve_gold(engine, project, users["ann"]) is None  # seen them all
    # an ordinary item's label goes the usual way (answer_gold says it is not gold)
    with writing(engine) as conn:
        lease = queue.next_item(conn, project=project, user_id=users["ann"], lease_seconds=60)
        assert lease.item_id not in ids[:2]
        assert not gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=lease.item_id, tag="A")


def test_a_live_lease_is_renewed_before_any_gold_draw(engine):
    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="A", user_id=None)
        held = queue.next_item(conn, project=project, user_id=users["ann"], lease_seconds=60)
    assert _serve_gold(engine, project, users["ann"]).item_id == held.item_id


def test_an_expired_gold_lease_is_still_honoured(engine):
    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="A", user_id=None)
        gold.claim_gold(conn, project=project, user_id=users["ann"], lease_seconds=5, rng=random.Random(1),
                        now=T0)
        assert gold.renew_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], lease_seconds=60,
                               now=T0 + timedelta(hours=1)) == T0 + timedelta(hours=1, seconds=60)
        assert gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], tag="A",
                                now=T0 + timedelta(hours=3))


def test_undo_of_a_gold_answer_takes_it_back_and_leases_the_item_again(engine):
    project, users, ids = _setup(engine)
    ann = users["ann"]
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="A", user_id=None)
        ordinary = queue.next_item(conn, project=project, user_id=ann, lease_seconds=60)
        labelling.label_item(conn, project=project, user_id=ann, item_id=ordinary.item_id, tag="B",
                             now=datetime.now(UTC) - timedelta(seconds=5))
    _serve_gold(engine, project, ann)
    with writing(engine) as conn:
        gold.answer_gold(conn, project=project, user_id=ann, item_id=ids[0], tag="C")
        undone = gold.undo_gold(conn, project=project, user_id=ann, lease_seconds=60)
        assert undone.what == "label" and undone.item_id == ids[0] and undone.lease.item_id == ids[0]
        assert conn.execute(select(func.count()).select_from(gold_answers)).scalar_one() == 0
        gold.answer_gold(conn, project=project, user_id=ann, item_id=ids[0], tag="A")  # answered again
        assert [(c.answered, c.correct) for c in gold.answer_counts(conn, project_id=project.id)] == [(1, 1)]
        # a skip of a gold item is undone too
        gold.undo_gold(conn, project=project, user_id=ann, lease_seconds=60)
        assert gold.skip_gold(conn, project=project, user_id=ann, item_id=ids[0])
        undone = gold.undo_gold(conn, project=project, user_id=ann, lease_seconds=60)
        assert undone.what == "skip" and undone.lease.item_id == ids[0]
        gold.skip_gold(conn, project=project, user_id=ann, item_id=ids[0])
    with writing(engine) as conn:
        # the latest act is the gold skip: undone here; then an ordinary label newer than the
        # gold answer is not gold's to undo (None: the usual undo takes it)
        gold.undo_gold(conn, project=project, user_id=ann, lease_seconds=60)
        gold.answer_gold(conn, project=project, user_id=ann, item_id=ids[0], tag="A")
        nxt = queue.next_item(conn, project=project, user_id=ann, lease_seconds=60)
        labelling.label_item(conn, project=project, user_id=ann, item_id=nxt.item_id, tag="A",
                             now=datetime.now(UTC) + timedelta(seconds=5))
        assert gold.undo_gold(conn, project=project, user_id=ann, lease_seconds=60) is None


def test_multi_label_gold_is_judged_on_the_whole_set(engine):
    project, users, ids = _setup(engine, multi=True)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tags=["A", "C"], user_id=None)
        with pytest.raises(InvalidInputError, match="multi-label"):
            gold.mark_item(conn, project=project, item_id=ids[1], tag="A", user_id=None)
    with reading(engine) as conn:
        row = _item(conn, ids[0])
        assert (row.label_mask, row.target_labels, row.n_labels) == (A | C, 0, 0)
    for name, answer in (("ann", ["A", "C"]), ("bob", ["A"])):
        _serve_gold(engine, project, users[name])
        with writing(engine) as conn:
            gold.answer_gold(conn, project=project, user_id=users[name], item_id=ids[0], tags=answer)
    with reading(engine) as conn:
        counts = {c.name: c.correct for c in gold.answer_counts(conn, project_id=project.id)}
        assert counts == {"ann": 1, "bob": 0}
        assert _item(conn, ids[0]).label_mask == A | C
    with writing(engine) as conn:  # a changed gold answer judges the answers again
        gold.mark_item(conn, project=project, item_id=ids[0], tags=["A"], user_id=None)
        assert {c.name: c.correct for c in gold.answer_counts(conn, project_id=project.id)} == {"ann": 0, "bob": 1}


def test_unmarking_gives_the_item_back_to_the_queue(engine):
    project, users, ids = _setup(engine, settings={"overlap_fraction": 0.0})
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tag="A", user_id=None)
    _serve_gold(engine, project, users["ann"])
    with writing(engine) as conn:
        gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], tag="A")
        gold.unmark_gold(conn, project=project, item_id=ids[0], user_id=users["boss"])
        with pytest.raises(NotFoundError, match="not a gold item"):
            gold.unmark_gold(conn, project=project, item_id=ids[0], user_id=users["boss"])
        with pytest.raises(NotFoundError, match="no item 999999"):
            gold.mark_gold(conn, project=project, values={999999: project.tag_id("A")}, user_id=None)
    with reading(engine) as conn:
        row = _item(conn, ids[0])
        assert (row.target_labels, row.label_tag_id, row.adjudicated_tag_id) == (1, None, None)
        assert ids[0] in queue.candidates(conn, project=project, now=T0, limit=100)
        assert gold.answer_counts(conn, project_id=project.id) == []


def test_tag_merge_and_retire_keep_gold_consistent(engine):
    from labelloop.store.tags import merge_tags, retire_tag

    project, users, ids = _setup(engine)
    with writing(engine) as conn:
        gold.mark_gold(conn, project=project, values={ids[0]: project.tag_id("A"), ids[1]: project.tag_id("C")},
                       user_id=None)
    for item_id in ids[:2]:
        lease = _serve_gold(engine, project, users["ann"], seed=item_id)
        with writing(engine) as conn:
            gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=lease.item_id, tag="B")
    with writing(engine) as conn:  # B into A: ann's B on the A item is now right
        merge_tags(conn, project=project, source="B", into="A", user_id=None)
        assert [(c.answered, c.correct) for c in gold.answer_counts(conn, project_id=project.id)] == [(2, 1)]
        project = store_projects.get_project(conn, name="p")
        retire_tag(conn, project=project, name="C", user_id=None)  # the C item is gold no more
    with reading(engine) as conn:
        assert gold.gold_ids(conn, project_ids=[project.id])[project.id] == frozenset({ids[0]})
        assert _item(conn, ids[1]).target_labels == 1 and _item(conn, ids[0]).label_tag_id == project.tag_id("A")
        assert [(c.answered, c.correct) for c in gold.answer_counts(conn, project_id=project.id)] == [(1, 1)]


def test_multi_label_tag_merge_moves_gold_bits(engine):
    from labelloop.store.tags import merge_tags

    project, users, ids = _setup(engine, multi=True)
    with writing(engine) as conn:
        gold.mark_item(conn, project=project, item_id=ids[0], tags=["A", "C"], user_id=None)
    _serve_gold(engine, project, users["ann"])
    with writing(engine) as conn:
        gold.answer_gold(conn, project=project, user_id=users["ann"], item_id=ids[0], tags=["A", "B"])
        assert gold.answer_counts(conn, project_id=project.id)[0].correct == 0
        merge_tags(conn, project=project, source="C", into="B", user_id=None)  # the gold set is now A, B
        assert gold.gold_answer_of(conn, project=project, item_id=ids[0]) == A | B
        assert gold.answer_counts(conn, project_id=project.id)[0].correct == 1
