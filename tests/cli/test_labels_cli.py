"""`labelloop labels add|rename|merge|retire` through the command line (both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from labelloop.cli import main
from labelloop.store import labelling
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.schema import annotations, audit_log, items, projects, tags


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def labelled(db_url: str, tmp_path: Path):
    """Project p (Sport, Politics, Tech) with 4 imported labels and labels by ann and bob."""
    assert run("init", "p", "--labels", "Sport,Politics,Tech", "--seed", 5, "--db", db_url).exit_code == 0
    csv = tmp_path / "p.csv"
    rows = ["id,text,y", "a,first,Sport", "b,second,Politics", "c,third,Tech", "d,fourth,Tech"]
    rows += [f"u{i},unlabelled {i}," for i in range(6)]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run("import", "p", csv, "--id-column", "id", "--text-columns", "text", "--label-column", "y",
                 "--db", db_url)
    assert result.exit_code == 0, result.output
    engine = open_engine(db_url)
    with writing(engine) as conn:
        ann = store_users.create_user(conn, name="ann", role="labeller", password="a long password").id
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password").id
    for user, tags_given in ((ann, ["Politics", "Tech", "Tech"]), (bob, ["Politics"])):
        for tag in tags_given:
            with writing(engine) as conn:
                proj = store_projects.get_project(conn, name="p")
                lease = queue.next_item(conn, project=proj, user_id=user, lease_seconds=600)
                labelling.label_item(conn, project=proj, user_id=user, item_id=lease.item_id, tag=tag)
    yield engine
    engine.dispose()


def annotations_by_user(engine):
    with reading(engine) as conn:
        return sorted(
            (r.item_id, r.user_id or 0) for r in conn.execute(select(annotations.c.item_id, annotations.c.user_id))
        )


def state(engine):
    with reading(engine) as conn:
        return (
            conn.execute(select(annotations.c.id, annotations.c.item_id, annotations.c.user_id, annotations.c.tag_id)
                         .order_by(annotations.c.id)).all(),
            conn.execute(select(tags.c.id, tags.c.name, tags.c.retired).order_by(tags.c.id)).all(),
            conn.execute(select(items.c.id, items.c.n_labels, items.c.label_tag_id, items.c.adjudicated_tag_id)
                         .order_by(items.c.id)).all(),
            conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            conn.execute(select(projects.c.retrain_requested_at)).scalar_one(),
        )


def status(db_url):
    result = run("status", "p", "--json", "--db", db_url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rename_and_merge_keep_every_label(db_url, labelled):
    before = annotations_by_user(labelled)
    assert len(before) == 8
    assert status(db_url)["labels"] == {"Sport": 1, "Politics": 3, "Tech": 4}

    result = run("labels", "rename", "p", "Tech", "Technology", "--db", db_url)
    assert result.exit_code == 0 and "renamed tag 'Tech' to 'Technology'" in result.stdout
    assert annotations_by_user(labelled) == before
    assert status(db_url)["labels"] == {"Sport": 1, "Politics": 3, "Technology": 4}

    result = run("labels", "merge", "p", "Politics", "Technology", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "3 labels on 3 items moved" in result.stdout
    assert annotations_by_user(labelled) == before  # same items, same users, same count
    assert status(db_url)["labels"] == {"Sport": 1, "Technology": 7}
    with reading(labelled) as conn:
        actions = list(conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars())
        assert conn.execute(select(projects.c.retrain_requested_at)).scalar_one() is not None
    assert actions == ["tag.rename", "tag.merge"]


def test_retire_reopens_items_and_add_reactivates(db_url, labelled):
    remaining = status(db_url)
    result = run("labels", "retire", "p", "Tech", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "4 items recomputed, 4 back in the queue" in result.stdout
    after = status(db_url)
    assert after["labels"] == {"Sport": 1, "Politics": 3}
    assert after["labelled"] == remaining["labelled"] - 4
    with reading(labelled) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 8
        proj = store_projects.get_project(conn, name="p")
        assert proj.tag_names == ["Sport", "Politics"]
    result = run("labels", "add", "p", "Tech", "--db", db_url)
    assert result.exit_code == 0 and "reactivated tag 'Tech'" in result.stdout
    assert status(db_url)["labels"] == remaining["labels"]
    result = run("labels", "add", "p", "Health", "--db", db_url)
    assert result.exit_code == 0 and "added tag 'Health'" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("merge", "p", "Tech", "Tech"), "cannot merge tag 'Tech' into itself"),
        (("merge", "p", "Nope", "Tech"), "no tag 'Nope' in project 'p'"),
        (("rename", "p", "Nope", "X"), "no tag 'Nope'"),
        (("rename", "p", "Tech", "Sport"), "tag 'Sport' exists already"),
        (("retire", "p", "Nope"), "no tag 'Nope'"),
        (("add", "p", "Sport"), "tag 'Sport' exists already"),
        (("add", "nope", "X"), "no project named 'nope'"),
    ],
)
def test_errors_exit_2_and_change_nothing(db_url, labelled, args, message):
    before = state(labelled)
    result = run("labels", *args, "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert state(labelled) == before


def test_retiring_the_last_active_tag_exits_2(db_url, labelled):
    assert run("labels", "retire", "p", "Sport", "--db", db_url).exit_code == 0
    assert run("labels", "retire", "p", "Politics", "--db", db_url).exit_code == 0
    before = state(labelled)
    result = run("labels", "retire", "p", "Tech", "--db", db_url)
    assert result.exit_code == 2 and "last active tag" in result.stderr
    assert state(labelled) == before
