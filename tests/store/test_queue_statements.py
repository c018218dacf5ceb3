"""The queue's claim and label statements, through the public functions, on both databases.

On PostgreSQL a claim and a label are one statement each (the functions ``labelloop_claim`` and
``labelloop_label`` of migration 0003); on SQLite separate statements. Both must give the same
leases, the same refusals with the same words, write nothing when they refuse, and keep the
item's final label by the rule of :func:`labelloop.store.labels.final_label`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text, update

from labelloop.errors import ConflictError, NotFoundError
from labelloop.store import labelling
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import final_label
from labelloop.store.schema import annotations, assignments, items, tags

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 600


@pytest.fixture
def world(engine):
    """Project "p" (tags A, B, C), a second project "q", five labellers; ``add(n, target)`` adds items."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=3)
        other = store_projects.create_project(conn, name="q", labels=["A"], seed=4)
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(5)]

    def add(n, target=1, proj=project):
        with writing(engine) as conn:
            start = conn.execute(select(func.count()).select_from(items)).scalar_one()
            conn.execute(insert(items), [
                {"project_id": proj.id, "external_id": f"e{start + i}", "display": {"title": f"t{start + i}"},
                 "text": "x", "rand": rand_key(proj.seed, f"e{start + i}"), "target_labels": target,
                 "created_at": T0, "updated_at": T0}
                for i in range(n)
            ])
            rows = conn.execute(select(items.c.id).where(items.c.project_id == proj.id)
                                .order_by(items.c.id.desc()).limit(n)).scalars().all()
        return sorted(rows)

    return engine, project, other, users, add


def claim_from(engine, project, user, ids, *, now=T0, audit=False, renew=False):
    with writing(engine) as conn:
        return queue.claim_from(conn, project=project, user_id=user, item_ids=ids, lease_seconds=LEASE, now=now,
                                audit=audit, renew=renew)


def label(engine, project, user, item_id, tag="A", now=T0):
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=user, item_id=item_id, tag=tag, now=now)


def skip(engine, project, user, item_id, now=T0):
    with writing(engine) as conn:
        labelling.skip_item(conn, project=project, user_id=user, item_id=item_id, now=now)


def counts(engine):
    with reading(engine) as conn:
        return (conn.execute(select(func.count()).select_from(annotations)).scalar_one(),
                conn.execute(select(assignments.c.item_id, assignments.c.user_id, assignments.c.state,
                                    assignments.c.expires_at).order_by(assignments.c.id)).all(),
                conn.execute(select(items.c.id, items.c.n_labels, items.c.label_tag_id, items.c.label_source,
                                    items.c.updated_at).order_by(items.c.id)).all())


def test_claim_from_takes_the_first_candidate_available_to_the_user(world):
    engine, project, other_project, (u0, u1, _, _, _), add = world
    (done,) = add(1, target=2)  # still needs a label after u0's: not for u0, but for others
    held, free, later = add(3)
    foreign = add(1, proj=other_project)[0]
    # u0 labelled `done`; u1 holds `held`
    assert claim_from(engine, project, u0, [done]).lease.item_id == done
    label(engine, project, u0, done)
    assert claim_from(engine, project, u1, [held]).lease.item_id == held
    claim = claim_from(engine, project, u0, [done, held, foreign, 10**12, free, later])
    assert claim.lease is not None and claim.lease.item_id == free
    assert claim.lease.external_id and claim.lease.display == {"title": claim.lease.external_id.replace("e", "t")}
    assert claim.lease.expires_at == T0 + timedelta(seconds=LEASE) and not claim.lease.is_audit
    assert (claim.tried, claim.not_for_you, claim.renewed) == (5, [done], False)
    # nothing available: every candidate tried, none leased
    assert claim_from(engine, project, u0, [done, held]) == queue.Claim(None, 2, [done], False)
    assert claim_from(engine, project, u1, [free, done]).lease.item_id == done  # for others it is open
    assert claim_from(engine, project, u1, []) == queue.Claim(None, 0, [], False)


def test_claim_from_renews_the_users_live_lease_first(world):
    engine, project, _, (u0, _, _, _, _), add = world
    first, second = add(2)
    assert claim_from(engine, project, u0, [first], audit=True).lease.is_audit
    later = T0 + timedelta(seconds=30)
    claim = claim_from(engine, project, u0, [second], now=later, renew=True)
    assert claim.renewed and claim.tried == 0 and claim.not_for_you == []
    assert claim.lease.item_id == first and claim.lease.is_audit  # the audit flag stays with the lease
    assert claim.lease.expires_at == later + timedelta(seconds=LEASE)
    with reading(engine) as conn:
        expires = conn.execute(select(assignments.c.expires_at).where(assignments.c.item_id == first)).scalar_one()
        assert conn.execute(select(func.count()).select_from(assignments)).scalar_one() == 1
    assert expires == later + timedelta(seconds=LEASE)
    # without renew the live lease is not looked at: another item is leased too (the store's
    # callers ask with renew first)
    assert claim_from(engine, project, u0, [second], now=later).lease.item_id == second


def test_an_expired_lease_of_ones_own_is_claimed_again_and_flagged_anew(world):
    engine, project, _, (u0, _, _, _, _), add = world
    (item,) = add(1)
    claim_from(engine, project, u0, [item], audit=True)
    later = T0 + timedelta(seconds=LEASE + 1)
    assert claim_from(engine, project, u0, [], now=later, renew=True).lease is None  # expired: not current
    claim = claim_from(engine, project, u0, [item], now=later)
    assert claim.lease.item_id == item and not claim.lease.is_audit
    with reading(engine) as conn:
        row = conn.execute(select(assignments.c.is_audit, assignments.c.leased_at, assignments.c.expires_at)).one()
    assert tuple(row) == (False, later, later + timedelta(seconds=LEASE))


def test_overlap_items_take_target_labels_live_leases(world):
    engine, project, _, users, add = world
    (item,) = add(1, target=2)
    assert claim_from(engine, project, users[0], [item]).lease is not None
    assert claim_from(engine, project, users[1], [item]).lease is not None
    assert claim_from(engine, project, users[2], [item]).lease is None  # two live leases: full
    label(engine, project, users[0], item)
    assert claim_from(engine, project, users[2], [item]).lease is None  # one label + one lease
    # users[1]'s lease expires: the item is free for users[2]
    later = T0 + timedelta(seconds=LEASE + 1)
    assert claim_from(engine, project, users[2], [item], now=later).lease.item_id == item


def test_every_refusal_of_a_label_has_its_words_and_writes_nothing(world):
    engine, project, _, (u0, u1, u2, _, _), add = world
    leased, labelled, skipped, taken = add(4)
    foreign = add(1, proj=world[2])[0]
    for item_id in (leased, labelled, skipped, taken):
        claim_from(engine, project, u0, [item_id], now=T0 - timedelta(seconds=LEASE + 5) if item_id == taken else T0)
    label(engine, project, u0, labelled)
    skip(engine, project, u0, skipped)
    claim_from(engine, project, u1, [taken])  # u0's lease on it had expired
    before = counts(engine)
    refusals = [
        (u0, 10**12, NotFoundError, f"no item {10**12} in project 'p'"),
        (u0, foreign, NotFoundError, f"no item {foreign} in project 'p'"),
        (u2, leased, ConflictError, f"item {leased} is not leased to you: ask for the next item first"),
        (u0, labelled, ConflictError,
         f"you have labelled item {labelled} already: change it in My history (PUT the label)"),
        (u0, skipped, ConflictError, f"you skipped item {skipped}; it is no longer leased to you"),
        (u0, taken, ConflictError,
         f"your lease on item {taken} expired and the item went to someone else; ask for the next item"),
    ]
    for user, item_id, error, words in refusals:
        with pytest.raises(error) as raised:
            label(engine, project, user, item_id, tag="B")
        assert str(raised.value) == words
    assert counts(engine) == before
    label(engine, project, u0, leased, tag="B")  # the lease still holds


def _item(engine, item_id):
    with reading(engine) as conn:
        row = conn.execute(select(items.c.n_labels, items.c.label_tag_id, items.c.label_source,
                                  items.c.adjudicated_tag_id).where(items.c.id == item_id)).one()
        ann = conn.execute(select(annotations.c.tag_id).join(tags, tags.c.id == annotations.c.tag_id)
                           .where(annotations.c.item_id == item_id, tags.c.retired.is_(False))).scalars().all()
    return row, ann


def test_labels_keep_the_final_label_by_the_rule(world):
    engine, project, _, users, add = world
    majority, tie, adjudicated, retired = add(4, target=3)
    a, b, c = (project.tag_id(t) for t in "ABC")
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == adjudicated).values(adjudicated_tag_id=c))
    later = T0 + timedelta(seconds=5)
    plan = {majority: ["A", "B", "A"], tie: ["A", "B"], adjudicated: ["A", "A"], retired: ["A", "B"]}
    expected = {majority: (3, a, "human"), tie: (2, None, "conflict"), adjudicated: (2, c, "human"),
                retired: (1, b, "human")}
    for item_id, labels in plan.items():
        for user, tag in zip(users, labels, strict=False):
            assert claim_from(engine, project, user, [item_id]).lease.item_id == item_id
            if item_id == retired and tag == "B":  # A is retired after the first label
                with writing(engine) as conn:
                    conn.execute(update(tags).where(tags.c.id == a).values(retired=True))
            label(engine, project, user, item_id, tag=tag, now=later)
        (n, tag_id, source, adj), tag_ids = _item(engine, item_id)
        assert (n, tag_id, source) == expected[item_id]
        assert (tag_id, source) == final_label(tag_ids, adj) and n == len(tag_ids)
    with reading(engine) as conn:
        row = conn.execute(select(items.c.updated_at).where(items.c.id == majority)).scalar_one()
        audit = conn.execute(select(func.count()).select_from(annotations).where(annotations.c.is_audit)).scalar_one()
    assert row == later and audit == 0


def test_the_annotation_inherits_the_audit_flag(world):
    engine, project, _, (u0, _, _, _, _), add = world
    flagged, plain = add(2)
    claim_from(engine, project, u0, [flagged], audit=True)
    label(engine, project, u0, flagged)
    claim_from(engine, project, u0, [plain])
    label(engine, project, u0, plain)
    with reading(engine) as conn:
        rows = dict(conn.execute(select(annotations.c.item_id, annotations.c.is_audit)).all())
        states = set(conn.execute(select(assignments.c.state)).scalars())
    assert rows == {flagged: True, plain: False} and states == {"labelled"}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # row locks: PostgreSQL's claims
def test_claim_from_skips_items_locked_by_a_concurrent_claim(world):
    engine, project, _, (u0, _, _, _, _), add = world
    locked, free = add(2)
    with engine.connect() as other, other.begin():
        other.execute(select(items.c.id).where(items.c.id == locked).with_for_update())
        claim = claim_from(engine, project, u0, [locked, free])
    assert claim.lease.item_id == free and claim.tried == 2 and claim.not_for_you == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_functions_of_migration_0003_exist_in_the_schema(engine):
    with engine.connect() as conn:
        names = set(conn.execute(text(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()"
        )).scalars())
    assert {"labelloop_claim", "labelloop_label"} <= names


def test_label_many_gives_each_label_the_outcome_label_item_would(world):
    engine, project, _, (u0, u1, u2, _, _), add = world
    solo, pair, refused_tag, done = add(4, target=2)
    for user in (u0, u1):
        claim_from(engine, project, user, [pair])
    claim_from(engine, project, u0, [done])
    claim_from(engine, project, u2, [solo])
    label(engine, project, u0, done)
    before = counts(engine)
    requests = [
        labelling.LabelRequest(project, u2, solo, "B"),
        labelling.LabelRequest(project, u0, pair, "A"),
        labelling.LabelRequest(project, u1, refused_tag, "A"),  # not leased to u1
        labelling.LabelRequest(project, u1, pair, "C"),
        labelling.LabelRequest(project, u0, done, "A"),  # labelled already
        labelling.LabelRequest(project, u0, solo, "Z"),  # no such tag
    ]
    with writing(engine) as conn:
        outcomes = labelling.label_many(conn, requests, now=T0)
    words = [None if o is None else (type(o).__name__, str(o)) for o in outcomes]
    assert words == [
        None,
        None,
        ("ConflictError", f"item {refused_tag} is not leased to you: ask for the next item first"),
        None,
        ("ConflictError", f"you have labelled item {done} already: change it in My history (PUT the label)"),
        ("InvalidInputError", "unknown tag 'Z'; project 'p' has: A, B, C"),
    ]
    n_before, _, _ = before
    assert counts(engine)[0] == n_before + 3
    b = project.tag_id("B")
    assert _item(engine, solo)[0][:3] == (1, b, "human")
    assert _item(engine, pair)[0][:3] == (2, None, "conflict")  # A and C: a tie


def test_claim_many_gives_each_user_what_claim_from_with_renew_would(world):
    engine, project, _, (u0, u1, u2, u3, _), add = world
    held, a1, a2, b1, b2, c1, done_by_u3 = add(7)
    claim_from(engine, project, u0, [held])  # u0 holds a live lease: renewed, nothing tried
    claim_from(engine, project, u3, [done_by_u3])
    skip(engine, project, u3, done_by_u3)
    later = T0 + timedelta(seconds=30)
    with writing(engine) as conn:
        claims = queue.claim_many(conn, project=project, lease_seconds=LEASE, now=later, requests=[
            (u0, [a1, a2]),
            (u1, [held, a1, a2]),  # held is u0's; a1 is free (u0 renewed instead of claiming)
            (u2, []),  # no candidates, no lease: nothing
            (u3, [done_by_u3, b1, b2]),  # skipped by u3: never theirs again
            (u1, [c1]),  # u1 again: the lease made just before is renewed
        ])
    expires = later + timedelta(seconds=LEASE)
    got = [(c.lease and c.lease.item_id, c.lease and c.lease.expires_at, c.tried, c.not_for_you, c.renewed)
           for c in claims]
    assert got == [
        (held, expires, 0, [], True),
        (a1, expires, 2, [], False),
        (None, None, 0, [], False),
        (b1, expires, 2, [done_by_u3], False),
        (a1, expires, 0, [], True),
    ]
    lease = claims[1].lease
    assert lease.display == {"title": "t" + lease.external_id[1:]} and not lease.is_audit
    with reading(engine) as conn:
        live = conn.execute(select(assignments.c.user_id, assignments.c.item_id)
                            .where(assignments.c.state == "leased").order_by(assignments.c.user_id)).all()
    assert [tuple(r) for r in live] == [(u0, held), (u1, a1), (u3, b1)]
