"""Overlap items (a share F labelled by k different people) and `configure` at the store level."""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict

import pytest
from sqlalchemy import select

from labelloop.config import Settings
from labelloop.errors import InvalidInputError
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.store import labelling
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.browse import audit_entries
from labelloop.store.configure import configure_project, effective_settings
from labelloop.store.items import OVERLAP_SCALE, target_labels_for
from labelloop.store.schema import annotations, assignments, items

TAGS = ["A", "B", "C"]


def make_project(engine, *, n, settings=None, labelled=0, name="p"):
    with writing(engine) as conn:
        store_projects.create_project(conn, name=name, labels=TAGS, seed=11, settings=settings or {})
    records = [{"id": f"i{i}", "text": f"text number {i}", "y": TAGS[i % 3] if i < labelled else ""} for i in range(n)]
    import_source(engine, project=name, source=MappingSource(records),
                  options=ImportOptions(id_column="id", text_columns=["text"], label_column="y"),
                  settings=Settings(database_url=str(engine.url)))
    with reading(engine) as conn:
        return store_projects.get_project(conn, name=name)


def item_rows(engine, project):
    with reading(engine) as conn:
        return conn.execute(
            select(items.c.id, items.c.external_id, items.c.rand, items.c.n_labels, items.c.target_labels)
            .where(items.c.project_id == project.id).order_by(items.c.id)
        ).all()


def test_the_importer_gives_overlap_items_k_labellers_by_the_rand_rule(engine):
    project = make_project(engine, n=400, settings={"overlap_fraction": 0.3, "overlap_k": 3}, labelled=40)
    rows = item_rows(engine, project)
    for r in rows:
        expected = 1 if r.n_labels else target_labels_for(r.rand, fraction=0.3, k=3)
        assert r.target_labels == expected
        assert expected == (3 if not r.n_labels and r.rand % OVERLAP_SCALE < 300_000 else 1)
    unlabelled = [r for r in rows if not r.n_labels]
    share = sum(r.target_labels == 3 for r in unlabelled) / len(unlabelled)
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(unlabelled))
    # The overlap rule does not follow the serving order: overlap items are spread over it.
    by_rand = sorted(unlabelled, key=lambda r: r.rand)
    first, second = by_rand[: len(by_rand) // 2], by_rand[len(by_rand) // 2 :]
    assert sum(r.target_labels == 3 for r in first) > 0 and sum(r.target_labels == 3 for r in second) > 0


def test_no_overlap_by_default(engine):
    project = make_project(engine, n=50)
    assert {r.target_labels for r in item_rows(engine, project)} == {1}


def test_configure_retargets_only_items_without_labels_and_is_audit_logged(engine):
    project = make_project(engine, n=300, labelled=30)
    before = {r.id: r for r in item_rows(engine, project)}
    with writing(engine) as conn:
        done = configure_project(conn, project=project, values={"overlap_fraction": 0.5, "overlap_k": 2,
                                                                "audit_fraction": 0.1})
        project = store_projects.get_project(conn, name="p")
        log = audit_entries(conn, project_id=project.id)
    after = item_rows(engine, project)
    expected_changed = [r for r in after if not r.n_labels and target_labels_for(r.rand, fraction=0.5, k=2) == 2]
    assert done.retargeted == len(expected_changed) > 100
    for r in after:
        if r.n_labels:
            assert r.target_labels == before[r.id].target_labels == 1
        else:
            assert r.target_labels == target_labels_for(r.rand, fraction=0.5, k=2)
    assert done.changes == {"overlap_fraction": (0.0, 0.5), "audit_fraction": (0.05, 0.1)}  # k was 2 already
    assert effective_settings(project)["overlap_fraction"] == 0.5
    assert log[0]["action"] == "project.configure"
    assert log[0]["details"]["changes"]["overlap_fraction"] == {"from": 0.0, "to": 0.5}
    assert log[0]["details"]["retargeted_items"] == done.retargeted
    # Back to no overlap: every unlabelled item needs one labeller again.
    with writing(engine) as conn:
        configure_project(conn, project=project, values={"overlap_fraction": 0})
    assert {r.target_labels for r in item_rows(engine, project)} == {1}


@pytest.mark.parametrize("values", [{"overlap_fraction": 1.5}, {"overlap_k": 1}, {"audit_fraction": -0.1},
                                    {"lease_seconds": 2}, {"min_new_labels": 0}, {"model": ""},
                                    {"class_weight": "heavy"}, {"exploration": "lots"}])
def test_invalid_settings_change_nothing(engine, values):
    project = make_project(engine, n=20)
    with writing(engine) as conn, pytest.raises(InvalidInputError):
        configure_project(conn, project=project, values=values)
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="p").settings == {}
        assert audit_entries(conn, project_id=project.id) == []


def test_overlap_0_3_k_2_with_concurrent_labellers(engine):
    """Four labellers (threads, each with its own connections) label everything; audit draws on."""
    n_items, n_users = 200, 4
    project = make_project(engine, n=n_items, settings={"overlap_fraction": 0.3, "overlap_k": 2,
                                                         "audit_fraction": 0.2})
    with writing(engine) as conn:
        users = [store_users.create_user(conn, name=f"u{i}", role="labeller", password="a long password").id
                 for i in range(n_users)]
    errors: list[BaseException] = []
    start = threading.Barrier(n_users)

    def labeller(user_id: int, seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            while True:
                with writing(engine) as conn:
                    lease = queue.next_item(conn, project=project, user_id=user_id, lease_seconds=600, rng=rng)
                if lease is None:
                    return
                with writing(engine) as conn:
                    labelling.label_item(conn, project=project, user_id=user_id, item_id=lease.item_id,
                                     tag=TAGS[rng.randrange(3)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=labeller, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]

    with reading(engine) as conn:
        labellers = defaultdict(list)
        for item_id, user_id in conn.execute(
            select(annotations.c.item_id, annotations.c.user_id).where(annotations.c.project_id == project.id)
        ):
            labellers[item_id].append(user_id)
        n_audit = conn.execute(select(assignments.c.id).where(assignments.c.is_audit.is_(True))).all()
    rows = item_rows(engine, project)
    overlap = [r for r in rows if r.target_labels == 2]
    assert {r.target_labels for r in rows} == {1, 2}
    for r in rows:
        assert r.n_labels == r.target_labels
        assert len(labellers[r.id]) == r.target_labels  # exactly k labels for overlap items, else 1
        assert len(set(labellers[r.id])) == len(labellers[r.id])  # never the same labeller twice
    share = len(overlap) / n_items
    assert abs(share - 0.3) < 3 * math.sqrt(0.3 * 0.7 / n_items)  # binomial tolerance (3 sigma)
    assert len(n_audit) > 0
