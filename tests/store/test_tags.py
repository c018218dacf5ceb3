"""Tag changes mid-project (store/tags.py): add, reactivate, rename, merge, retire, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, update

from labelloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from labelloop.store import browse, reading, writing
from labelloop.store import labelling
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import refresh_items
from labelloop.store.schema import annotations, audit_log, items, projects, tags

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(engine):
    """Project p (tags A, B, C), labellers ann/bob/cid, items e0..e5 wanting 2 labels each."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=3)
        users = {n: store_users.create_user(conn, name=n, role="labeller", password="a long password").id
                 for n in ("ann", "bob", "cid")}
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"t{i}",
             "rand": rand_key(project.seed, f"e{i}"), "target_labels": 2, "created_at": T0, "updated_at": T0}
            for i in range(6)
        ])
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
    return engine, users, ids


def project(engine):
    with reading(engine) as conn:
        return store_projects.get_project(conn, name="p")


def give(engine, user, item_id, tag):
    """``user`` leases item ``item_id`` and labels it ``tag``, through the queue's own functions."""
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name="p")
        lease = queue.try_claim(conn, project=proj, user_id=user, item_id=item_id, lease_seconds=600)
        assert isinstance(lease, queue.Lease), lease
        labelling.label_item(conn, project=proj, user_id=user, item_id=item_id, tag=tag)


def item_state(engine, item_id):
    with reading(engine) as conn:
        row = conn.execute(select(items.c.n_labels, items.c.label_tag_id, items.c.label_source,
                                  items.c.adjudicated_tag_id).where(items.c.id == item_id)).one()
        names = {t.id: t.name for t in store_projects.get_project(conn, name="p").tags}
    return row.n_labels, names.get(row.label_tag_id), row.label_source, names.get(row.adjudicated_tag_id)


def snapshot(engine):
    """Everything a failed change must leave as it was."""
    with reading(engine) as conn:
        return (
            conn.execute(select(annotations.c.id, annotations.c.item_id, annotations.c.user_id, annotations.c.tag_id)
                         .order_by(annotations.c.id)).all(),
            conn.execute(select(tags.c.id, tags.c.name, tags.c.retired).order_by(tags.c.id)).all(),
            conn.execute(select(items.c.id, items.c.n_labels, items.c.label_tag_id, items.c.label_source,
                                items.c.adjudicated_tag_id).order_by(items.c.id)).all(),
            conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            conn.execute(select(projects.c.retrain_requested_at)).scalar_one(),
        )


def who_labelled(engine):
    """(item, user) pairs of every annotation, and the number of annotations."""
    with reading(engine) as conn:
        rows = conn.execute(select(annotations.c.item_id, annotations.c.user_id)).all()
    return sorted(rows), len(rows)


def audit(engine):
    with reading(engine) as conn:
        return browse.audit_entries(conn, project_id=project(engine).id)


def test_rename_keeps_every_label_and_requests_a_retrain(world):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "A")
    give(engine, users["bob"], ids[0], "A")
    before = who_labelled(engine)
    with writing(engine) as conn:
        store_tags.rename_tag(conn, project=project(engine), old="A", new="Advocacy", user_id=users["ann"])
    assert who_labelled(engine) == before
    assert project(engine).tag_names == ["Advocacy", "B", "C"]
    assert item_state(engine, ids[0]) == (2, "Advocacy", "human", None)
    entry = audit(engine)[0]
    assert entry["action"] == "tag.rename" and entry["details"]["from"] == "A" and entry["user"] == "ann"
    with reading(engine) as conn:
        assert conn.execute(select(projects.c.retrain_requested_at)).scalar_one() is not None


def test_merge_moves_labels_and_adjudications_and_retires_the_source(world):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "A")
    give(engine, users["bob"], ids[0], "B")  # a conflict that the merge resolves
    give(engine, users["ann"], ids[1], "B")
    give(engine, users["cid"], ids[1], "C")
    give(engine, users["bob"], ids[2], "C")
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == ids[1]).values(adjudicated_tag_id=project(engine).tag_id("B")))
        refresh_items(conn, item_ids=[ids[1]])
    assert item_state(engine, ids[0]) == (2, None, "conflict", None)
    before = who_labelled(engine)
    with writing(engine) as conn:
        counts = store_tags.merge_tags(conn, project=project(engine), source="B", into="A", user_id=None)
    assert counts == {"annotations": 2, "adjudications": 1, "items": 2}
    assert who_labelled(engine) == before  # every annotation kept, by the same users
    assert item_state(engine, ids[0]) == (2, "A", "human", None)
    assert item_state(engine, ids[1]) == (2, "A", "human", "A")
    assert item_state(engine, ids[2]) == (1, "C", "human", None)
    proj = project(engine)
    assert proj.tag_names == ["A", "C"] and [t.name for t in proj.tags if t.retired] == ["B"]
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).where(annotations.c.tag_id == proj.tags[1].id)).scalar_one() == 0
    entry = audit(engine)[0]
    assert entry["action"] == "tag.merge" and entry["details"]["from"] == "B" and entry["details"]["into"] == "A"
    assert entry["details"]["annotations"] == 2


def test_retire_ignores_its_labels_and_reopens_items_for_other_labellers(world):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "C")  # e0: only C
    give(engine, users["bob"], ids[0], "C")
    give(engine, users["ann"], ids[1], "A")  # e1: A and C -> A alone after the retirement
    give(engine, users["bob"], ids[1], "C")
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == ids[1]).values(adjudicated_tag_id=project(engine).tag_id("C")))
        refresh_items(conn, item_ids=[ids[1]])
    labels_before = who_labelled(engine)
    with writing(engine) as conn:
        counts = store_tags.retire_tag(conn, project=project(engine), name="C", user_id=users["cid"])
    assert counts == {"items": 2, "reopened": 2, "adjudications": 1}
    assert who_labelled(engine) == labels_before  # kept for history
    assert item_state(engine, ids[0]) == (0, None, None, None)
    assert item_state(engine, ids[1]) == (1, "A", "human", None)
    proj = project(engine)
    assert proj.tag_names == ["A", "B"]
    with pytest.raises(InvalidInputError, match="unknown tag 'C'"):
        proj.tag_id("C")
    # ann and bob labelled e0 already: it comes back to cid only
    with writing(engine) as conn:
        for name in ("ann", "bob"):
            offered = queue.candidates(conn, project=proj, now=T0, limit=10, user_id=users[name])
            assert ids[0] not in offered
        assert ids[0] in queue.candidates(conn, project=proj, now=T0, limit=10, user_id=users["cid"])
    # the hot path ignores the retired label too: cid's label on e1 makes two active labels...
    give(engine, users["cid"], ids[1], "B")
    assert item_state(engine, ids[1]) == (2, None, "conflict", None)
    # ... and one active label on e0 is not enough for two wanted
    give(engine, users["cid"], ids[0], "A")
    assert item_state(engine, ids[0]) == (1, "A", "human", None)
    assert audit(engine)[0]["action"] == "tag.retire"


def test_adding_a_retired_name_reactivates_it_with_its_labels(world):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "C")
    with writing(engine) as conn:
        store_tags.retire_tag(conn, project=project(engine), name="C", user_id=None)
    assert item_state(engine, ids[0]) == (0, None, None, None)
    with writing(engine) as conn:
        assert store_tags.add_tag(conn, project=project(engine), name="C", user_id=None) == "reactivated"
    assert project(engine).tag_names == ["A", "B", "C"]
    assert item_state(engine, ids[0]) == (1, "C", "human", None)
    with writing(engine) as conn:
        assert store_tags.add_tag(conn, project=project(engine), name="D", user_id=None) == "added"
    assert project(engine).tag_names == ["A", "B", "C", "D"]
    assert [e["action"] for e in audit(engine)] == ["tag.add", "tag.reactivate", "tag.retire"]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda c, p: store_tags.merge_tags(c, project=p, source="A", into="A", user_id=None), InvalidInputError,
         "into itself"),
        (lambda c, p: store_tags.merge_tags(c, project=p, source="Z", into="A", user_id=None), NotFoundError,
         "no tag 'Z'"),
        (lambda c, p: store_tags.merge_tags(c, project=p, source="A", into="Z", user_id=None), NotFoundError,
         "no tag 'Z'"),
        (lambda c, p: store_tags.retire_tag(c, project=p, name="Z", user_id=None), NotFoundError, "no tag 'Z'"),
        (lambda c, p: store_tags.rename_tag(c, project=p, old="A", new="B", user_id=None), AlreadyExistsError,
         "exists already"),
        (lambda c, p: store_tags.rename_tag(c, project=p, old="Z", new="Y", user_id=None), NotFoundError, "no tag"),
        (lambda c, p: store_tags.rename_tag(c, project=p, old="A", new=" A", user_id=None), InvalidInputError,
         "surrounding spaces"),
        (lambda c, p: store_tags.add_tag(c, project=p, name="B", user_id=None), AlreadyExistsError, "exists already"),
        (lambda c, p: store_tags.add_tag(c, project=p, name="", user_id=None), InvalidInputError, "empty"),
    ],
)
def test_errors_leave_the_database_unchanged(world, change, error, message):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "A")
    before = snapshot(engine)
    with pytest.raises(error, match=message):
        with writing(engine) as conn:
            change(conn, project(engine))
    assert snapshot(engine) == before


def test_retiring_the_last_active_tag_or_merging_into_a_retired_one_is_refused(world):
    engine, users, ids = world
    give(engine, users["ann"], ids[0], "A")
    with writing(engine) as conn:
        store_tags.retire_tag(conn, project=project(engine), name="B", user_id=None)
        store_tags.retire_tag(conn, project=project(engine), name="C", user_id=None)
    before = snapshot(engine)
    for change, message in (
        (lambda c: store_tags.retire_tag(c, project=project(engine), name="A", user_id=None), "last active tag"),
        (lambda c: store_tags.retire_tag(c, project=project(engine), name="B", user_id=None), "retired already"),
        (lambda c: store_tags.merge_tags(c, project=project(engine), source="A", into="C", user_id=None),
         "is retired"),
    ):
        with pytest.raises(ConflictError, match=message):
            with writing(engine) as conn:
                change(conn)
        assert snapshot(engine) == before
