"""`labelloop orchestrate` and `status --json`, in process and as real processes that are
killed (SIGKILL) or stopped (SIGTERM) in the middle of writing scores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from click.testing import CliRunner

from labelloop.cli import main
from labelloop.orchestrator import ProjectLock, run_round
from labelloop.store import reading, writing
from labelloop.store import queue as store_queue
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores

# Runs the real CLI with score writes slowed down (10 rows per chunk, 0.25 s each) and a line
# "chunk N" on stdout after each, so the test can strike in the middle of the write phase.
SLOW_CLI = textwrap.dedent(
    """
    import sys, time
    from labelloop.store import scores
    scores.SQLITE_CHUNK_ROWS = scores.POSTGRES_CHUNK_ROWS = 10
    original = scores._Columns.insert
    def slow(*args, _original=original):
        _original(*args)
        print("chunk", flush=True)
        time.sleep(0.25)
    scores._Columns.insert = slow
    from labelloop.cli import main
    main(sys.argv[1:])
    """
)


def cli(db_url: str, settings, *args: str):
    env = {"LABELLOOP_MODELS_DIR": str(settings.models_dir)}
    return CliRunner().invoke(main, [*args, "--db", db_url], env=env, catch_exceptions=False)


def status_model(db_url: str, settings):
    result = cli(db_url, settings, "status", "bbc", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["model"]


def test_orchestrate_once_then_status_shows_the_model(bbc, db_url):
    assert status_model(db_url, bbc.settings) is None
    result = cli(db_url, bbc.settings, "orchestrate", "bbc", "--once")
    assert result.exit_code == 0, result.output
    unlabelled = len(bbc.truth) - len(bbc.labelled)
    assert f"version 1: model, 40 labels, {unlabelled} items scored" in result.output
    model = status_model(db_url, bbc.settings)
    assert set(model) == {"version", "created_at", "labels_used", "cv", "path"}
    assert model["version"] == 1 and model["labels_used"] == 40
    assert 0 <= model["cv"]["accuracy"] <= 1 and 0 <= model["cv"]["macro_f1"] <= 1
    assert Path(model["path"]).is_file() and Path(model["path"]).parent == bbc.settings.models_dir / "bbc"
    table = cli(db_url, bbc.settings, "status", "bbc")
    assert "model: version 1 from 40 labels, CV accuracy" in table.output


def test_orchestrate_errors_are_one_line_and_exit_2(bbc, db_url):
    result = cli(db_url, bbc.settings, "orchestrate", "nope", "--once")
    assert result.exit_code == 2 and result.output.startswith("error: no project named 'nope'")
    result = cli(db_url, bbc.settings, "orchestrate", "bbc", "--once", "--model", "gpt-9")
    assert result.exit_code == 2 and "error: unknown model 'gpt-9'" in result.output
    with ProjectLock(bbc.engine, project_id=bbc.project().id, project_name="bbc", holder="elsewhere:1:x"):
        result = cli(db_url, bbc.settings, "orchestrate", "bbc", "--once")
    assert result.exit_code == 2
    assert "error: another orchestrator holds project 'bbc' (holder elsewhere:1:x" in result.output
    assert status_model(db_url, bbc.settings) is None


def start_slow(db_url: str, settings, *args: str) -> subprocess.Popen:
    env = dict(os.environ, LABELLOOP_MODELS_DIR=str(settings.models_dir))
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "orchestrate", "bbc", *args, "--db", db_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def wait_chunks(proc: subprocess.Popen, n: int) -> None:
    seen = 0
    while seen < n:
        line = proc.stdout.readline()
        assert line, f"the orchestrator ended early: {proc.stderr.read()}"
        seen += line.startswith("chunk")


def test_killed_mid_write_the_previous_version_keeps_serving_and_a_restart_recovers(bbc, db_url):
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    proc = start_slow(db_url, bbc.settings, "--once")
    try:
        wait_chunks(proc, 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    project = bbc.project()
    with reading(bbc.engine) as conn:
        killed = store_runs.list_runs(conn, project_id=project.id)[0]
        assert killed.version == 2 and killed.status == "running"
        assert 10 <= store_scores.count_scores(conn, run_id=killed.id) < len(bbc.truth) - 40  # partly written
    assert project.current_run_id == first.run_id
    uid = bbc.user("ann")
    with writing(bbc.engine) as conn:
        top = store_scores.queue_preview(conn, project=project, run_id=first.run_id, limit=1)[0]["item_id"]
        assert store_queue.next_item(conn, project=project, user_id=uid, lease_seconds=60).item_id == top
    # The next orchestrator fails the interrupted run, deletes its rows and file, and carries on.
    result = CliRunner().invoke(main, ["orchestrate", "bbc", "--once", "--db", db_url],
                                env={"LABELLOOP_MODELS_DIR": str(bbc.settings.models_dir)})
    assert result.exit_code == 0, result.output
    assert "marked interrupted run(s)" in result.output and "version 3: model" in result.output
    with reading(bbc.engine) as conn:
        assert store_runs.get_run(conn, run_id=killed.id).status == "failed"
        assert store_scores.count_scores(conn, run_id=killed.id) == 0
        assert store_runs.current_run(conn, project_id=project.id).version == 3
    assert killed.path is None or not Path(killed.path).exists()
    assert len(list((bbc.settings.models_dir / "bbc").glob("*.joblib"))) == 2


def test_sigterm_mid_write_abandons_the_round_cleanly(bbc, db_url):
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    with writing(bbc.engine) as conn:
        store_runs.request_retrain(conn, project_id=bbc.project().id)
    proc = start_slow(db_url, bbc.settings, "--interval", "0.2")
    try:
        wait_chunks(proc, 2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    assert "abandoned" in err and "version unchanged" in err
    with reading(bbc.engine) as conn:
        runs = store_runs.list_runs(conn, project_id=bbc.project().id)
        assert [(r.version, r.status) for r in runs] == [(2, "failed"), (1, "complete")]
        assert "abandoned: stop requested" in runs[0].error
        assert store_scores.count_scores(conn, run_id=runs[0].id) == 0
        assert store_runs.current_run(conn, project_id=bbc.project().id).id == first.run_id
        assert store_runs.lock_holder(conn, project_id=bbc.project().id) is None  # released on the way out
