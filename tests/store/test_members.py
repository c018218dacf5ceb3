"""Project members (store/members.py) and migration 0004's backfill, on both databases."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store import ensure_schema, open_engine, reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.migrate import alembic_config
from labelloop.store.schema import audit_log, project_members


@pytest.fixture
def team(engine):
    with writing(engine) as conn:
        for name in ("news", "secret"):
            store_projects.create_project(conn, name=name, labels=["A", "B"])
        ids = {n: store_users.create_user(conn, name=n, role=r, password="a long password").id
               for n, r in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))}
    return engine, ids


def audit(engine):
    with reading(engine) as conn:
        rows = conn.execute(select(audit_log.c.project_id, audit_log.c.user_id, audit_log.c.action, audit_log.c.details)
                            .order_by(audit_log.c.id)).all()
    return [tuple(r) for r in rows]


def test_add_list_remove_and_audit(team):
    engine, ids = team
    with writing(engine) as conn:
        assert store_members.add_member(conn, project="news", user="ann", actor_id=ids["boss"]) is True
        assert store_members.add_member(conn, project="news", user="bob", actor_id=None) is True
        assert store_members.add_member(conn, project="secret", user="bob", actor_id=None) is True
    with reading(engine) as conn:
        news = store_projects.get_project(conn, name="news")
        secret = store_projects.get_project(conn, name="secret")
        assert [u.name for u in store_members.list_members(conn, project_id=news.id)] == ["ann", "bob"]
        assert store_members.projects_of_user(conn, user_id=ids["ann"]) == ["news"]
        assert store_members.projects_of_user(conn, user_id=ids["bob"]) == ["news", "secret"]
        assert store_members.is_member(conn, project_id=news.id, user_id=ids["ann"])
        assert not store_members.is_member(conn, project_id=secret.id, user_id=ids["ann"])
        boss = store_users.get_user(conn, name="boss")
        ann = store_users.get_user(conn, name="ann")
        assert store_members.visible_project_names(conn, user=boss) == ["news", "secret"]  # admins: all
        assert store_members.visible_project_names(conn, user=ann) == ["news"]
        assert store_members.memberships(conn, user_ids=[ids["ann"], ids["bob"], ids["boss"]]) == {
            ids["ann"]: frozenset({news.id}), ids["bob"]: frozenset({news.id, secret.id}), ids["boss"]: frozenset()}
        assert store_members.labellers_outside(conn, project_id=secret.id) == ["ann"]
    with writing(engine) as conn:
        store_members.remove_member(conn, project="news", user="bob", actor_id=ids["boss"])
    with reading(engine) as conn:
        assert [u.name for u in store_members.list_members(conn, project_id=news.id)] == ["ann"]
        assert store_members.projects_of_user(conn, user_id=ids["bob"]) == ["secret"]
    assert audit(engine) == [
        (news.id, ids["boss"], "member.add", {"user": "ann"}),
        (news.id, None, "member.add", {"user": "bob"}),
        (secret.id, None, "member.add", {"user": "bob"}),
        (news.id, ids["boss"], "member.remove", {"user": "bob"}),
    ]


def test_adding_twice_is_harmless_and_not_audited(team):
    engine, _ = team
    with writing(engine) as conn:
        assert store_members.add_member(conn, project="news", user="ann", actor_id=None) is True
    with writing(engine) as conn:
        assert store_members.add_member(conn, project="news", user="ann", actor_id=None) is False
    with reading(engine) as conn:
        assert conn.execute(select(project_members.c.user_id)).scalars().all() == [2]
    assert [a[2] for a in audit(engine)] == ["member.add"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: store_members.add_member(c, project="nope", user="ann", actor_id=None), NotFoundError,
         "no project named 'nope'"),
        (lambda c: store_members.add_member(c, project="news", user="nobody", actor_id=None), NotFoundError,
         "no user named 'nobody'"),
        (lambda c: store_members.add_member(c, project="news", user="boss", actor_id=None), InvalidInputError,
         "'boss' is an admin and sees every project already"),
        (lambda c: store_members.remove_member(c, project="news", user="ann", actor_id=None), NotFoundError,
         r"user 'ann' is not a member of project 'news' \(nothing to remove\)"),
        (lambda c: store_members.remove_member(c, project="news", user="boss", actor_id=None), NotFoundError,
         r"'boss' is not a member of project 'news' \(admins need no membership\)"),
        (lambda c: store_members.remove_member(c, project="nope", user="ann", actor_id=None), NotFoundError,
         "no project named 'nope'"),
        (lambda c: store_members.remove_member(c, project="news", user="nobody", actor_id=None), NotFoundError,
         "no user named 'nobody'"),
    ],
)
def test_errors_are_clear_and_change_nothing(team, call, error, message):
    engine, _ = team
    with pytest.raises(error, match=message):
        with writing(engine) as conn:
            call(conn)
    with reading(engine) as conn:
        assert conn.execute(select(project_members)).all() == []
    assert audit(engine) == []


def test_deleting_a_user_or_project_drops_its_memberships(team):
    engine, ids = team
    with writing(engine) as conn:
        store_members.add_member(conn, project="news", user="ann", actor_id=None)
        store_members.add_member(conn, project="secret", user="bob", actor_id=None)
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM projects WHERE name = 'secret'"))
    with reading(engine) as conn:
        assert [tuple(r) for r in conn.execute(select(project_members.c.user_id))] == [(ids["ann"],)]


def test_0004_makes_every_labeller_a_member_of_every_project(db_url):
    """A database at 0003 with projects, labellers (one disabled) and an admin: after the upgrade
    every labeller is a member of every project, so nobody loses access; the admin needs none."""
    engine = open_engine(db_url, migrate=False)
    with writing(engine) as conn:
        command.upgrade(alembic_config(conn), "0003")
    with writing(engine) as conn:
        for pid, name in ((1, "news"), (2, "secret"), (3, "empty")):
            conn.execute(text("INSERT INTO projects (id, name, id_column, display_columns, settings, seed, created_at) "
                              "VALUES (:i, :n, 'id', '[]', '{}', 1, CURRENT_TIMESTAMP)"), {"i": pid, "n": name})
        for uid, name, role, disabled in ((1, "boss", "admin", False), (2, "ann", "labeller", False),
                                          (3, "bob", "labeller", True), (4, "cid", "labeller", False)):
            conn.execute(text("INSERT INTO users (id, name, role, password_hash, disabled, created_at) "
                              "VALUES (:i, :n, :r, 'x', :d, CURRENT_TIMESTAMP)"),
                         {"i": uid, "n": name, "r": role, "d": disabled})
    ensure_schema(engine)
    with reading(engine) as conn:
        pairs = sorted(tuple(r) for r in conn.execute(select(project_members.c.project_id, project_members.c.user_id)))
        assert pairs == [(p, u) for p in (1, 2, 3) for u in (2, 3, 4)]
        assert store_members.visible_project_names(conn, user=store_users.get_user(conn, name="cid")) == [
            "empty", "news", "secret"]
    engine.dispose()


def test_0004_on_an_empty_database(db_url):
    engine = open_engine(db_url)
    with reading(engine) as conn:
        assert conn.execute(select(project_members)).all() == []
    engine.dispose()
