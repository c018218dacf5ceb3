"""The codebook (store/codebook.py, migration 0011): versioned definitions, pinned examples, and
the codebook version every label records through each label path, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text

from labelloop.config import Settings
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.store import codebook as cb
from labelloop.store import labelling, queue, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.browse import audit_entries
from labelloop.store.items import rand_key
from labelloop.store.review import adjudicate
from labelloop.store.schema import annotations, codebook_entries, items
from labelloop.store.tags import retire_tag

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _setup(engine, *, multi=False, n=8):
    name = "ml" if multi else "p"
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name=name, labels=["A", "B", "C"], seed=3, multi_label=multi)
        other = store_projects.create_project(conn, name="other", labels=["A"], seed=1)
        users = {u: store_users.create_user(conn, name=u, role=r, password="a long password").id
                 for u, r in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))}
        for proj, count in ((project, n), (other, 2)):
            conn.execute(insert(items), [
                {"project_id": proj.id, "external_id": f"e{i}", "display": {"title": f"t{i}"}, "text": f"text {i}",
                 "rand": rand_key(proj.seed, f"e{i}"), "target_labels": 2, "created_at": T0, "updated_at": T0}
                for i in range(count)
            ])
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).scalars())
        foreign = list(conn.execute(select(items.c.id).where(items.c.project_id == other.id)).scalars())
    return project, users, ids, foreign


def fresh(engine, name="p"):
    with reading(engine) as conn:
        return store_projects.get_project(conn, name=name)


def define(engine, tag, definition, name="p", user=None):
    with writing(engine) as conn:
        return cb.set_definition(conn, project=fresh(engine, name), tag=tag, definition=definition, user_id=user)


def lease(engine, name, user, item_id):
    with writing(engine) as conn:
        got = queue.try_claim(conn, project=fresh(engine, name), user_id=user, item_id=item_id, lease_seconds=600)
        assert isinstance(got, queue.Lease), got


def versions(engine, item_id):
    """{user id or None: codebook_version} of the item's annotations."""
    with reading(engine) as conn:
        return dict(conn.execute(select(annotations.c.user_id, annotations.c.codebook_version)
                                 .where(annotations.c.item_id == item_id)).all())


def test_definitions_are_versioned_and_every_version_kept(engine):
    project, users, _, _ = _setup(engine)
    with reading(engine) as conn:
        book = cb.get_codebook(conn, project=project)
    assert book.version == 0 and [e.tag for e in book.entries] == ["A", "B", "C"]
    assert all(e.definition == "" and e.version is None for e in book.entries)

    assert define(engine, "A", "**A** is about *apples*\r\n", user=users["boss"]) == \
        {"tag": "A", "version": 1, "changed": True}
    assert define(engine, "B", "B: bananas", user=users["boss"])["version"] == 2
    assert define(engine, "A", "A: apples only", user=users["boss"])["version"] == 3
    # the same text again is no change: the version stays
    assert define(engine, "A", "A: apples only\n\n", user=users["boss"]) == {"tag": "A", "version": 3, "changed": False}

    with reading(engine) as conn:
        book = cb.get_codebook(conn, project=fresh(engine))
        hist = cb.history(conn, project=project, tag="A")
        every = cb.history(conn, project=project)
        log = audit_entries(conn, project_id=project.id)
        other = cb.get_codebook(conn, project=fresh(engine, "other"))
    assert book.version == 3
    a, b, c = book.entries
    assert (a.definition, a.version, a.updated_by) == ("A: apples only", 3, "boss")
    assert (b.definition, b.version) == ("B: bananas", 2)
    assert (c.definition, c.version) == ("", None)
    assert [(h["version"], h["definition"]) for h in hist] == [(3, "A: apples only"), (1, "**A** is about *apples*")]
    assert [h["version"] for h in every] == [3, 2, 1]
    assert [e["action"] for e in log if e["action"].startswith("codebook")] == ["codebook.set"] * 3
    assert other.version == 0 and other.entries[0].definition == ""  # projects do not share codebooks


def test_bad_definitions_and_tags_are_refused_and_change_nothing(engine):
    project, users, _, _ = _setup(engine)
    for tag, definition, words in [
        ("Z", "x", "unknown tag 'Z'"),
        ("A", 5, "Markdown text"),
        ("A", "x" * (cb.MAX_DEFINITION + 1), "at most 20,000"),
        ("A", "nul\x00", "NUL"),
    ]:
        with pytest.raises(InvalidInputError, match=words), writing(engine) as conn:
            cb.set_definition(conn, project=project, tag=tag, definition=definition, user_id=None)
    with writing(engine) as conn:
        retire_tag(conn, project=project, name="C", user_id=None)
    with pytest.raises(InvalidInputError, match="retired tag 'C'"), writing(engine) as conn:
        cb.set_definition(conn, project=fresh(engine), tag="C", definition="x", user_id=None)
    with reading(engine) as conn:
        assert cb.current_version(conn, project_id=project.id) == 0
        assert conn.execute(select(codebook_entries)).first() is None
        assert [e.tag for e in cb.get_codebook(conn, project=project).entries] == ["A", "B"]


def test_pinned_examples(engine):
    project, users, ids, foreign = _setup(engine)
    with writing(engine) as conn:
        assert cb.pin_example(conn, project=project, tag="A", item_id=ids[2], user_id=users["boss"]) is True
        assert cb.pin_example(conn, project=project, tag="A", item_id=ids[0], user_id=users["boss"]) is True
        assert cb.pin_example(conn, project=project, tag="A", item_id=ids[2], user_id=users["boss"]) is False
        assert cb.pin_example(conn, project=project, tag="B", item_id=ids[2], user_id=users["boss"]) is True
    with reading(engine) as conn:
        book = cb.get_codebook(conn, project=project)
        assert cb.pinned_tags(conn, project=project, item_id=ids[2]) == ["A", "B"]
    assert book.version == 0  # pinning is no change of a definition
    assert [(x.item_id, x.external_id, x.text) for x in book.entry("A").examples] == \
        [(ids[2], "e2", "text 2"), (ids[0], "e0", "text 0")]
    with pytest.raises(NotFoundError, match=f"no item {foreign[0]} in project 'p'"), writing(engine) as conn:
        cb.pin_example(conn, project=project, tag="A", item_id=foreign[0], user_id=None)
    with pytest.raises(InvalidInputError, match="positive integers"), writing(engine) as conn:
        cb.pin_example(conn, project=project, tag="A", item_id="1", user_id=None)
    with writing(engine) as conn:
        cb.unpin_example(conn, project=project, tag="A", item_id=ids[2], user_id=users["boss"])
    with pytest.raises(NotFoundError, match="not a pinned example of tag 'A'"), writing(engine) as conn:
        cb.unpin_example(conn, project=project, tag="A", item_id=ids[2], user_id=None)
    with reading(engine) as conn:
        assert [x.item_id for x in cb.get_codebook(conn, project=project).entry("A").examples] == [ids[0]]
    # a tag holds at most MAX_EXAMPLES
    with writing(engine) as conn:
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"x{i}", "display": {}, "text": "x", "rand": i,
             "created_at": T0, "updated_at": T0} for i in range(cb.MAX_EXAMPLES)])
        more = list(conn.execute(select(items.c.id).where(items.c.external_id.like("x%"))).scalars())
        for item_id in more[: cb.MAX_EXAMPLES - 1]:
            cb.pin_example(conn, project=project, tag="C", item_id=item_id, user_id=None)
        cb.pin_example(conn, project=project, tag="C", item_id=ids[0], user_id=None)  # the 20th
    with pytest.raises(ConflictError, match="20 pinned examples already"), writing(engine) as conn:
        cb.pin_example(conn, project=project, tag="C", item_id=more[-1], user_id=None)


def test_a_human_label_records_the_version_it_was_made_under(engine):
    project, users, ids, _ = _setup(engine)
    lease(engine, "p", users["ann"], ids[0])
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=users["ann"], item_id=ids[0], tag="A")
    assert versions(engine, ids[0]) == {users["ann"]: None}  # no codebook yet
    define(engine, "A", "apples")
    define(engine, "B", "bananas")
    lease(engine, "p", users["bob"], ids[0])
    with writing(engine) as conn:
        labelling.label_item(conn, project=project, user_id=users["bob"], item_id=ids[0], tag="B")
    assert versions(engine, ids[0]) == {users["ann"]: None, users["bob"]: 2}  # older labels keep theirs
    # undo and label again: the new label is made under the newer version
    define(engine, "A", "apples, green or red")
    with writing(engine) as conn:
        labelling.undo_last(conn, project=project, user_id=users["bob"], lease_seconds=600)
        labelling.label_item(conn, project=project, user_id=users["bob"], item_id=ids[0], tag="A")
    assert versions(engine, ids[0]) == {users["ann"]: None, users["bob"]: 3}


@pytest.mark.parametrize("multi", [False, True])
def test_label_many_batches_record_the_version(engine, multi):
    name = "ml" if multi else "p"
    project, users, ids, _ = _setup(engine, multi=multi)
    define(engine, "A", "apples", name=name)
    for user, item_id in ((users["ann"], ids[0]), (users["bob"], ids[0]), (users["ann"], ids[1])):
        lease(engine, name, user, item_id)
    label = {"tags": ("A", "B")} if multi else {"tag": "B"}
    requests = [labelling.LabelRequest(project, users["ann"], ids[0], **label),
                labelling.LabelRequest(project, users["bob"], ids[0], **label),
                labelling.LabelRequest(project, users["bob"], ids[5], **label)]  # not leased: refused
    with writing(engine) as conn:
        outcomes = labelling.label_many(conn, requests)
    assert outcomes[:2] == [None, None] and isinstance(outcomes[2], ConflictError)
    define(engine, "B", "bananas", name=name)
    with writing(engine) as conn:
        assert labelling.label_many(conn, [labelling.LabelRequest(project, users["ann"], ids[1], **label)]) == [None]
    assert versions(engine, ids[0]) == {users["ann"]: 1, users["bob"]: 1}
    assert versions(engine, ids[1]) == {users["ann"]: 2}


def test_imported_labels_record_the_version(engine):
    project, _, _, _ = _setup(engine)
    rows = [{"id": "n1", "text": "one", "label": "A"}, {"id": "n2", "text": "two", "label": ""}]
    opts = ImportOptions(id_column="id", text_columns=["text"], label_column="label")
    import_source(engine, project="p", source=MappingSource(rows), options=opts, settings=Settings())
    define(engine, "A", "apples")
    define(engine, "A", "apples!")
    rows = [{"id": "n3", "text": "three", "label": "B"}, {"id": "n4", "text": "four", "label": "A"}]
    import_source(engine, project="p", source=MappingSource(rows), options=opts, settings=Settings())
    with reading(engine) as conn:
        got = dict(conn.execute(select(items.c.external_id, annotations.c.codebook_version)
                                .select_from(annotations.join(items, items.c.id == annotations.c.item_id))
                                .where(annotations.c.source == "import")).all())
    assert got == {"n1": None, "n3": 2, "n4": 2}


@pytest.mark.parametrize("multi", [False, True])
def test_a_review_decision_records_the_version(engine, multi):
    name = "ml" if multi else "p"
    project, users, ids, _ = _setup(engine, multi=multi)
    decision = {"tags": ["A"]} if multi else {"tag": "A"}
    with writing(engine) as conn:
        adjudicate(conn, project=project, item_id=ids[0], user_id=users["boss"], **decision)
    define(engine, "A", "apples", name=name)
    define(engine, "B", "bananas", name=name)
    with writing(engine) as conn:
        adjudicate(conn, project=project, item_id=ids[1], user_id=users["boss"], **decision)
    with reading(engine) as conn:
        got = dict(conn.execute(select(items.c.id, items.c.adjudicated_codebook_version)
                                .where(items.c.id.in_(ids[:3]))).all())
    assert got == {ids[0]: None, ids[1]: 2, ids[2]: None}


def test_the_trigger_is_the_databases_own(engine):
    """A plain INSERT written by hand, as any future path would, gets the version too; a version
    given explicitly is overwritten (the label is made under the current codebook)."""
    project, users, ids, _ = _setup(engine)
    define(engine, "A", "apples")
    with writing(engine) as conn:
        conn.execute(insert(annotations).values(
            project_id=project.id, item_id=ids[3], user_id=users["ann"], tag_id=project.tag_id("A"),
            source="human", created_at=T0, updated_at=T0, codebook_version=99))
        kind = conn.dialect.name
        if kind == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all()
        else:
            names = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars().all()
    assert "annotations_codebook_version" in names
    assert versions(engine, ids[3]) == {users["ann"]: 1}
