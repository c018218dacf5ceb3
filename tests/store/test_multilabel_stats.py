"""Progress figures, the data browser and item reads of multi-label projects."""
# ruff: noqa: F811  (the fixture `setup` is imported from test_multilabel_labelling)

from __future__ import annotations

from sqlalchemy import select
from test_multilabel_labelling import add_items, setup  # noqa: F401
from test_multilabel_review import label_all

from labelloop.store import reading
from labelloop.store.browse import browse_item, browse_items
from labelloop.store.items import get_item, project_summary
from labelloop.store.runs import count_human_labels
from labelloop.store.schema import items
from labelloop.store.stats import project_stats, projects_overview


def test_an_item_counts_once_per_tag_of_its_final_set(setup):
    engine, project, (u0, u1, u2) = setup
    add_items(engine, project, 5, target=1)
    with reading(engine) as conn:
        ids = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
    label_all(engine, project, ids[0], [(u0, ["A", "B"])])
    label_all(engine, project, ids[1], [(u1, ["B"])])
    label_all(engine, project, ids[2], [(u2, [])])  # labelled: none applies
    with reading(engine) as conn:
        stats = project_stats(conn, project=project, user_id=u0)
        summary = project_summary(conn, project=project)
        overview = projects_overview(conn)
        human = count_human_labels(conn, project_id=project.id)
        first = get_item(conn, project=project, item_id=ids[0])
        none = get_item(conn, project=project, item_id=ids[2])
        with_b = browse_items(conn, project=project, tag="B")
        row = browse_item(conn, project=project, item_id=ids[0])
    assert (stats["items"], stats["labelled"], stats["remaining"], stats["conflicts"]) == (5, 3, 2, 0)
    assert stats["per_tag"] == {"A": 1, "B": 2, "C": 0} and stats["yours_total"] == 1
    assert summary["labelled"] == 3 and summary["labels"] == {"A": 1, "B": 2, "C": 0}
    assert overview == [{"name": "ml", "items": 5, "labelled": 3, "remaining": 2}]
    assert human == 3
    assert (first.label, first.labels, none.labels) == (None, ["A", "B"], [])
    assert [r.id for r in with_b.rows] == ids[:2]
    assert row.label_set == ["A", "B"] and row.label == "A, B" and row.annotations == [("u0", "A, B", "human")]
