"""Multi-label review: per-tag conflicts in the review queue, and adjudication of a whole set."""
# ruff: noqa: F811  (the fixture `setup` is imported from test_multilabel_labelling)

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_multilabel_labelling import LEASE, T0, A, B, C, add_items, item_state, setup  # noqa: F401

from labelloop.errors import InvalidInputError
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.browse import audit_entries
from labelloop.store.review import adjudicate, review_queue
from labelloop.store.schema import items


def label_all(engine, project, item_id, plan):
    for user, chosen in plan:
        with writing(engine) as conn:
            claim = queue.claim_from(conn, project=project, user_id=user, item_ids=[item_id], lease_seconds=LEASE,
                                     now=T0)
            assert claim.lease is not None
            labelling.label_item(conn, project=project, user_id=user, item_id=item_id, tags=chosen, now=T0)


def test_a_per_tag_tie_goes_to_review_and_adjudication_sets_the_whole_set(setup):
    engine, project, (u0, u1, u2) = setup
    add_items(engine, project, 4, target=3)
    with reading(engine) as conn:
        agreed, majority, tie, single = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all()
    label_all(engine, project, agreed, [(u0, ["A"]), (u1, ["A"]), (u2, ["A"])])
    label_all(engine, project, majority, [(u0, ["A", "B"]), (u1, ["A"]), (u2, ["A", "B"])])
    label_all(engine, project, tie, [(u0, ["A", "B"]), (u1, ["A", "C"])])  # B and C tie 1/2, A in
    label_all(engine, project, single, [(u0, ["C"])])
    assert item_state(engine, majority) == (3, A | B, "human", None)
    assert item_state(engine, tie) == (2, None, "conflict", None)
    with reading(engine) as conn:
        page = review_queue(conn, project=project)
    assert (page.total, page.conflicts) == (2, 1)
    first, second = page.items
    assert first.id == tie and first.multi_label and first.label_source == "conflict" and first.label_set is None
    assert first.conflict_tags == ["B", "C"]
    assert first.sets == [("u0", ["A", "B"]), ("u1", ["A", "C"])]
    assert first.label is None and first.labels == []
    assert second.id == majority and second.label_set == ["A", "B"] and second.conflict_tags == []
    assert second.sets == [("u0", ["A", "B"]), ("u1", ["A"]), ("u2", ["A", "B"])]

    with writing(engine) as conn:
        state = adjudicate(conn, project=project, item_id=tie, tags=["C", "B"], user_id=None)
        log = audit_entries(conn, project_id=project.id)
    assert state == {"item_id": tie, "external_id": state["external_id"], "labels": ["B", "C"],
                     "label_source": "human"}
    assert item_state(engine, tie) == (2, B | C, "human", None)
    with reading(engine) as conn:  # decided: it needs no third labeller, and it left the queue
        assert conn.execute(select(items.c.target_labels, items.c.adjudicated_mask)
                            .where(items.c.id == tie)).one() == (2, B | C)
        page = review_queue(conn, project=project)
    assert [i.id for i in page.items] == [majority]
    entry = next(e for e in log if e["action"] == "item.adjudicate")
    assert entry["details"]["tags"] == ["B", "C"] and entry["details"]["previous"] == "conflict"

    with writing(engine) as conn:  # "none of these applies" is a set too
        adjudicate(conn, project=project, item_id=majority, tags=[], user_id=None)
    assert item_state(engine, majority) == (3, 0, "human", None)


def test_adjudication_refuses_the_wrong_shape_and_unknown_tags(setup):
    engine, project, (u0, u1, _) = setup
    add_items(engine, project, 1, target=2)
    with reading(engine) as conn:
        item_id = conn.execute(select(items.c.id)).scalar_one()
    label_all(engine, project, item_id, [(u0, ["A"]), (u1, ["B"])])
    for kwargs, words in [({"tag": "A"}, "is multi-label: send the list"), ({"tags": ["Q"]}, "unknown tag 'Q'")]:
        with writing(engine) as conn, pytest.raises(InvalidInputError, match=words):
            adjudicate(conn, project=project, item_id=item_id, user_id=None, **kwargs)
    assert item_state(engine, item_id) == (2, None, "conflict", None)
    with writing(engine) as conn:
        single = store_projects.create_project(conn, name="sl", labels=["A"])
        with pytest.raises(InvalidInputError, match="single-label: send one tag"):
            adjudicate(conn, project=single, item_id=item_id, tags=["A"], user_id=None)
