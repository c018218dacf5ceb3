"""`labelloop member add|remove|list` (both databases): output, errors (one line, exit 2, nothing
changed) and the audit log."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labelloop.cli import main
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import audit_log, project_members


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def db(db_url):
    engine = open_engine(db_url)
    with writing(engine) as conn:
        store_projects.create_project(conn, name="news", labels=["A", "B"])
        store_projects.create_project(conn, name="secret files", labels=["A", "B"])
        for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")):
            store_users.create_user(conn, name=name, role=role, password="a long password")
    yield db_url, engine
    engine.dispose()


def state(engine):
    with reading(engine) as conn:
        members = sorted(tuple(r) for r in conn.execute(select(project_members.c.project_id, project_members.c.user_id)))
        log = [(r.action, r.details) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    return members, log


def test_add_list_remove(db):
    url, engine = db
    empty = run("member", "list", "news", "--db", url)
    assert empty.exit_code == 0 and empty.stdout == ""
    assert empty.stderr.strip() == ("project 'news' has no members; add one with "
                                    "`labelloop member add news NAME` (admins see it without)")
    quoted = run("member", "list", "secret files", "--db", url)
    assert "`labelloop member add 'secret files' NAME`" in quoted.stderr

    added = run("member", "add", "news", "bob", "--db", url)
    assert added.exit_code == 0 and added.stdout == "added 'bob' to project 'news'\n"
    assert run("member", "add", "news", "ann", "--db", url).exit_code == 0
    again = run("member", "add", "news", "ann", "--db", url)
    assert again.exit_code == 0
    assert again.stdout == "'ann' is a member of project 'news' already; nothing changed\n"
    assert run("member", "add", "secret files", "ann", "--db", url).exit_code == 0

    listed = run("member", "list", "news", "--db", url)
    assert listed.exit_code == 0 and listed.stdout == "ann\nbob\n" and listed.stderr == ""

    removed = run("member", "remove", "news", "bob", "--db", url)
    assert removed.exit_code == 0 and removed.stdout == "removed 'bob' from project 'news'; their labels stay\n"
    assert run("member", "list", "news", "--db", url).stdout == "ann\n"
    members, log = state(engine)
    assert members == [(1, 2), (2, 2)]
    assert log == [("member.add", {"user": "bob"}), ("member.add", {"user": "ann"}),
                   ("member.add", {"user": "ann"}), ("member.remove", {"user": "bob"})]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "nope", "ann"), "error: no project named 'nope'; known projects: news, secret files"),
        (("add", "news", "nobody"), "error: no user named 'nobody'"),
        (("add", "news", "boss"),
         "error: user 'boss' is an admin and sees every project already; only labellers need membership"),
        (("remove", "news", "bob"), "error: user 'bob' is not a member of project 'news' (nothing to remove)"),
        (("remove", "news", "boss"), "error: user 'boss' is not a member of project 'news' (admins need no membership)"),
        (("remove", "nope", "ann"), "error: no project named 'nope'; known projects: news, secret files"),
        (("remove", "news", "nobody"), "error: no user named 'nobody'"),
        (("list", "nope"), "error: no project named 'nope'; known projects: news, secret files"),
    ],
)
def test_errors_are_one_line_exit_2_and_change_nothing(db, args, message):
    url, engine = db
    run("member", "add", "secret files", "ann", "--db", url)
    before = state(engine)
    result = run("member", *args, "--db", url)
    assert result.exit_code == 2
    assert result.stderr == message + "\n" and result.stdout == ""
    assert state(engine) == before


def test_help_names_the_verbs():
    result = run("member", "--help")
    assert result.exit_code == 0
    for verb in ("add", "remove", "list"):
        assert verb in result.stdout
    assert "admins see every project" in result.stdout


def test_the_demo_admin_sees_the_demo_project(db_url, tmp_path):
    """`labelloop demo` creates an admin and no members: admins see every project."""
    import re

    from fastapi.testclient import TestClient

    from labelloop.config import Settings
    from labelloop.server import create_app

    result = run("demo", "--no-serve", "--db", db_url)
    assert result.exit_code == 0, result.output
    password = result.stdout.split("password (shown once): ")[1].strip()
    app = create_app(Settings(database_url=db_url, models_dir=tmp_path / "models"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf, "next": "/"})
        assert [p["name"] for p in client.get("/api/projects").json()] == ["bbc-news"]
        assert "bbc-news" in client.get("/projects").text
        assert client.get("/projects/bbc-news/label").status_code == 200
    assert run("member", "list", "bbc-news", "--db", db_url).stdout == ""
