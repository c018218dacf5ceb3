"""The data browser's queries (keyset pagination, filters, search) and the audit log, on both databases."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from labelloop.errors import InvalidInputError
from labelloop.store import reading, writing
from labelloop.store import scores as store_scores
from labelloop.store import browse
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import refresh_items
from labelloop.store.schema import annotations, items, model_runs, projects, utcnow


def add_items(conn, project, texts, *, prefix="x"):
    now = utcnow()
    rows = [
        {
            "project_id": project.id,
            "external_id": f"{prefix}{i}",
            "display": {"title": t.split("\n")[0], "body": t},
            "text": t,
            "rand": rand_key(project.seed, f"{prefix}{i}"),
            "created_at": now,
            "updated_at": now,
        }
        for i, t in enumerate(texts)
    ]
    conn.execute(insert(items), rows)
    return list(
        conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id)).scalars()
    )


def label(conn, project, item_id, tag, *, user_id=None, source="human", when=None):
    now = when or utcnow()
    conn.execute(
        insert(annotations).values(
            project_id=project.id, item_id=item_id, user_id=user_id, tag_id=project.tag_id(tag),
            source=source, created_at=now, updated_at=now,
        )
    )
    refresh_items(conn, item_ids=[item_id])


def add_run(conn, project, scores):
    """scores: {item_id: (priority, confidence)}; makes the run current."""
    run_id = conn.execute(
        insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="m", strategy="margin",
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    store_scores.insert_scores(
        conn, run_id=run_id, item_ids=list(scores), priorities=[p for p, _ in scores.values()],
        predicted_tag_ids=[project.tag_id("A")] * len(scores), confidences=[c for _, c in scores.values()],
    )
    conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
    return run_id


@pytest.fixture
def proj(engine):
    with writing(engine) as conn:
        return store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=1)


def all_pages(engine, name, *, allow_short=False, **kw):
    seen, pages, cursor = [], 0, None
    while True:
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name=name)
            page = browse.browse_items(conn, project=project, after=cursor, **kw)
        seen += page.rows
        pages += 1
        assert len(page.rows) <= kw.get("limit", 50)
        if page.next_cursor is None:
            return seen, pages
        if not allow_short:
            assert len(page.rows) == kw.get("limit", 50), "only the last page may be short"
        cursor = page.next_cursor


def test_keyset_by_id_returns_every_item_once_in_order(engine, proj):
    with writing(engine) as conn:
        ids = add_items(conn, proj, [f"text {i}" for i in range(23)])
    rows, pages = all_pages(engine, "p", limit=5)
    assert [r.id for r in rows] == ids
    assert pages == 5
    # an exact multiple of the page size ends without an empty extra page
    rows, pages = all_pages(engine, "p", limit=23)
    assert len(rows) == 23 and pages == 1


@pytest.mark.parametrize("sort", ["priority", "confidence"])
def test_keyset_by_score_sees_every_item_once_with_ties_and_unscored_last(engine, proj, sort):
    rng = random.Random(4)
    with writing(engine) as conn:
        ids = add_items(conn, proj, [f"text {i}" for i in range(40)])
        # many ties (few distinct values), some items without a score, some with null confidence
        scores = {
            i: (float(rng.choice([0.5, 1.0, 2.25, 3.0])), rng.choice([None, 0.1, 0.7, 0.9]))
            for i in ids
            if rng.random() < 0.8
        }
        add_run(conn, proj, scores)
    rows, _ = all_pages(engine, "p", sort=sort, limit=3)
    assert sorted(r.id for r in rows) == ids and len(rows) == len(ids)
    if sort == "priority":
        keyed = sorted((-p, i) for i, (p, _c) in scores.items())
    else:
        keyed = sorted((c, i) for i, (_p, c) in scores.items() if c is not None)
    unscored = sorted(set(ids) - {i for _, i in keyed})
    assert [r.id for r in rows] == [i for _, i in keyed] + unscored
    scored_row = next(r for r in rows if r.id in scores)
    assert (scored_row.priority, scored_row.confidence) == scores[scored_row.id]
    assert scored_row.predicted == "A"


def test_score_sort_without_a_model_run_falls_back_to_id_order(engine, proj):
    with writing(engine) as conn:
        ids = add_items(conn, proj, ["a", "b", "c", "d"])
    rows, pages = all_pages(engine, "p", sort="priority", limit=3)
    assert [r.id for r in rows] == ids and pages == 2
    assert rows[0].priority is None


def test_filters(engine, proj):
    with writing(engine) as conn:
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password")
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password")
        ids = add_items(conn, proj, [f"t{i}" for i in range(8)])
        label(conn, proj, ids[0], "A", user_id=ann.id)
        label(conn, proj, ids[1], "B", user_id=ann.id)
        label(conn, proj, ids[1], "B", user_id=bob.id)
        label(conn, proj, ids[2], "A", user_id=ann.id)
        label(conn, proj, ids[2], "C", user_id=bob.id)  # a tie: conflict
        label(conn, proj, ids[3], "C", source="import")

    def find(**kw):
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name="p")
            return [r.id for r in browse.browse_items(conn, project=project, **kw).rows]

    assert find(tag="A") == [ids[0]]
    assert find(tag="B") == [ids[1]]
    assert find(tag="C") == [ids[3]]
    assert find(source="conflict") == [ids[2]]
    assert find(source="import") == [ids[3]]
    assert find(source="human") == ids[:3]
    assert find(labelled=True) == ids[:4]
    assert find(labelled=False) == ids[4:]
    assert find(labeller="bob") == [ids[1], ids[2]]
    assert find(labeller="ann", tag="B") == [ids[1]]
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="p")
        row = browse.browse_items(conn, project=project, labeller="bob", limit=1).rows[0]
    assert row.annotations == [("ann", "B", "human"), ("bob", "B", "human")]
    assert row.label == "B" and row.n_labels == 2
    for bad in ({"tag": "nope"}, {"source": "robot"}, {"labeller": "nobody"}, {"sort": "rand"}, {"limit": 0}):
        with pytest.raises(InvalidInputError):
            find(**bad)


def test_search_treats_wildcards_literally_and_ignores_case(engine, proj):
    texts = ["100% sure", "100 percent", "snake_case", "snakeXcase", "back\\slash", "Hello World", "x"]
    with writing(engine) as conn:
        ids = add_items(conn, proj, texts)

    def find(term):
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name="p")
            return [texts[ids.index(r.id)] for r in browse.browse_items(conn, project=project, search=term).rows]

    assert find("0%") == ["100% sure"]
    assert find("%") == ["100% sure"]
    assert find("e_c") == ["snake_case"]
    assert find("_") == ["snake_case"]
    assert find("k\\s") == ["back\\slash"]
    assert find("hello w") == ["Hello World"]
    assert find("'; DROP TABLE items; --") == []
    assert find("x9") == []
    # the external id is searched too
    assert find("x6") == ["x"]


def test_search_paging_combines_with_the_cursor(engine, proj):
    with writing(engine) as conn:
        ids = add_items(conn, proj, [("needle " if i % 3 == 0 else "hay ") + str(i) for i in range(30)])
    rows, pages = all_pages(engine, "p", search="needle", limit=4)
    assert [r.id for r in rows] == ids[::3]
    assert pages == 3


def test_bad_cursor_is_a_clear_error(engine, proj):
    with reading(engine) as conn:
        for cursor, sort in (("zz", "id"), ("s1.0:4", "id"), ("i3", "priority"), ("sabc:1", "priority")):
            with pytest.raises(InvalidInputError, match="cursor"):
                browse.browse_items(conn, project=proj, after=cursor, sort=sort)


@pytest.mark.parametrize("cursor, sort", [
    ("i99999999999999999999999", "id"), ("i9223372036854775808", "id"), ("i-5", "id"), ("i\u0663", "id"),
    ("i 5", "id"), ("u99999999999999999999", "priority"), ("s99999999999:1", "priority"),
    ("s1:99999999999999999999", "priority"), ("s1:99999999999999999999", "confidence"), ("snan:1", "confidence"),
    ("sinf:1", "confidence"), ("s1e400:1", "confidence"), ("s1_0:1", "confidence"), ("s1:2:3", "confidence"),
])
def test_cursors_out_of_the_columns_range_are_a_clear_error(engine, proj, cursor, sort):
    """Numbers too large for the columns, non-finite keys, non-ASCII digits: refused before any
    query (they overflowed in the SQLite driver: a 500 in the data browser)."""
    with reading(engine) as conn:
        with pytest.raises(InvalidInputError, match=r"invalid page cursor .* start again from the first page"):
            browse.browse_items(conn, project=proj, after=cursor, sort=sort)
        # the largest values the columns hold are fine (nothing follows them)
        assert browse.browse_items(conn, project=proj, after=f"i{2**63 - 1}", sort="id").rows == []
        assert browse.browse_items(conn, project=proj, after=f"u{2**63 - 1}", sort="priority").rows == []


def test_labeller_counts_and_labels_per_day(engine, proj):
    now = utcnow()
    with writing(engine) as conn:
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password")
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password")
        ids = add_items(conn, proj, [f"t{i}" for i in range(6)])
        label(conn, proj, ids[0], "A", user_id=ann.id, when=now - timedelta(days=2))
        label(conn, proj, ids[1], "A", user_id=ann.id)
        label(conn, proj, ids[2], "B", user_id=ann.id)
        label(conn, proj, ids[3], "B", user_id=bob.id, when=now - timedelta(days=2))
        label(conn, proj, ids[4], "C", source="import")
    with reading(engine) as conn:
        counts = browse.labeller_counts(conn, project_id=proj.id, now=now)
        per_day = browse.labels_per_day(conn, project_id=proj.id, days=7, now=now)
    assert counts == [{"name": "ann", "total": 3, "today": 2}, {"name": "bob", "total": 1, "today": 0}]
    assert len(per_day) == 7
    assert list(per_day.values())[-1] == 2 and list(per_day.values())[-3] == 2
    assert sum(per_day.values()) == 4
    assert list(per_day)[-1] == now.strftime("%Y-%m-%d")


@pytest.mark.parametrize(("sort", "window"), [("id", 1), ("priority", 7), ("confidence", 7)])
def test_sparse_filters_scan_in_windows_and_still_see_every_match_once(engine, proj, sort, window):
    """With a small scan window and no time budget, each request examines one window:
    pages are short or empty, yet following the cursors finds every match exactly once."""
    rng = random.Random(9)
    with writing(engine) as conn:
        ids = add_items(conn, proj, [("needle " if i % 5 == 0 else "hay ") + str(i) for i in range(60)])
        scores = {i: (float(rng.choice([0.1, 0.5, 0.9])), rng.choice([None, 0.2, 0.8])) for i in ids[:45]}
        add_run(conn, proj, scores)
    rows, pages = all_pages(engine, "p", allow_short=True, search="needle", sort=sort, limit=4,
                            scan_window=window, time_budget=0.0)
    needles = [i for n, i in enumerate(ids) if n % 5 == 0]
    assert sorted(r.id for r in rows) == needles and len(rows) == len(needles)
    assert pages > len(needles) / 4  # short pages happened
    # with a time budget the same pages fill up
    full, full_pages = all_pages(engine, "p", search="needle", sort=sort, limit=4, scan_window=window)
    assert [r.id for r in full] == [r.id for r in rows]
    assert full_pages == 3
