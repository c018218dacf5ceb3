"""Agreement per codebook version (orchestrator/quality.py ``agreement_by_version``, over
store/codebook.py ``overlap_by_version``), single- and multi-label, on both databases; and the
dashboard's table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labelloop.orchestrator.quality import agreement_by_version
from labelloop.store import codebook as cb
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("multi", [False, True])
def test_agreement_is_grouped_by_the_version_labels_were_made_under(engine, multi):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1, multi_label=multi)
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password").id
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password").id
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {}, "text": f"t{i}", "rand": rand_key(1, f"e{i}"),
             "target_labels": 2, "created_at": T0, "updated_at": T0} for i in range(5)])
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())

    def give(user, item, tag):
        with writing(engine) as conn:
            assert isinstance(queue.try_claim(conn, project=project, user_id=user, item_id=item, lease_seconds=60),
                              queue.Lease)
            label = {"tags": [tag]} if multi else {"tag": tag}
            labelling.label_item(conn, project=project, user_id=user, item_id=item, **label)

    give(ann, ids[0], "A"), give(bob, ids[0], "B")  # before the codebook: one disagreement,
    give(ann, ids[1], "A"), give(bob, ids[1], "A")  # one agreement
    give(ann, ids[4], "A")  # the item's labels will span two versions: in neither group
    with writing(engine) as conn:
        cb.set_definition(conn, project=project, tag="A", definition="apples", user_id=None)
    give(bob, ids[4], "B")
    give(ann, ids[2], "A"), give(bob, ids[2], "A")
    give(ann, ids[3], "B"), give(bob, ids[3], "B")
    with reading(engine) as conn:
        rows = agreement_by_version(conn, project=project)
    assert [(r["version"], r["labels"], r["items_with_overlap"], r["pairs"], r["percent"]) for r in rows] == [
        (None, 5, 2, 2, 0.5), (1, 5, 2, 2, 1.0)]
    assert rows[1]["krippendorff_alpha"] == pytest.approx(1.0)
