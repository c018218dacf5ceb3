"""`labelloop init` with settings, `labelloop configure`, and the status keys before a model."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labelloop.cli import main
from labelloop.store import open_engine, reading
from labelloop.store import projects as store_projects
from labelloop.store.browse import audit_entries
from labelloop.store.runs import retrain_pending
from labelloop.store.schema import items


def run(*args):
    return CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)


def retrain_requested(db_url, name="p"):
    engine = open_engine(db_url)
    try:
        with reading(engine) as conn:
            return retrain_pending(conn, project_id=store_projects.get_project(conn, name=name).id) is not None
    finally:
        engine.dispose()


def settings_of(db_url, name="p"):
    engine = open_engine(db_url)
    try:
        with reading(engine) as conn:
            project = store_projects.get_project(conn, name=name)
            return project.settings, audit_entries(conn, project_id=project.id)
    finally:
        engine.dispose()


def targets_of(db_url):
    engine = open_engine(db_url)
    try:
        with reading(engine) as conn:
            return conn.execute(select(items.c.target_labels).order_by(items.c.id)).scalars().all()
    finally:
        engine.dispose()


def test_init_takes_settings_and_configure_prints_and_changes_them(db_url, tmp_path):
    result = run("init", "p", "--labels", "A,B", "--overlap-fraction", "0.3", "--overlap-k", "3",
                 "--audit-fraction", "0.1", "--lease-seconds", "120", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert settings_of(db_url)[0] == {"overlap_fraction": 0.3, "overlap_k": 3, "audit_fraction": 0.1,
                                      "lease_seconds": 120}
    shown = run("configure", "p", "--db", db_url)
    assert shown.exit_code == 0
    assert shown.stdout.splitlines() == [
        "lease_seconds: 120", "overlap_fraction: 0.3", "overlap_k: 3", "audit_fraction: 0.1", "min_new_labels: 10",
        "model: tfidf-logreg", "strategy: margin", "exploration: 0.1", "class_weight: none",
        "show_item_ids: False", "bulk_training: True", "steering: on", "gold_fraction: 0.0", "gold_min_accuracy: 0.8",
    ]
    (tmp_path / "items.csv").write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in range(200)))
    assert run("import", "p", tmp_path / "items.csv", "--id-column", "id", "--text-columns", "text",
               "--db", db_url).exit_code == 0
    before = targets_of(db_url)
    assert 0 < before.count(3) < len(before) == 200  # the import applied the overlap rule
    assert run("configure", "p", "--audit-fraction", "0.2", "--db", db_url).exit_code == 0
    assert not retrain_requested(db_url)  # not a model setting
    changed = run("configure", "p", "--overlap-fraction", "0", "--min-new-labels", "25", "--model", "tfidf-svm",
                  "--class-weight", "balanced", "--db", db_url)
    assert changed.exit_code == 0, changed.output
    lines = changed.stdout.splitlines()
    assert lines[:4] == ["overlap_fraction: 0.3 -> 0.0", "min_new_labels: 10 -> 25", "model: tfidf-logreg -> tfidf-svm",
                         "class_weight: none -> balanced"]
    assert lines[4] == f"{before.count(3):,} unlabelled items got a new number of labellers"
    assert set(targets_of(db_url)) == {1}
    assert retrain_requested(db_url)  # a new model serves from the next round on
    settings, log = settings_of(db_url)
    assert settings["min_new_labels"] == 25 and settings["class_weight"] == "balanced"
    assert log[0]["action"] == "project.configure" and log[0]["details"]["changes"]["model"] == {
        "from": "tfidf-logreg", "to": "tfidf-svm"}
    assert run("configure", "p", "--min-new-labels", "25", "--db", db_url).stdout == "nothing changed\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--audit-fraction", "2"], "audit_fraction must be between 0 and 1"),
    (["--overlap-fraction", "-0.5"], "overlap_fraction must be between 0 and 1"),
    (["--overlap-k", "1"], "overlap_k must be at least 2"),
    (["--lease-seconds", "1"], "lease_seconds must be at least 5"),
    (["--min-new-labels", "0"], "min_new_labels must be at least 1"),
    (["--model", "gpt"], "unknown model 'gpt'"),
    (["--strategy", "vibes"], "unknown query strategy 'vibes'"),
    (["--audit-fraction", "0.2", "--exploration", "1.5"], "exploration must be between 0 and 1"),
])
def test_invalid_settings_exit_2_and_change_nothing(db_url, args, message):
    run("init", "p", "--labels", "A,B", "--audit-fraction", "0.1", "--db", db_url)
    result = run("configure", "p", *args, "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert settings_of(db_url) == ({"audit_fraction": 0.1}, [])
    bad_init = run("init", "q", "--labels", "A", *args, "--db", db_url)
    assert bad_init.exit_code == 2 and message in bad_init.stderr
    assert "no project named 'q'" in run("status", "q", "--db", db_url).stderr


def test_status_json_has_audit_and_advice_before_a_model(db_url):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    status = json.loads(run("status", "p", "--json", "--db", db_url).stdout)
    assert status["audit"] == {"labelled": 0, "accuracy": None, "ci95": None}
    assert status["advice"] is None


def test_show_item_ids_is_off_by_default_and_switched_by_configure(db_url):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    assert "show_item_ids: False" in run("configure", "p", "--db", db_url).stdout.splitlines()
    shown = run("configure", "p", "--show-item-ids", "--db", db_url)
    assert shown.exit_code == 0 and shown.stdout == "show_item_ids: False -> True\n"
    assert settings_of(db_url)[0] == {"show_item_ids": True}
    assert not retrain_requested(db_url)  # not a model setting
    assert run("configure", "p", "--show-item-ids", "--db", db_url).stdout == "nothing changed\n"
    hidden = run("configure", "p", "--hide-item-ids", "--db", db_url)
    assert hidden.stdout == "show_item_ids: True -> False\n"
    settings, log = settings_of(db_url)
    assert settings == {"show_item_ids": False}
    assert log[0]["details"]["changes"] == {"show_item_ids": {"from": True, "to": False}}
    assert run("init", "q", "--labels", "A", "--show-item-ids", "--db", db_url).exit_code == 0
    assert settings_of(db_url, "q")[0] == {"show_item_ids": True}
