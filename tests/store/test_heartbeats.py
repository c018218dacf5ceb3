"""The orchestrator's heartbeat per project (``orchestrator_heartbeats``): one upsert per check,
read back by the model page, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from labelloop.store import heartbeats, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store.schema import orchestrator_heartbeats, projects, utcnow


@pytest.fixture
def two(engine):
    with writing(engine) as conn:
        return [store_projects.create_project(conn, name=n, labels=["a", "b"], seed=1).id for n in ("p", "q")]


def test_each_check_replaces_the_projects_row(engine, two):
    p, q = two
    start = utcnow()
    with writing(engine) as conn:
        assert heartbeats.last_check(conn, project_id=p) is None
        heartbeats.record_check(conn, project_id=p, holder="box:1:aa", mode="server", now=start)
        heartbeats.record_check(conn, project_id=q, holder="box:1:aa", mode="server", now=start)
    with writing(engine) as conn:  # a later check, by another orchestrator
        heartbeats.record_check(conn, project_id=p, holder="vm:7:bb", mode="all", now=start + timedelta(seconds=30))
    with writing(engine) as conn:
        assert heartbeats.last_check(conn, project_id=p) == heartbeats.Check(
            "vm:7:bb", "all", start + timedelta(seconds=30))
        assert heartbeats.last_check(conn, project_id=q) == heartbeats.Check("box:1:aa", "server", start)
        assert conn.execute(select(func.count()).select_from(orchestrator_heartbeats)).scalar_one() == 2


def test_an_unknown_mode_is_refused(engine, two):
    with writing(engine) as conn, pytest.raises(ValueError, match="unknown orchestrator mode 'cron'"):
        heartbeats.record_check(conn, project_id=two[0], holder="box:1:aa", mode="cron")


def test_holds_a_lock_names_a_fresh_lock_of_the_holder_on_any_project(engine, two):
    p, q = two
    now = utcnow()
    with writing(engine) as conn:
        assert store_runs.claim_lock_row(conn, project_id=q, holder="box:1:aa", stale_after=30, now=now) is None
    with writing(engine) as conn:
        assert heartbeats.holds_a_lock(conn, holder="box:1:aa", since=now - timedelta(seconds=60))
        assert not heartbeats.holds_a_lock(conn, holder="box:1:aa", since=now + timedelta(seconds=1))  # too old
        assert not heartbeats.holds_a_lock(conn, holder="vm:7:bb", since=now - timedelta(seconds=60))


def test_a_deleted_project_takes_its_heartbeat_along(engine, two):
    p, _ = two
    with writing(engine) as conn:
        heartbeats.record_check(conn, project_id=p, holder="box:1:aa", mode="project")
    with writing(engine) as conn:
        conn.execute(projects.delete().where(projects.c.id == p))
    with writing(engine) as conn:
        assert heartbeats.last_check(conn, project_id=p) is None
