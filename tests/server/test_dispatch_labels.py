"""Claims and labels queued together reach the database together (on PostgreSQL one statement
each for the batch) and each request still gets its own answer: a lease of its own (the same
one again for a user holding one), a label recorded, or a refusal with its own words."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from labelloop.errors import ConflictError, InvalidInputError
from labelloop.server.dispatch import Dispatcher
from labelloop.store import labelling
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _world(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(3)]
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {}, "text": "x",
             "rand": rand_key(1, f"e{i}"), "created_at": T0, "updated_at": T0}
            for i in range(4)
        ])
        ids = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
        for user, item_id in zip(users, ids, strict=False):
            queue.claim_from(conn, project=project, user_id=user, item_ids=[item_id], lease_seconds=600)
    return project, users, ids


def _one_batch(dispatcher: Dispatcher, calls) -> list:
    """Run the calls (coroutine factories) queued behind a blocked operation, so that the writer
    takes them as one batch; their results (or errors) in order."""
    gate, inside = threading.Event(), threading.Event()

    def blocking(conn) -> None:
        inside.set()
        gate.wait(30)

    results: list = []

    async def scenario() -> None:
        blocked = asyncio.ensure_future(dispatcher.run(blocking))
        assert await asyncio.get_running_loop().run_in_executor(None, inside.wait, 30)
        waiting = [asyncio.ensure_future(call()) for call in calls]
        await asyncio.sleep(0.05)
        gate.set()
        await blocked
        results.extend(await asyncio.gather(*waiting, return_exceptions=True))

    # in a thread of its own: another test's event loop may still run in this one (Playwright)
    runner = threading.Thread(target=lambda: asyncio.run(scenario()))
    runner.start()
    runner.join(60)
    dispatcher.stop()
    assert not runner.is_alive()
    return results


def test_claims_of_one_batch_each_get_their_own_lease(engine):
    project, (u0, u1, u2), (i0, i1, i2, _free) = _world(engine)  # u0 holds i0, u1 i1, u2 i2
    with writing(engine) as conn:
        u3, u4 = (store_users.create_user(conn, name=n, role="labeller", password="a long password").id
                  for n in ("u3", "u4"))
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"f{i}", "display": {}, "text": "x",
             "rand": rand_key(1, f"f{i}"), "created_at": T0, "updated_at": T0}
            for i in range(20)
        ])
    dispatcher = Dispatcher(engine, threads=1)
    users = [u0, u3, u4, u3]
    leases = _one_batch(dispatcher, [
        lambda user=user: dispatcher.claim(project=project, user_id=user, lease_seconds=600) for user in users
    ])
    assert dispatcher.batches == 2 and dispatcher.operations == 5
    held = [lease.item_id for lease in leases]
    assert held[0] == i0  # u0's own lease, renewed
    assert held[1] == held[3] and len({held[0], held[1], held[2]}) == 3  # u3 asked twice: one item
    assert not {held[1], held[2]} & {i1, i2}  # held by others
    with reading(engine) as conn:
        live = conn.execute(select(func.count()).select_from(assignments)
                            .where(assignments.c.state == "leased")).scalar_one()
    assert live == 5  # u0, u1, u2 from before; u3 and u4 one each


def test_labels_of_one_batch_each_get_their_own_outcome(engine):
    project, (u0, u1, u2), (i0, i1, i2, free) = _world(engine)
    dispatcher = Dispatcher(engine, threads=1)
    labels = [
        labelling.LabelRequest(project, u0, i0, "A"),
        labelling.LabelRequest(project, u1, free, "A"),  # not leased to u1
        labelling.LabelRequest(project, u1, i1, "B"),
        labelling.LabelRequest(project, u2, i2, "Nope"),  # no such tag
    ]
    results = _one_batch(dispatcher, [lambda r=r: dispatcher.label(r) for r in labels])
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ConflictError) and str(results[1]) == (
        f"item {free} is not leased to you: ask for the next item first")
    assert isinstance(results[3], InvalidInputError)
    assert dispatcher.batches == 2 and dispatcher.operations == 5
    with reading(engine) as conn:
        labelled = dict(conn.execute(select(annotations.c.item_id, annotations.c.tag_id)).all())
        n_labels = dict(conn.execute(select(items.c.id, items.c.n_labels)).all())
        total = conn.execute(select(func.count()).select_from(annotations)).scalar_one()
    assert labelled == {i0: project.tag_id("A"), i1: project.tag_id("B")} and total == 2
    assert n_labels == {i0: 1, i1: 1, i2: 0, free: 0}


def test_a_claim_behind_a_skip_in_the_same_batch_runs_after_it(engine):
    project, (u0, _u1, _u2), (i0, _i1, _i2, free) = _world(engine)  # u0 holds i0
    dispatcher = Dispatcher(engine, threads=1)
    claim = lambda: dispatcher.claim(project=project, user_id=u0, lease_seconds=600)  # noqa: E731
    skip = lambda: dispatcher.run(  # noqa: E731
        lambda conn: dispatcher.skip(conn, project=project, user_id=u0, item_id=i0))
    skipped, lease, again = _one_batch(dispatcher, [skip, claim, claim])
    assert skipped is None and lease.item_id == free and again.item_id == free
