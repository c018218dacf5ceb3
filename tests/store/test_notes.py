"""Comments, flags and skip reasons (store/notes.py), on both databases: recording, validation,
the flags page's listing and paging, resolving, undo, the data browser's filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store import browse, labelling, notes, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import item_notes, items

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def setup(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=3)
        other = store_projects.create_project(conn, name="other", labels=["A"], seed=1)
        who = {name: store_users.create_user(conn, name=name, role=role, password="a long password").id
               for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))}
        for proj, count in ((project, 6), (other, 1)):
            conn.execute(insert(items), [
                {"project_id": proj.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"text {i}",
                 "rand": rand_key(proj.seed, f"e{i}"), "target_labels": 2, "created_at": T0, "updated_at": T0}
                for i in range(count)])
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).scalars())
        foreign = conn.execute(select(items.c.id).where(items.c.project_id == other.id)).scalar_one()
    return engine, project, who, ids, foreign


def _lease(conn, project, user, item_id):
    lease = queue.try_claim(conn, project=project, user_id=user, item_id=item_id, lease_seconds=600)
    assert isinstance(lease, queue.Lease), lease


def label(engine, project, user, item_id, tag="A", *, at=None, **note):
    with writing(engine) as conn:
        _lease(conn, project, user, item_id)
        labelling.label_item(conn, project=project, user_id=user, item_id=item_id, tag=tag)
        return notes.add_label_note(conn, project=project, user_id=user, item_id=item_id, now=at, **note)


def skip(engine, project, user, item_id, *, at=None, **note):
    with writing(engine) as conn:
        _lease(conn, project, user, item_id)
        labelling.skip_item(conn, project=project, user_id=user, item_id=item_id)
        return notes.add_skip_note(conn, project=project, user_id=user, item_id=item_id, now=at, **note)


def all_notes(engine):
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(select(item_notes.c.item_id, item_notes.c.user_id, item_notes.c.kind,
                                                      item_notes.c.reason, item_notes.c.text).order_by(item_notes.c.id))]


def test_notes_are_recorded_only_when_there_is_something_to_say(setup):
    engine, project, who, ids, _ = setup
    assert label(engine, project, who["ann"], ids[0]) is None  # a plain label: no row
    assert label(engine, project, who["ann"], ids[1], comment="   ") is None  # blank comment: nothing
    assert skip(engine, project, who["ann"], ids[2]) is None
    assert all_notes(engine) == []
    label(engine, project, who["ann"], ids[3], comment="  sarcasm?  ", unsure=True)
    label(engine, project, who["bob"], ids[3], "B", comment="clearly B")
    skip(engine, project, who["bob"], ids[4], reason="off-topic")
    skip(engine, project, who["bob"], ids[5], reason="needs-context", comment="which thread?")
    label(engine, project, who["bob"], ids[0], unsure=True)
    assert all_notes(engine) == [
        (ids[3], who["ann"], "unsure", None, "sarcasm?"),
        (ids[3], who["bob"], "comment", None, "clearly B"),
        (ids[4], who["bob"], "skip", "off-topic", None),
        (ids[5], who["bob"], "skip", "needs-context", "which thread?"),
        (ids[0], who["bob"], "unsure", None, None),
    ]


def test_bad_notes_are_refused_and_the_transaction_keeps_nothing(setup):
    engine, project, who, ids, _ = setup
    with pytest.raises(InvalidInputError, match="unknown skip reason 'bored': use one of unclear, off-topic, "
                                                "needs-context, other"):
        skip(engine, project, who["ann"], ids[0], reason="bored")
    with pytest.raises(InvalidInputError, match="keep it to 2,000"):
        label(engine, project, who["ann"], ids[1], comment="x" * 2001)
    with pytest.raises(InvalidInputError, match="NUL"):
        label(engine, project, who["ann"], ids[1], comment="a\x00b")
    label(engine, project, who["ann"], ids[2], comment="y" * 2000)  # the limit itself is fine
    with reading(engine) as conn:
        # the refused ones rolled back with their label / skip: the items are still open to ann
        assert conn.execute(select(func.count()).select_from(item_notes)).scalar_one() == 1
        assert conn.execute(select(items.c.n_labels).where(items.c.id == ids[1])).scalar_one() == 0


def test_flags_page_lists_items_newest_first_with_paging_and_counts(setup):
    engine, project, who, ids, _ = setup
    for n, item in enumerate(ids[:5]):
        label(engine, project, who["ann"], item, unsure=True, comment=f"c{n}", at=T0 + timedelta(minutes=n))
    label(engine, project, who["bob"], ids[0], "B", comment="me too", at=T0 + timedelta(minutes=9))
    skip(engine, project, who["bob"], ids[5], reason="unclear")
    with reading(engine) as conn:
        first = notes.flagged_items(conn, project=project, limit=2)
        assert [i.id for i in first.items] == [ids[5], ids[0]]  # the newest note first
        assert [(n.user, n.kind, n.text) for n in first.items[1].notes] == [("ann", "unsure", "c0"),
                                                                           ("bob", "comment", "me too")]
        assert first.items[0].notes[0].reason == "unclear" and first.items[0].display == {"title": "t5"}
        assert first.open_counts == {"comment": 6, "unsure": 5, "skip": 1}  # comment: any note with one
        seen = [i.id for i in first.items]
        after = first.next_after
        while after is not None:
            page = notes.flagged_items(conn, project=project, limit=2, after=after)
            seen += [i.id for i in page.items]
            after = page.next_after
        assert seen == [ids[5], ids[0], ids[4], ids[3], ids[2], ids[1]]  # each once
        only_skips = notes.flagged_items(conn, project=project, kind="skip")
        assert [i.id for i in only_skips.items] == [ids[5]]
        commented = notes.flagged_items(conn, project=project, kind="comment", limit=10)
        assert [i.id for i in commented.items] == [ids[0], ids[4], ids[3], ids[2], ids[1]]  # not the bare skip
        with pytest.raises(InvalidInputError, match="unknown kind"):
            notes.flagged_items(conn, project=project, kind="nope")


def test_resolving_a_note_or_an_item(setup):
    engine, project, who, ids, foreign = setup
    note = label(engine, project, who["ann"], ids[0], unsure=True)
    label(engine, project, who["bob"], ids[0], "B", comment="hm")
    other = label(engine, project, who["ann"], ids[1], comment="typo in the text")
    with writing(engine) as conn:
        assert notes.resolve_note(conn, project=project, note_id=other, user_id=who["boss"]) is True
        assert notes.resolve_note(conn, project=project, note_id=other, user_id=who["boss"]) is False  # already
        other_project = store_projects.get_project(conn, name="other")
        with pytest.raises(NotFoundError, match=f"no note {note} in project 'other'"):
            notes.resolve_note(conn, project=other_project, note_id=note, user_id=who["boss"])
        assert notes.resolve_item(conn, project=project, item_id=ids[0], user_id=who["boss"]) == 2
    with reading(engine) as conn:
        assert notes.flagged_items(conn, project=project).items == []
        done = notes.flagged_items(conn, project=project, state="resolved")
        assert sorted(i.id for i in done.items) == sorted(ids[:2])
        assert {n.resolved_by for i in done.items for n in i.notes} == {"boss"}
        assert done.open_counts == {"comment": 0, "unsure": 0, "skip": 0}


def test_undo_forgets_the_open_notes_of_the_undone_label(setup):
    engine, project, who, ids, _ = setup
    label(engine, project, who["ann"], ids[0], unsure=True, comment="unsure")
    label(engine, project, who["bob"], ids[0], "B", comment="bob's")
    with writing(engine) as conn:
        undone = labelling.undo_last(conn, project=project, user_id=who["ann"], lease_seconds=600)
        assert notes.forget_notes(conn, project=project, user_id=who["ann"], item_id=undone.item_id) == 1
    assert all_notes(engine) == [(ids[0], who["bob"], "comment", None, "bob's")]


def test_browser_filter_and_export_view(setup):
    engine, project, who, ids, _ = setup
    label(engine, project, who["ann"], ids[0], unsure=True)
    label(engine, project, who["ann"], ids[1], comment="see the title")
    skip(engine, project, who["ann"], ids[2], reason="other", comment="spam")
    with reading(engine) as conn:
        def found(which):
            return [r.id for r in browse.browse_items(conn, project=project, notes=which).rows]
        assert found("flagged") == [ids[0]]
        assert found("commented") == [ids[1], ids[2]]
        assert found("skipped") == [ids[2]]
        assert found("open") == ids[:3]
        with pytest.raises(InvalidInputError, match="unknown notes filter 'x'"):
            found("x")
        exported = notes.notes_by_external_id(conn, project=project)
    assert set(exported) == {"e0", "e1", "e2"}
    assert exported["e2"] == [{"id": exported["e2"][0]["id"], "user": "ann", "kind": "skip", "reason": "other",
                               "text": "spam", "created_at": exported["e2"][0]["created_at"], "resolved_at": None,
                               "resolved_by": None}]
