"""Labels queued together reach the database together (on PostgreSQL one statement for the
batch) and each request still gets its own answer: recorded, or refused with its own words."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from labelloop.errors import ConflictError, InvalidInputError
from labelloop.server.dispatch import Dispatcher
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, items

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _world(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="password1").id
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


def test_labels_of_one_batch_each_get_their_own_outcome(engine):
    project, (u0, u1, u2), (i0, i1, i2, free) = _world(engine)
    dispatcher = Dispatcher(engine, threads=1)
    gate, inside = threading.Event(), threading.Event()

    def blocking(conn) -> None:
        inside.set()
        gate.wait(30)

    results: list = []

    async def scenario() -> None:
        blocked = asyncio.ensure_future(dispatcher.run(blocking))
        assert await asyncio.get_running_loop().run_in_executor(None, inside.wait, 30)
        # queued behind the blocked operation: the writer takes them as one batch
        labels = [
            queue.LabelRequest(project, u0, i0, "A"),
            queue.LabelRequest(project, u1, free, "A"),  # not leased to u1
            queue.LabelRequest(project, u1, i1, "B"),
            queue.LabelRequest(project, u2, i2, "Nope"),  # no such tag
        ]
        waiting = [asyncio.ensure_future(dispatcher.label(r)) for r in labels]
        await asyncio.sleep(0.05)
        gate.set()
        await blocked
        results.extend(await asyncio.gather(*waiting, return_exceptions=True))

    runner = threading.Thread(target=lambda: asyncio.run(scenario()))
    runner.start()
    runner.join(60)
    dispatcher.stop()
    assert not runner.is_alive()
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
