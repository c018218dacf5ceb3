"""CLI commands of the foundation: init, status, user, token, migrate, backup (both databases)."""

import json
import sqlite3
import subprocess
import sys

from click.testing import CliRunner
from sqlalchemy import func, select

from labelloop.cli import main
from labelloop.store import open_engine, reading, writing
from labelloop.store.projects import create_project
from labelloop.store.schema import projects, users
from labelloop.store.users import authenticate_token


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_init_and_status_json(db_url):
    result = run("init", "reddit", "--labels", "Personal Stories, Advocacy,Other", "--db", db_url)
    assert result.exit_code == 0, result.output
    status = json.loads(run("status", "reddit", "--json", "--db", db_url).stdout)
    assert status["items"] == 0 and status["labelled"] == 0
    assert list(status["labels"]) == ["Personal Stories", "Advocacy", "Other"]


def test_status_table_for_humans(db_url):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    result = run("status", "p", "--db", db_url)
    assert result.exit_code == 0
    assert "0 of 0 items labelled" in result.stdout and "A" in result.stdout


def test_existing_project_is_an_error_with_exit_code_2(db_url):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    result = run("init", "p", "--labels", "C", "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: project 'p' exists already"
    engine = open_engine(db_url)
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(projects)).scalar_one() == 1
    engine.dispose()


def test_unknown_project(db_url):
    run("init", "p", "--labels", "A,B", "--db", db_url)  # a database without it (none at all: test_database_errors)
    result = run("status", "nope", "--db", db_url)
    assert result.exit_code == 2 and "no project named 'nope'" in result.stderr


def test_user_add_generates_a_password_once_and_token_create_prints_only_the_token(db_url):
    result = run("user", "add", "alice", "--role", "labeller", "--db", db_url)
    assert result.exit_code == 0
    password = result.stdout.split("password (shown once): ")[1].strip()
    assert len(password) >= 12
    token = run("token", "create", "alice", "--db", db_url).stdout
    assert token.endswith("\n") and "\n" not in token.strip() and token.startswith("ll_")
    engine = open_engine(db_url)
    with reading(engine) as conn:
        assert authenticate_token(conn, token=token.strip()).name == "alice"
    engine.dispose()


def test_user_add_with_password_stdin_prints_no_password(db_url):
    result = run("user", "add", "root2", "--role", "admin", "--password-stdin", "--db", db_url, input="a long secret\n")
    assert result.exit_code == 0 and "a long secret" not in result.output
    assert "password" not in result.stdout
    short = run("user", "add", "bob", "--role", "admin", "--password-stdin", "--db", db_url, input="x\n")
    assert short.exit_code == 2 and "too short" in short.stderr
    engine = open_engine(db_url)
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1
    engine.dispose()


def test_db_url_from_environment(db_url, monkeypatch):
    monkeypatch.setenv("LABELLOOP_DATABASE_URL", db_url)
    assert run("init", "envproject", "--labels", "A").exit_code == 0
    assert json.loads(run("status", "envproject", "--json").stdout)["items"] == 0


def test_every_command_explains_itself():
    for args in (["--help"], ["init", "--help"], ["status", "--help"], ["user", "add", "--help"],
                 ["token", "create", "--help"], ["migrate", "--help"], ["backup", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "--help" in result.stdout or "Usage" in result.stdout


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "labelloop", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "label texts" in result.stdout


def test_backup_sqlite_is_a_consistent_copy(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = open_engine(url)
    with writing(engine) as conn:
        create_project(conn, name="p", labels=["A"])
    result = run("backup", str(tmp_path / "copy.db"), "--db", url)
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT name FROM projects").fetchall() == [("p",)]
    copy.close()
    again = run("backup", str(tmp_path / "copy.db"), "--db", url)
    assert again.exit_code == 2 and "exists already" in again.stderr
    engine.dispose()


def test_orchestrate_needs_a_project_or_all(db_url):
    assert run("orchestrate", "--db", db_url).exit_code == 2
    assert run("orchestrate", "p", "--all", "--db", db_url).exit_code == 2


def test_orchestrate_all_runs_until_sigterm(db_url):
    import signal
    import time

    run("init", "p", "--labels", "A,B", "--db", db_url)
    proc = subprocess.Popen([sys.executable, "-m", "labelloop", "orchestrate", "--all", "--interval", "0.5",
                             "--db", db_url], stderr=subprocess.PIPE, text=True)
    seen = []
    while not any("orchestrator started" in line for line in seen):  # started (and its handlers set)
        line = proc.stderr.readline()
        assert line, "".join(seen)
        seen.append(line)
    time.sleep(1)  # a few passes
    assert proc.poll() is None, "".join(seen) + proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    err = "".join(seen) + proc.stderr.read()
    assert "orchestrator stopped" in err
    # p has no items: said once, at INFO, in all those passes; never a traceback
    assert err.count("INFO labelloop.orchestrator: p: waiting for items") == 1 and "Traceback" not in err, err
