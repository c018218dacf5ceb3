"""Multi-label labelling: sets as masks, the per-tag majority, undo, the wrong shape refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from labelloop.errors import ConflictError, InvalidInputError
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import final_set, label_counts, refresh_items, tied_mask
from labelloop.store.schema import annotations, assignments, items

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 600
A, B, C = 1, 2, 4


@pytest.mark.parametrize(
    ("masks", "adjudicated", "expected"),
    [
        ([], None, (None, None)),
        ([0], None, (0, "human")),  # labelled: none applies
        ([A | B], None, (A | B, "human")),
        ([A | B, A, A | C], None, (A, "human")),  # A 3/3 in, B and C 1/3 out
        ([A | B, A | B, C], None, (A | B, "human")),
        ([A | B, A], None, (None, "conflict")),  # B tied 1/2
        ([A, B], None, (None, "conflict")),
        ([A, B], A | C, (A | C, "human")),  # the adjudicated set wins
        ([A | 8, A | 8], None, (A, "human")),  # bit 3 is retired (not active): dropped
        ([8, 8], None, (0, "human")),  # every bit retired: still labelled, with none
        ([A | 8], 8 | B, (B, "human")),
    ],
)
def test_final_set_rule(masks, adjudicated, expected):
    assert final_set(masks, adjudicated, A | B | C) == expected


def test_tied_tags():
    assert tied_mask([A | B, A], A | B | C) == B
    assert tied_mask([A | B, C], A | B | C) == A | B | C
    assert tied_mask([A, A, B], A | B | C) == 0
    assert tied_mask([], A | B) == 0


def add_items(engine, project, n, *, target=1):
    with writing(engine) as conn:
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"text {i}",
             "rand": rand_key(project.seed, f"e{i}"), "target_labels": target, "created_at": T0, "updated_at": T0}
            for i in range(n)
        ])


@pytest.fixture
def setup(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=7, multi_label=True)
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="password1").id
                 for i in range(3)]
    return engine, project, users


def nxt(engine, project, user, now=T0):
    with writing(engine) as conn:
        return queue.next_item(conn, project=project, user_id=user, lease_seconds=LEASE, now=now)


def item_state(engine, item_id):
    with reading(engine) as conn:
        return tuple(conn.execute(
            select(items.c.n_labels, items.c.label_mask, items.c.label_source, items.c.label_tag_id)
            .where(items.c.id == item_id)).one())


def test_a_set_label_is_stored_as_a_mask_and_is_the_final_set(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 3)
    first = nxt(engine, project, u0)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u0, item_id=first.item_id, tags=["C", "A"], now=T0)
    assert item_state(engine, first.item_id) == (1, A | C, "human", None)
    none = nxt(engine, project, u1)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u1, item_id=none.item_id, tags=[], now=T0)
    assert item_state(engine, none.item_id) == (1, 0, "human", None)  # labelled: none applies
    with reading(engine) as conn:
        masks = conn.execute(select(annotations.c.tag_mask, annotations.c.tag_id).order_by(annotations.c.id)).all()
        assert [tuple(m) for m in masks] == [(A | C, None), (0, None)]
        assert label_counts(conn, project_id=project.id) == {project.tag_id("A"): 1, project.tag_id("C"): 1}


@pytest.mark.parametrize("many", [False, True])
def test_per_tag_majority_of_three_labellers_and_a_tie(setup, many):
    """Three labellers on one item: A by all (in), B by one (out), C by two (in); a second item
    with two labellers splits on B (a conflict for B only)."""
    engine, project, users = setup
    add_items(engine, project, 1, target=3)
    sets = [("A", "B"), ("A", "C"), ("C", "A")]
    for user, chosen in zip(users, sets, strict=True):
        lease = nxt(engine, project, user)
        with writing(engine) as conn:
            if many:
                out = labelling.label_many(conn, [labelling.LabelRequest(project, user, lease.item_id, tags=chosen)],
                                           now=T0)
                assert out == [None]
            else:
                labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id, tags=chosen, now=T0)
    assert item_state(engine, lease.item_id) == (3, A | C, "human", None)
    add_items_named(engine, project, "tie", target=2)
    for user, chosen in zip(users[:2], [("A", "B"), ("A",)], strict=True):
        lease = nxt(engine, project, user)
        assert lease.external_id == "tie"
        with writing(engine) as conn:
            labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id, tags=chosen, now=T0)
    assert item_state(engine, lease.item_id) == (2, None, "conflict", None)
    with writing(engine) as conn:  # refresh_items (the slow path) agrees with the hot path
        refresh_items(conn, item_ids=[lease.item_id, lease.item_id - 1])
    assert item_state(engine, lease.item_id) == (2, None, "conflict", None)
    assert item_state(engine, lease.item_id - 1) == (3, A | C, "human", None)


def add_items_named(engine, project, name, *, target=1):
    with writing(engine) as conn:
        conn.execute(insert(items).values(project_id=project.id, external_id=name, display={}, text=name,
                                          rand=rand_key(project.seed, name), target_labels=target,
                                          created_at=T0, updated_at=T0))


def counts(engine):
    with reading(engine) as conn:
        return (conn.execute(select(func.count()).select_from(annotations)).scalar_one(),
                conn.execute(select(assignments.c.state).order_by(assignments.c.id)).scalars().all())


def test_the_wrong_shape_is_refused_and_writes_nothing(setup):
    engine, project, (u0, _, _) = setup
    add_items(engine, project, 2)
    lease = nxt(engine, project, u0)
    before = counts(engine)
    bad = [
        ({"tag": "A"}, "project 'ml' is multi-label: send the list of tags that apply \\(empty: none\\)"),
        ({}, "is multi-label: send the list"),
        ({"tags": "A"}, "is multi-label: send the list"),
        ({"tags": ["A", "Z"]}, "unknown tag 'Z'; project 'ml' has: A, B, C"),
        ({"tags": ["A", 3]}, "tags are names"),
    ]
    for kwargs, message in bad:
        with writing(engine) as conn, pytest.raises(InvalidInputError, match=message):
            labelling.label_item(conn, project=project, user_id=u0, item_id=lease.item_id, now=T0, **kwargs)
        with writing(engine) as conn:
            out = labelling.label_many(conn, [labelling.LabelRequest(project, u0, lease.item_id, **kwargs)], now=T0)
            assert isinstance(out[0], InvalidInputError) and re.search(message, str(out[0]))
    assert counts(engine) == before
    with writing(engine) as conn:
        single = store_projects.create_project(conn, name="sl", labels=["A", "B"])
        with pytest.raises(InvalidInputError, match="project 'sl' is single-label: send one tag, not a list"):
            labelling.label_item(conn, project=single, user_id=u0, item_id=lease.item_id, tags=["A"], now=T0)
        out = labelling.label_many(conn, [labelling.LabelRequest(single, u0, lease.item_id, tags=("A",))], now=T0)
        assert isinstance(out[0], InvalidInputError)
    assert counts(engine) == before
    assert item_state(engine, lease.item_id) == (0, None, None, None)


def test_a_retired_tag_is_refused(setup):
    engine, project, (u0, _, _) = setup
    add_items(engine, project, 1)
    lease = nxt(engine, project, u0)
    with writing(engine) as conn:
        from labelloop.store.tags import retire_tag
        retire_tag(conn, project=project, name="B", user_id=None)
        project = store_projects.get_project(conn, name="ml")
    with writing(engine) as conn, pytest.raises(InvalidInputError, match=r"'B' \(retired\)"):
        labelling.label_item(conn, project=project, user_id=u0, item_id=lease.item_id, tags=["B"], now=T0)


def test_a_refusal_of_the_queue_is_the_same_as_for_single_labels(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1)
    lease = nxt(engine, project, u0)
    with writing(engine) as conn, pytest.raises(ConflictError, match="not leased to you"):
        labelling.label_item(conn, project=project, user_id=u1, item_id=lease.item_id, tags=["A"], now=T0)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u0, item_id=lease.item_id, tags=["A"], now=T0)
    with writing(engine) as conn, pytest.raises(ConflictError, match="labelled item .* already"):
        labelling.label_item(conn, project=project, user_id=u0, item_id=lease.item_id, tags=["B"], now=T0)


def test_undo_of_a_set_label(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1, target=2)
    first = nxt(engine, project, u0)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u0, item_id=first.item_id, tags=["A", "B"], now=T0)
    second = nxt(engine, project, u1)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u1, item_id=second.item_id, tags=["A", "B"],
                             now=T0 + timedelta(seconds=1))
    assert item_state(engine, first.item_id) == (2, A | B, "human", None)
    with writing(engine) as conn:
        undone = labelling.undo_last(conn, project=project, user_id=u1, lease_seconds=LEASE,
                                     now=T0 + timedelta(seconds=2))
    assert undone.what == "label" and undone.lease is not None and undone.item_id == first.item_id
    assert item_state(engine, first.item_id) == (1, A | B, "human", None)
    with writing(engine) as conn:  # relabel with another set: now a tie on B
        labelling.label_item(conn, project=project, user_id=u1, item_id=first.item_id, tags=["A"],
                             now=T0 + timedelta(seconds=3))
    assert item_state(engine, first.item_id) == (2, None, "conflict", None)
    with writing(engine) as conn:
        labelling.undo_last(conn, project=project, user_id=u1, lease_seconds=LEASE, now=T0 + timedelta(seconds=4))
        labelling.undo_last(conn, project=project, user_id=u0, lease_seconds=LEASE, now=T0 + timedelta(seconds=5))
    assert item_state(engine, first.item_id) == (0, None, None, None)


def test_label_many_mixes_single_and_multi_label_projects(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1)
    with writing(engine) as conn:
        single = store_projects.create_project(conn, name="sl", labels=["X", "Y"], seed=3)
    add_items(engine, single, 1)
    multi_lease, single_lease = nxt(engine, project, u0), nxt(engine, single, u1)
    with writing(engine) as conn:
        out = labelling.label_many(conn, [
            labelling.LabelRequest(single, u1, single_lease.item_id, tag="Y"),
            labelling.LabelRequest(project, u0, multi_lease.item_id, tags=("B",)),
            labelling.LabelRequest(project, u1, multi_lease.item_id, tags=("B",)),  # not leased to u1
        ], now=T0)
    assert out[:2] == [None, None] and isinstance(out[2], ConflictError)
    assert item_state(engine, multi_lease.item_id) == (1, B, "human", None)
    assert item_state(engine, single_lease.item_id) == (1, None, "human", single.tag_id("Y"))


def test_the_hot_path_keeps_the_rule_with_adjudications_and_retired_bits(setup):
    """labelloop_label_set (PostgreSQL) and the SQLite statements give what final_set gives:
    an adjudicated set wins (minus retired bits), a retired bit no longer counts or ties, and
    every annotation counts in n_labels."""
    from sqlalchemy import update

    from labelloop.store.schema import tags as tags_table

    engine, project, users = setup
    add_items(engine, project, 2, target=3)
    with reading(engine) as conn:
        adjudicated, retired = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == adjudicated).values(adjudicated_mask=B | C))
    for user, chosen in zip(users, [("A",), ("A",)], strict=False):
        lease = queue_claim(engine, project, user, adjudicated)
        with writing(engine) as conn:
            labelling.label_item(conn, project=project, user_id=user, item_id=lease, tags=chosen, now=T0)
    assert item_state(engine, adjudicated) == (2, B | C, "human", None)
    with writing(engine) as conn:  # C retired: the adjudicated set loses it at the next label
        conn.execute(update(tags_table).where(tags_table.c.id == project.tag_id("C")).values(retired=True))
    lease = queue_claim(engine, project, users[2], adjudicated)
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=users[2], item_id=lease, tags=["A"], now=T0)
    assert item_state(engine, adjudicated) == (3, B, "human", None)
    # The project object still offers C (read before the retirement); C's bit is ignored anyway.
    for user, chosen in zip(users[:2], [("A", "C"), ("B",)], strict=True):
        lease = queue_claim(engine, project, user, retired)
        with writing(engine) as conn:
            labelling.label_item(conn, project=project, user_id=user, item_id=lease, tags=chosen, now=T0)
    assert item_state(engine, retired) == (2, None, "conflict", None)  # A and B tie; C would too
    with writing(engine) as conn:
        refresh_items(conn, item_ids=[adjudicated, retired])
    assert item_state(engine, adjudicated) == (3, B, "human", None)
    assert item_state(engine, retired) == (2, None, "conflict", None)


def queue_claim(engine, project, user, item_id):
    with writing(engine) as conn:
        claim = queue.claim_from(conn, project=project, user_id=user, item_ids=[item_id], lease_seconds=LEASE,
                                 now=T0)
    assert claim.lease is not None and claim.lease.item_id == item_id
    return item_id
