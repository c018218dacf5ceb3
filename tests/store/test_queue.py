"""The labelling queue and its leases (store/queue.py), and the progress figures (store/stats.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store import labelling
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import scores as store_scores
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items, model_runs, projects
from labelloop.store.stats import project_stats, projects_overview

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 600


def add_items(engine, project, n, *, target=1):
    now = T0
    with writing(engine) as conn:
        conn.execute(
            insert(items),
            [
                {
                    "project_id": project.id, "external_id": f"e{i}", "display": {"title": f"t{i}"},
                    "text": f"text {i}", "rand": rand_key(project.seed, f"e{i}"), "target_labels": target,
                    "created_at": now, "updated_at": now,
                }
                for i in range(n)
            ],
        )
        rows = conn.execute(
            select(items.c.id, items.c.rand).where(items.c.project_id == project.id).order_by(items.c.id)
        ).all()
    return rows


@pytest.fixture
def setup(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=7)
        users = [
            store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
            for i in range(3)
        ]
    return engine, project, users


def nxt(engine, project, user, now=T0, lease=LEASE):
    with writing(engine) as conn:
        return queue.next_item(conn, project=project, user_id=user, lease_seconds=lease, now=now)


def label(engine, project, user, item_id, tag="A", now=T0):
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=user, item_id=item_id, tag=tag, now=now)


def test_serves_in_seeded_random_order_not_file_order(setup):
    engine, project, (u0, _, _) = setup
    rows = add_items(engine, project, 40)
    by_rand = [r.id for r in sorted(rows, key=lambda r: r.rand)]
    assert by_rand != [r.id for r in rows]  # the seeded order differs from file order
    served = []
    for _ in range(5):
        lease = nxt(engine, project, u0)
        served.append(lease.item_id)
        label(engine, project, u0, lease.item_id)
    assert served == by_rand[:5]


def test_same_item_on_repeat_and_never_to_two_people(setup):
    engine, project, (u0, u1, u2) = setup
    add_items(engine, project, 10)
    first = nxt(engine, project, u0)
    again = nxt(engine, project, u0, now=T0 + timedelta(seconds=30))
    assert again.item_id == first.item_id
    assert again.expires_at == T0 + timedelta(seconds=30 + LEASE)  # asking again renews
    others = {nxt(engine, project, u).item_id for u in (u1, u2)}
    assert first.item_id not in others and len(others) == 2


def test_expired_lease_returns_the_item_to_the_queue(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1)
    lease = nxt(engine, project, u0, lease=60)
    assert nxt(engine, project, u1, lease=60) is None  # held by u0
    later = T0 + timedelta(seconds=61)
    taken = nxt(engine, project, u1, now=later, lease=60)
    assert taken.item_id == lease.item_id
    # u0's lease expired and u1 holds the item now: u0 can no longer label it
    with pytest.raises(ConflictError, match="expired"):
        label(engine, project, u0, lease.item_id, now=later)
    label(engine, project, u1, lease.item_id, now=later)


def test_expired_lease_is_honoured_while_nobody_took_the_item(setup):
    engine, project, (u0, _, _) = setup
    add_items(engine, project, 3)
    lease = nxt(engine, project, u0, lease=60)
    label(engine, project, u0, lease.item_id, now=T0 + timedelta(hours=1))
    with reading(engine) as conn:
        assert conn.execute(select(items.c.n_labels).where(items.c.id == lease.item_id)).scalar_one() == 1


def test_labelling_records_annotation_and_final_label(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 2)
    lease = nxt(engine, project, u0)
    label(engine, project, u0, lease.item_id, tag="B")
    with reading(engine) as conn:
        item = conn.execute(select(items).where(items.c.id == lease.item_id)).one()
        ann = conn.execute(select(annotations).where(annotations.c.item_id == lease.item_id)).one()
        state = conn.execute(
            select(assignments.c.state).where(assignments.c.item_id == lease.item_id)
        ).scalar_one()
    assert (item.n_labels, item.label_tag_id, item.label_source) == (1, project.tag_id("B"), "human")
    assert (ann.user_id, ann.source, ann.tag_id) == (u0, "human", project.tag_id("B"))
    assert state == "labelled"
    # labelled items go to nobody again, the labeller included
    assert nxt(engine, project, u0).item_id != lease.item_id
    assert nxt(engine, project, u1) is None
    with pytest.raises(ConflictError, match="labelled item .* already"):
        label(engine, project, u0, lease.item_id)


def test_bad_labels_change_nothing(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 2)
    lease = nxt(engine, project, u0)
    with pytest.raises(InvalidInputError, match="unknown tag 'Z'"):
        label(engine, project, u0, lease.item_id, tag="Z")
    with pytest.raises(ConflictError, match="not leased to you"):
        label(engine, project, u1, lease.item_id)
    with pytest.raises(NotFoundError):
        label(engine, project, u0, 10**9)
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 0
    label(engine, project, u0, lease.item_id, tag="C")  # the lease still holds


def test_retired_tag_is_rejected(setup):
    engine, project, (u0, _, _) = setup
    add_items(engine, project, 1)
    with writing(engine) as conn:
        conn.execute(update(store_projects.tags).where(store_projects.tags.c.name == "A").values(retired=True))
        project = store_projects.get_project(conn, name="p")
    lease = nxt(engine, project, u0)
    with pytest.raises(InvalidInputError):
        label(engine, project, u0, lease.item_id, tag="A")


def test_skip_gives_the_item_to_others_never_back(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 2)
    first = nxt(engine, project, u0)
    with writing(engine) as conn:
        labelling.skip_item(conn, project=project, user_id=u0, item_id=first.item_id, now=T0)
    second = nxt(engine, project, u0)
    assert second.item_id != first.item_id
    label(engine, project, u0, second.item_id)
    assert nxt(engine, project, u0) is None  # the skipped item never comes back to u0
    assert nxt(engine, project, u1).item_id == first.item_id
    with writing(engine) as conn, pytest.raises(ConflictError, match="skipped"):
        labelling.label_item(conn, project=project, user_id=u0, item_id=first.item_id, tag="A", now=T0)


def test_undo_returns_the_item_leased_for_relabelling(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 3)
    first = nxt(engine, project, u0)
    label(engine, project, u0, first.item_id, tag="A", now=T0)
    second = nxt(engine, project, u0, now=T0 + timedelta(seconds=1))
    with writing(engine) as conn:
        undone = labelling.undo_last(
            conn, project=project, user_id=u0, lease_seconds=LEASE, now=T0 + timedelta(seconds=2)
        )
    back = undone.lease
    assert undone.what == "label" and back.item_id == first.item_id
    assert back.expires_at == T0 + timedelta(seconds=2 + LEASE)
    # the label is gone, the item is u0's again and the lease they held meanwhile is given back
    assert nxt(engine, project, u0, now=T0 + timedelta(seconds=3)).item_id == first.item_id
    assert nxt(engine, project, u1, now=T0 + timedelta(seconds=3)).item_id == second.item_id
    label(engine, project, u0, first.item_id, tag="C", now=T0 + timedelta(seconds=4))
    with reading(engine) as conn:
        tags = conn.execute(select(annotations.c.tag_id).where(annotations.c.item_id == first.item_id)).all()
        item = conn.execute(select(items).where(items.c.id == first.item_id)).one()
    assert [t[0] for t in tags] == [project.tag_id("C")]
    assert item.label_tag_id == project.tag_id("C") and item.n_labels == 1


def test_undo_without_labels_is_not_found(setup):
    engine, project, (u0, _, _) = setup
    with writing(engine) as conn, pytest.raises(NotFoundError, match="no label or skip to undo"):
        labelling.undo_last(conn, project=project, user_id=u0, lease_seconds=LEASE, now=T0)


def undo(engine, project, user, now):
    with writing(engine) as conn:
        return labelling.undo_last(conn, project=project, user_id=user, lease_seconds=LEASE, now=now)


def states(engine, user):
    with reading(engine) as conn:
        return dict(conn.execute(select(assignments.c.item_id, assignments.c.state)
                                 .where(assignments.c.user_id == user)).all())


def test_undo_is_a_stack_of_the_users_labels_and_skips(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 4)
    s = [T0 + timedelta(seconds=i) for i in range(20)]
    a = nxt(engine, project, u0, now=s[0]).item_id
    label(engine, project, u0, a, tag="A", now=s[1])
    b = nxt(engine, project, u0, now=s[2]).item_id
    with writing(engine) as conn:
        labelling.skip_item(conn, project=project, user_id=u0, item_id=b, now=s[3])
    c = nxt(engine, project, u0, now=s[4]).item_id
    label(engine, project, u0, c, tag="B", now=s[5])
    d = nxt(engine, project, u0, now=s[6]).item_id
    assert len({a, b, c, d}) == 4

    first = undo(engine, project, u0, s[7])
    assert (first.what, first.lease.item_id) == ("label", c)
    assert states(engine, u0) == {a: "labelled", b: "skipped", c: "leased"}  # d given back
    second = undo(engine, project, u0, s[8])  # the skip before that label: b comes back
    assert (second.what, second.item_id, second.lease.item_id) == ("skip", b, b)
    assert second.lease.expires_at == s[8] + timedelta(seconds=LEASE)
    assert states(engine, u0) == {a: "labelled", b: "leased"}  # c (unlabelled again) given back
    assert nxt(engine, project, u0, now=s[9]).item_id == b  # b is u0's lease: they can label it now
    third = undo(engine, project, u0, s[10])
    assert (third.what, third.lease.item_id) == ("label", a)
    with pytest.raises(NotFoundError, match="you have no label or skip to undo in project 'p'"):
        undo(engine, project, u0, s[11])
    label(engine, project, u0, a, tag="C", now=s[12])
    with reading(engine) as conn:
        labelled = dict(conn.execute(select(items.c.id, items.c.n_labels)).all())
    assert labelled == {a: 1, b: 0, c: 0, d: 0}
    assert states(engine, u0) == {a: "labelled"}  # the last undo gave b back: the skip stays undone
    assert nxt(engine, project, u1, now=s[13]).item_id in {b, c, d}


@pytest.mark.parametrize("taken", ["leased", "labelled"])
def test_undo_of_a_skip_whose_item_went_to_someone_else(setup, taken):
    """The skipped item cannot come back while others hold or have labelled it: the skip is
    forgotten (the stack moves on), the user keeps their lease, and the item may come back to
    them later."""
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 2)
    a = nxt(engine, project, u0).item_id
    with writing(engine) as conn:
        labelling.skip_item(conn, project=project, user_id=u0, item_id=a, now=T0)
    b = nxt(engine, project, u0).item_id
    assert nxt(engine, project, u1).item_id == a
    if taken == "labelled":
        label(engine, project, u1, a)
    undone = undo(engine, project, u0, T0 + timedelta(seconds=5))
    assert (undone.what, undone.item_id, undone.lease) == ("skip", a, None)
    assert states(engine, u0) == {b: "leased"}  # the skip is gone, u0's lease on b stays
    assert nxt(engine, project, u0, now=T0 + timedelta(seconds=6)).item_id == b
    with pytest.raises(NotFoundError):
        undo(engine, project, u0, T0 + timedelta(seconds=7))
    label(engine, project, u0, b, now=T0 + timedelta(seconds=8))
    later = T0 + timedelta(seconds=LEASE + 60)  # u1's lease on a has expired
    assert (nxt(engine, project, u0, now=later) is None) == (taken == "labelled")
    if taken == "leased":  # the forgotten skip no longer keeps a from u0
        assert nxt(engine, project, u0, now=later).item_id == a


def test_model_priority_wins_over_random_order(setup):
    engine, project, (u0, _, _) = setup
    rows = add_items(engine, project, 20)
    with writing(engine) as conn:
        run_id = conn.execute(
            insert(model_runs).values(
                project_id=project.id, version=1, status="complete", model_name="m", strategy="margin",
                created_at=T0,
            )
        ).inserted_primary_key[0]
        # score only 10 items: priority = position in file order (last one highest)
        store_scores.insert_scores(conn, run_id=run_id, item_ids=[r.id for r in rows[:10]],
                                   priorities=[float(i) for i in range(10)])
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
        project = store_projects.get_project(conn, name="p")
    served = []
    for _ in range(12):
        lease = nxt(engine, project, u0)
        served.append(lease.item_id)
        label(engine, project, u0, lease.item_id)
    assert served[:10] == [r.id for r in reversed(rows[:10])]
    unscored = sorted(rows[10:], key=lambda r: r.rand)
    assert served[10:] == [r.id for r in unscored[:2]]  # then the random order


def test_overlap_items_go_to_target_labels_distinct_people(setup):
    engine, project, (u0, u1, u2) = setup
    add_items(engine, project, 1, target=2)
    a, b = nxt(engine, project, u0), nxt(engine, project, u1)
    assert a.item_id == b.item_id
    assert nxt(engine, project, u2) is None
    label(engine, project, u0, a.item_id, tag="A")
    label(engine, project, u1, a.item_id, tag="B")
    with reading(engine) as conn:
        item = conn.execute(select(items).where(items.c.id == a.item_id)).one()
    assert (item.n_labels, item.label_source) == (2, "conflict")
    assert nxt(engine, project, u2) is None


def test_renew_and_project_lease_setting(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1)
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=project.id, values={"lease_seconds": 30})
        project = store_projects.get_project(conn, name="p")
    seconds = queue.lease_seconds_for(project, LEASE)
    assert seconds == 30
    lease = nxt(engine, project, u0, lease=seconds)
    with writing(engine) as conn:
        expires = labelling.renew_lease(
            conn, project=project, user_id=u0, item_id=lease.item_id, lease_seconds=seconds,
            now=T0 + timedelta(seconds=25),
        )
    assert expires == T0 + timedelta(seconds=55)
    assert nxt(engine, project, u1, now=T0 + timedelta(seconds=40), lease=seconds) is None
    assert nxt(engine, project, u1, now=T0 + timedelta(seconds=56), lease=seconds).item_id == lease.item_id
    with writing(engine) as conn, pytest.raises(ConflictError):
        labelling.renew_lease(
            conn, project=project, user_id=u0, item_id=lease.item_id, lease_seconds=seconds,
            now=T0 + timedelta(seconds=57),
        )


def test_stats(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 5)
    for user, tag, when in ((u0, "A", T0 - timedelta(days=1)), (u0, "B", T0), (u1, "B", T0)):
        lease = nxt(engine, project, user, now=when)
        label(engine, project, user, lease.item_id, tag=tag, now=when)
    with reading(engine) as conn:
        stats = project_stats(conn, project=project, user_id=u0, now=T0)
        overview = projects_overview(conn)
    assert stats["items"] == 5 and stats["labelled"] == 3 and stats["remaining"] == 2
    assert stats["per_tag"] == {"A": 1, "B": 2, "C": 0}
    assert stats["per_labeller"] == {"u0": 2, "u1": 1}
    assert (stats["yours_total"], stats["yours_today"]) == (2, 1)
    assert overview == [{"name": "p", "items": 5, "labelled": 3, "remaining": 2}]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # row locks: PostgreSQL's claims
def test_a_claim_that_may_not_wait_says_so_instead_of_waiting(setup):
    """Every candidate locked by another transaction: the exact claim waits for them when it may,
    and raises WouldWait at once when it may not (inside a batch, where waiting can deadlock)."""
    engine, project, users = setup
    add_items(engine, project, 3)
    with engine.connect() as other:
        with other.begin():
            other.execute(select(items.c.id).where(items.c.project_id == project.id).with_for_update())
            with writing(engine) as conn:
                with pytest.raises(queue.WouldWait):
                    queue.next_item(conn, project=project, user_id=users[0], lease_seconds=LEASE, now=T0,
                                    may_wait=False)
    # the locks are gone: the same claim succeeds
    with writing(engine) as conn:
        lease = queue.next_item(conn, project=project, user_id=users[0], lease_seconds=LEASE, now=T0, may_wait=False)
    assert lease is not None
