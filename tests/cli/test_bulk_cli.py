"""`labelloop bulk list|undo` and `configure --bulk-training/--no-bulk-training` (both
databases): output, errors (one line, exit 2, nothing changed) and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from labelloop.cli import main
from labelloop.store import open_engine, reading, writing
from labelloop.store import bulklabels
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import audit_log, bulk_ops, items

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def db(db_url):
    engine = open_engine(db_url)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=["A", "B"], seed=1)
        boss = store_users.create_user(conn, name="boss", role="admin", password="a long password").id
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"t": f"t{i}"}, "text": f"t{i}",
             "rand": rand_key(1, f"e{i}"), "created_at": T0, "updated_at": T0} for i in range(4)])
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
        first = bulklabels.apply_bulk(conn, project=project, tag="A", item_ids=ids[:3], user_id=boss)
        second = bulklabels.apply_bulk(conn, project=project, tag="B", item_ids=ids[3:], user_id=boss)
    yield db_url, engine, ids, first["bulk_id"], second["bulk_id"]
    engine.dispose()


def sources(engine):
    with reading(engine) as conn:
        return [r[0] for r in conn.execute(select(items.c.label_source).order_by(items.c.id))]


def test_list_and_undo(db):
    url, engine, _ids, first, second = db
    listed = run("bulk", "list", "news", "--db", url)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(second), str(first)]
    assert lines[1].split("\t")[2:] == ["boss", "add 'A'", "3 items", "active"]

    undone = run("bulk", "undo", "news", first, "--db", url)
    assert undone.exit_code == 0
    assert undone.stdout == f"undid bulk operation {first} of project 'news': 3 items, 3 changed their final label\n"
    assert sources(engine) == [None, None, None, "bulk"]
    assert run("bulk", "list", "news", "--db", url).stdout.splitlines()[1].endswith("by (command line)")
    with reading(engine) as conn:
        log = [(r.action, r.details["bulk_id"]) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert log[-1] == ("bulk.undo", first)


@pytest.mark.parametrize(("args", "message"), [
    (("undo", "nope", "1"), "error: no project named 'nope'; known projects: news"),
    (("undo", "news", "999"), "error: no bulk operation 999 in project 'news': see `labelloop bulk list news`"),
    (("list", "nope"), "error: no project named 'nope'; known projects: news"),
])
def test_errors_are_one_line_exit_2(db, args, message):
    url, engine, *_ = db
    result = run("bulk", *args, "--db", url)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert sources(engine) == ["bulk"] * 4


def test_undo_twice_is_refused(db):
    url, engine, _ids, first, _second = db
    assert run("bulk", "undo", "news", first, "--db", url).exit_code == 0
    again = run("bulk", "undo", "news", first, "--db", url)
    assert again.exit_code == 2
    assert again.stderr.startswith(f"error: bulk operation {first} was undone already (")
    assert len(again.stderr.strip().splitlines()) == 1
    with reading(engine) as conn:
        assert conn.execute(select(bulk_ops.c.undone_at).where(bulk_ops.c.id == first)).scalar() is not None


def test_configure_bulk_training(db):
    url, engine, *_ = db
    shown = run("configure", "news", "--db", url)
    assert "bulk_training: True" in shown.stdout.splitlines()
    off = run("configure", "news", "--no-bulk-training", "--db", url)
    assert off.exit_code == 0 and off.stdout == "bulk_training: True -> False\n"
    assert "bulk_training: False" in run("configure", "news", "--db", url).stdout.splitlines()
    with reading(engine) as conn:
        last = conn.execute(select(audit_log).order_by(audit_log.c.id.desc())).first()
        assert store_projects.get_project(conn, name="news").setting("bulk_training") is False
    assert last.action == "project.configure"
    assert last.details["changes"] == {"bulk_training": {"from": True, "to": False}}
    on = run("configure", "news", "--bulk-training", "--db", url)
    assert on.stdout == "bulk_training: False -> True\n"
