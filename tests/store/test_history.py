"""My history (store/history.py): a labeller's own labels, changed while they are theirs; every
change kept in label_history; the final label recomputed; leases untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store import history, labelling, queue, reading, review, writing
from labelloop.store import projects as store_projects
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.quality import overlap_labels
from labelloop.store.schema import annotations, assignments, items, label_history

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 600
A, B, C = 1, 2, 4


def add_items(engine, project, n, *, target=1, prefix="e"):
    with writing(engine) as conn:
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"{prefix}{i}", "display": {"title": f"t{i}"},
             "text": f"text of item {prefix}{i}", "rand": rand_key(project.seed, f"{prefix}{i}"),
             "target_labels": target, "created_at": T0, "updated_at": T0}
            for i in range(n)
        ])


@pytest.fixture
def single(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=["Sport", "Politics", "Tech"], seed=3,
                                                settings={"audit_fraction": 0.0})
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(3)]
    return engine, project, users


@pytest.fixture
def multi(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="ml", labels=["A", "B", "C"], seed=7, multi_label=True,
                                                settings={"audit_fraction": 0.0})
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(3)]
    return engine, project, users


def label(engine, project, user, *, now=T0, **value):
    """Lease the user's next item and label it; returns its id."""
    with writing(engine) as conn:
        lease = queue.next_item(conn, project=project, user_id=user, lease_seconds=LEASE, now=now)
        assert lease is not None
        labelling.label_item(conn, project=project, user_id=user, item_id=lease.item_id, now=now, **value)
    return lease.item_id


def label_on(engine, project, user, item_id, *, now=T0, **value):
    """Label item ``item_id`` (leased by hand, as the queue would)."""
    with writing(engine) as conn:
        conn.execute(insert(assignments).values(project_id=project.id, item_id=item_id, user_id=user, state="leased",
                                                leased_at=now, expires_at=now + timedelta(seconds=LEASE)))
        labelling.label_item(conn, project=project, user_id=user, item_id=item_id, now=now, **value)


def state(engine, item_id):
    with reading(engine) as conn:
        return tuple(conn.execute(
            select(items.c.n_labels, items.c.label_tag_id, items.c.label_mask, items.c.label_source)
            .where(items.c.id == item_id)).one())


def rows(engine):
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(label_history.c.item_id, label_history.c.user_id, label_history.c.old_tag_id,
                   label_history.c.old_mask, label_history.c.new_tag_id, label_history.c.new_mask,
                   label_history.c.changed_by).order_by(label_history.c.id))]


def change(engine, project, user, item_id, *, now=T0 + timedelta(minutes=5), **value):
    with writing(engine) as conn:
        return history.change_label(conn, project=project, user_id=user, item_id=item_id, now=now, **value)


def test_a_change_rewrites_the_label_keeps_history_and_recomputes_the_majority(single):
    engine, project, (u0, u1, u2) = single
    add_items(engine, project, 2, target=3)
    sport, politics = project.tag_id("Sport"), project.tag_id("Politics")
    item = label(engine, project, u0, tag="Sport")
    label_on(engine, project, u1, item, tag="Sport")
    label_on(engine, project, u2, item, tag="Politics")
    assert state(engine, item) == (3, sport, None, "human")

    done = change(engine, project, u1, item, tag="Politics")
    assert (done.label, done.changed, done.final, done.final_source) == ("Politics", True, "Politics", "human")
    assert state(engine, item) == (3, politics, None, "human")  # the majority follows the change
    assert rows(engine) == [(item, u1, sport, None, politics, None, u1)]
    with reading(engine) as conn:
        mine = conn.execute(select(annotations.c.tag_id, annotations.c.created_at, annotations.c.updated_at)
                            .where(annotations.c.item_id == item, annotations.c.user_id == u1)).one()
        # agreement reads the annotations: u1's label there is the new one
        assert (item, "u1", politics) in overlap_labels(conn, project_id=project.id)
    assert mine.tag_id == politics and mine.updated_at > mine.created_at

    # a second change is a second row: Sport, Politics, Tech is a tie
    change(engine, project, u2, item, tag="Tech", now=T0 + timedelta(minutes=6))
    assert state(engine, item) == (3, None, None, "conflict")  # Sport, Politics, Tech: a three-way tie
    with reading(engine) as conn:
        assert [r.id for r in review.review_queue(conn, project=project).items] == [item]
    assert len(rows(engine)) == 2


def test_the_same_value_again_changes_nothing(single):
    engine, project, (u0, _, _) = single
    add_items(engine, project, 1)
    item = label(engine, project, u0, tag="Tech")
    done = change(engine, project, u0, item, tag="Tech")
    assert done.changed is False and done.label == "Tech"
    assert rows(engine) == []


def test_a_change_needs_no_lease_and_leaves_every_lease_alone(single):
    engine, project, (u0, u1, _) = single
    add_items(engine, project, 4, target=2)
    first = label(engine, project, u0, tag="Sport")
    with writing(engine) as conn:  # u0 now holds a lease on another item, u1 one on some item
        held = queue.next_item(conn, project=project, user_id=u0, lease_seconds=LEASE, now=T0)
        other = queue.next_item(conn, project=project, user_id=u1, lease_seconds=LEASE, now=T0)
    assert held is not None and other is not None and held.item_id != first

    def leases():
        with reading(engine) as conn:
            return sorted(tuple(r) for r in conn.execute(
                select(assignments.c.item_id, assignments.c.user_id, assignments.c.state, assignments.c.leased_at,
                       assignments.c.expires_at, assignments.c.finished_at)))

    before = leases()
    change(engine, project, u0, first, tag="Tech")
    assert leases() == before
    with writing(engine) as conn:  # u0's lease still serves them the same item
        again = queue.next_item(conn, project=project, user_id=u0, lease_seconds=LEASE, now=T0 + timedelta(minutes=6))
    assert again is not None and again.item_id == held.item_id
    # and the lease still takes its label
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=u0, item_id=held.item_id, tag="Sport",
                             now=T0 + timedelta(minutes=7))


def test_refused_after_an_admin_decided_the_item(single):
    engine, project, (u0, u1, _) = single
    add_items(engine, project, 1, target=2)
    item = label(engine, project, u0, tag="Sport")
    label_on(engine, project, u1, item, tag="Politics")
    with writing(engine) as conn:
        review.adjudicate(conn, project=project, item_id=item, tag="Tech", user_id=None)
    before = state(engine, item)
    with pytest.raises(ConflictError, match=f"item {item} can no longer be changed: an admin has decided"):
        change(engine, project, u0, item, tag="Politics")
    assert state(engine, item) == before and rows(engine) == []
    with reading(engine) as conn:
        (entry,) = history.my_labels(conn, project=project, user_id=u0)
        tag = conn.execute(select(annotations.c.tag_id).where(annotations.c.item_id == item,
                                                               annotations.c.user_id == u0)).scalar_one()
    assert tag == project.tag_id("Sport")
    assert (entry.changeable, entry.reason, entry.final) == (False, "an admin has decided this item in the review",
                                                            "Tech")


def test_refused_for_other_peoples_labels_imported_ones_and_unknown_items(single):
    engine, project, (u0, u1, _) = single
    add_items(engine, project, 2)
    item = label(engine, project, u0, tag="Sport")
    with pytest.raises(ConflictError, match=f"you have no label on item {item} to change"):
        change(engine, project, u1, item, tag="Tech")
    with writing(engine) as conn:  # an imported label (no user) on the other item
        other = conn.execute(select(items.c.id).where(items.c.id != item)).scalar_one()
        conn.execute(insert(annotations).values(project_id=project.id, item_id=other, user_id=None,
                                                tag_id=project.tag_id("Tech"), source="import",
                                                created_at=T0, updated_at=T0))
        other_project = store_projects.create_project(conn, name="other", labels=["Sport"], seed=1)
    with pytest.raises(ConflictError, match="no label"):
        change(engine, project, u1, other, tag="Sport")
    with pytest.raises(NotFoundError, match="no item 999999 in project 'news'"):
        change(engine, project, u0, 999999, tag="Tech")
    with pytest.raises(NotFoundError, match=f"no item {item} in project 'other'"):
        change(engine, other_project, u0, item, tag="Sport")
    with pytest.raises(InvalidInputError, match="unknown tag 'Weather'"):
        change(engine, project, u0, item, tag="Weather")
    with pytest.raises(InvalidInputError, match="single-label"):
        change(engine, project, u0, item, tags=["Tech"])
    assert rows(engine) == [] and state(engine, item)[1] == project.tag_id("Sport")


def test_my_labels_newest_first_mine_only_with_changes(single):
    engine, project, (u0, u1, _) = single
    add_items(engine, project, 5)
    ids = [label(engine, project, u0, tag=t, now=T0 + timedelta(seconds=i))
           for i, t in enumerate(["Sport", "Politics", "Tech"])]
    theirs = label(engine, project, u1, tag="Sport")
    change(engine, project, u0, ids[0], tag="Tech", now=T0 + timedelta(minutes=1))
    with reading(engine) as conn:
        mine = history.my_labels(conn, project=project, user_id=u0)
        two = history.my_labels(conn, project=project, user_id=u0, limit=2)
    assert [m.item_id for m in mine] == ids[::-1] and theirs not in [m.item_id for m in mine]
    assert [m.item_id for m in two] == ids[:0:-1]
    assert [(m.label, m.changes, m.changeable) for m in mine] == [
        ("Tech", 0, True), ("Politics", 0, True), ("Tech", 1, True)]
    assert mine[2].changed_at == T0 + timedelta(minutes=1) and mine[2].labelled_at == T0
    assert mine[0].snippet.startswith("text of item e") and mine[0].labels is None


def test_a_label_with_a_retired_tag_changed_counts_again(single):
    engine, project, (u0, _, _) = single
    add_items(engine, project, 1)
    item = label(engine, project, u0, tag="Tech")
    with writing(engine) as conn:
        store_tags.retire_tag(conn, project=project, name="Tech", user_id=None)
        project = store_projects.get_project(conn, name="news")
    assert state(engine, item) == (0, None, None, None)  # back in the queue
    with reading(engine) as conn:
        assert history.my_labels(conn, project=project, user_id=u0)[0].label == "Tech"  # what the label holds
    change(engine, project, u0, item, tag="Sport")
    assert state(engine, item) == (1, project.tag_id("Sport"), None, "human")


def test_sets_change_and_the_final_set_follows(multi):
    engine, project, (u0, u1, u2) = multi
    add_items(engine, project, 1, target=3)
    item = label(engine, project, u0, tags=["A", "B"])
    label_on(engine, project, u1, item, tags=["A"])
    label_on(engine, project, u2, item, tags=["A", "B"])
    assert state(engine, item) == (3, None, A | B, "human")
    done = change(engine, project, u2, item, tags=["C", "A"])
    assert (done.labels, done.final, done.changed) == (["A", "C"], "A", True)  # B 1/3, C 1/3: out
    assert state(engine, item) == (3, None, A, "human")
    assert rows(engine) == [(item, u2, None, A | B, None, A | C, u2)]
    change(engine, project, u1, item, tags=[])  # none applies
    assert state(engine, item) == (3, None, A, "human")
    with reading(engine) as conn:
        entries = {m.item_id: m for m in history.my_labels(conn, project=project, user_id=u1)}
        changes = history.label_changes(conn, project=project, item_id=item)
    assert entries[item].labels == [] and entries[item].label is None
    assert [(c.user, c.old, c.new) for c in changes] == [("u2", ["A", "B"], ["A", "C"]), ("u1", ["A"], [])]
    with pytest.raises(InvalidInputError, match="multi-label"):
        change(engine, project, u0, item, tag="A")


def test_sets_refused_after_an_adjudicated_set(multi):
    engine, project, (u0, u1, _) = multi
    add_items(engine, project, 1, target=2)
    item = label(engine, project, u0, tags=["A"])
    label_on(engine, project, u1, item, tags=["B"])
    with writing(engine) as conn:
        review.adjudicate(conn, project=project, item_id=item, tags=["C"], user_id=None)
    with pytest.raises(ConflictError, match="an admin has decided"):
        change(engine, project, u0, item, tags=["B"])
    assert state(engine, item) == (2, None, C, "human") and rows(engine) == []


def test_undo_after_a_change_still_works_and_the_history_stays(single):
    engine, project, (u0, _, _) = single
    add_items(engine, project, 2)
    item = label(engine, project, u0, tag="Sport")
    change(engine, project, u0, item, tag="Politics")
    with writing(engine) as conn:  # the undo stack still holds the (changed) label
        undone = labelling.undo_last(conn, project=project, user_id=u0, lease_seconds=LEASE,
                                     now=T0 + timedelta(minutes=10))
    assert (undone.what, undone.item_id) == ("label", item) and undone.lease is not None
    assert state(engine, item) == (0, None, None, None)
    assert len(rows(engine)) == 1  # what the label was, and became, is kept
    with reading(engine) as conn:
        assert history.my_labels(conn, project=project, user_id=u0) == []
    with pytest.raises(ConflictError, match="no label"):
        change(engine, project, u0, item, tag="Tech")


def test_a_changed_label_records_the_codebook_version_of_the_change(single):
    """Labels record the codebook version they were made under (the insert trigger); a change
    makes the label again, under the codebook of that moment."""
    from labelloop.store import codebook

    engine, project, (u0, _u1, _u2) = single
    add_items(engine, project, 1)
    item = label(engine, project, u0, tag="Sport")

    def version():
        with reading(engine) as conn:
            return conn.execute(select(annotations.c.codebook_version).where(annotations.c.item_id == item)).scalar_one()

    assert version() is None  # no codebook yet
    with writing(engine) as conn:
        codebook.set_definition(conn, project=project, tag="Sport", definition="Games and athletes.", user_id=u0)
        codebook.set_definition(conn, project=project, tag="Tech", definition="Computers.", user_id=u0)
    change(engine, project, u0, item, tag="Tech")
    assert version() == 2
