"""A database that cannot be opened, or that does not exist, through every kind of command.

Unreachable: a PostgreSQL port nobody listens on, a PostgreSQL database that does not exist, a
missing SQLite folder, a file that is not a database, a folder instead of a file, and (as an
unprivileged user) a file without permission. Each gives one line
``error: cannot open database <URL without password>: <reason>`` and exit status 2.
Commands that need an existing database never create one (no file, no lock or WAL files, no
tables on PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from labelloop.cli import _Cli, engine_for, main
from labelloop.store import make_engine, open_engine, reading

PASSWORD = "s3cret-Pw-never-shown"
SRC = Path(__file__).resolve().parents[2] / "src"


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ON_POSTGRESQL = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def pg_missing_database_url(db_url: str) -> str:
    """The test server's URL (from the db_url fixture) with a database that does not exist."""
    url = make_url(db_url).set(database=f"labelloop_missing_{uuid.uuid4().hex[:8]}", password=PASSWORD, query={})
    return url.render_as_string(hide_password=False)


def unreachable(kind: str, tmp_path: Path, db_url: str | None = None) -> tuple[str, str]:
    """(URL, how the error line shows it) of a database that cannot be opened."""
    if kind == "pg-closed-port":
        url = f"postgresql://labeller:{PASSWORD}@127.0.0.1:{closed_port()}/labels"
        return url, url.replace(PASSWORD, "***")
    if kind == "pg-missing-database":
        assert db_url is not None
        url = pg_missing_database_url(db_url)
        return url, url.replace(PASSWORD, "***")
    if kind == "sqlite-missing-folder":
        url = f"sqlite:///{tmp_path / 'no-such-folder' / 'labelloop.db'}"
        return url, url
    if kind == "sqlite-not-a-database":
        (tmp_path / "notes.db").write_text("these are my notes, not a database\n" * 100)
        url = f"sqlite:///{tmp_path / 'notes.db'}"
        return url, url
    if kind == "sqlite-folder":
        (tmp_path / "a-folder.db").mkdir()
        url = f"sqlite:///{tmp_path / 'a-folder.db'}"
        return url, url
    raise AssertionError(kind)


REASONS = {
    "pg-closed-port": "Connection refused",
    "pg-missing-database": "does not exist",
    "sqlite-missing-folder": "does not exist; create it or choose another path",
    "sqlite-not-a-database": "file is not a database",
    "sqlite-folder": "is a folder, not a database file",
}


def commands(tmp_path: Path) -> list[list[str]]:
    data = tmp_path / "items.csv"
    data.write_text("id,t\n1,one\n")
    return [
        ["status", "p"], ["status", "p", "--json"], ["configure", "p"], ["configure", "p", "--audit-fraction", "0.2"],
        ["init", "p", "--labels", "A,B"], ["user", "add", "alice", "--role", "admin"], ["token", "create", "alice"],
        ["import", "p", str(data), "--id-column", "id", "--text-columns", "t"], ["export", "p", str(tmp_path / "o.csv")],
        ["labels", "add", "p", "C"], ["labels", "rename", "p", "A", "Z"], ["labels", "merge", "p", "A", "B"],
        ["labels", "retire", "p", "A"], ["orchestrate", "p", "--once"], ["orchestrate", "p"], ["orchestrate", "--all"],
        ["backup", str(tmp_path / "copy.db")], ["migrate"], ["demo", "--no-serve"], ["user", "passwd", "alice"],
        ["user", "list"], ["user", "list", "--json"],
    ]


def check_every_command(url: str, shown: str, kind: str, tmp_path: Path) -> None:
    for args in commands(tmp_path):
        result = run(*args, "--db", url)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "", (args, result.stdout)
        line = result.stderr
        assert line.startswith(f"error: cannot open database {shown}: "), (args, line)
        assert REASONS[kind] in line and line.count("\n") == 1, (args, line)
        assert PASSWORD not in line and "Traceback" not in line
    assert not (tmp_path / "no-such-folder").exists()
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("kind", [k for k in REASONS if k != "pg-missing-database"])
def test_an_unreachable_database_is_one_line_and_exit_2_in_every_command(kind, tmp_path):
    check_every_command(*unreachable(kind, tmp_path), kind, tmp_path)


@ON_POSTGRESQL
def test_a_missing_postgresql_database_is_one_line_and_exit_2_in_every_command(db_url, tmp_path):
    kind = "pg-missing-database"
    check_every_command(*unreachable(kind, tmp_path, db_url), kind, tmp_path)


def serve_exits_2(url: str, shown: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "LABELLOOP_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "labelloop", "serve", "--port", str(closed_port())],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: cannot open database {shown}: ") and done.stderr.count("\n") == 1, done.stderr
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize("kind", ["pg-closed-port", "sqlite-missing-folder"])
def test_serve_on_an_unreachable_database_exits_2_with_one_line(kind, tmp_path):
    serve_exits_2(*unreachable(kind, tmp_path))


@ON_POSTGRESQL
def test_serve_on_a_missing_postgresql_database_exits_2_with_one_line(db_url, tmp_path):
    serve_exits_2(*unreachable("pg-missing-database", tmp_path, db_url))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to "
                    "run a command as an unprivileged user")
def test_permission_denied_is_one_line():
    folder = Path(tempfile.mkdtemp(prefix="labelloop-perm-"))  # pytest's tmp_path is private to root
    try:
        folder.chmod(0o755)
        url = f"sqlite:///{folder / 'private.db'}"
        open_engine(url).dispose()
        os.chmod(folder / "private.db", 0o600)  # root's own file
        (folder / "closed").mkdir(mode=0o700)  # a folder the user may not enter
        closed = f"sqlite:///{folder / 'closed' / 'x.db'}"

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                       sys.executable, "-m", "labelloop", *args]
            return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=folder,
                                  env={**os.environ, "PYTHONPATH": str(SRC)})

        done = as_nobody("status", "p", "--db", url)
        entering = [as_nobody(*args, "--db", closed) for args in (["status", "p"], ["init", "p", "--labels", "A"])]
    finally:
        shutil.rmtree(folder)
    if "No module named" in done.stderr or "Permission denied: '" in done.stderr:
        pytest.skip(f"the unprivileged user cannot run this checkout: {done.stderr.splitlines()[-1]}")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: cannot open database {url}: permission denied: this user cannot read and "
                           "write the file and its folder (unable to open database file)\n")
    for other in entering:
        assert other.returncode == 2, other.stderr
        assert other.stderr == f"error: cannot open database {closed}: permission denied on '{folder / 'closed' / 'x.db'}'\n"


READING_COMMANDS = [
    ["status", "p"], ["configure", "p"], ["configure", "p", "--lease-seconds", "60"], ["backup", "COPY"],
    ["export", "p", "OUT"], ["token", "create", "alice"], ["labels", "add", "p", "C"], ["orchestrate", "p", "--once"],
    ["orchestrate", "--all"], ["import", "p", "DATA", "--id-column", "id", "--text-columns", "t"],
    ["user", "passwd", "alice"], ["user", "list"], ["user", "list", "--json"],
]


def test_commands_that_need_a_database_do_not_create_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    (tmp_path / "data.csv").write_text("id,t\n1,one\n")
    before = sorted(os.listdir(tmp_path))
    for args in READING_COMMANDS:
        args = [{"COPY": "copy.db", "OUT": "out.csv", "DATA": "data.csv"}.get(a, a) for a in args]
        result = run(*args)  # the default database: sqlite:///labelloop.db in the working folder
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr == (
            f"error: no labelloop database at sqlite:///labelloop.db (no file {str(tmp_path / 'labelloop.db')!r}); "
            "create one with `labelloop init PROJECT --labels A,B`, or give --db URL of an existing one\n"), args
        assert sorted(os.listdir(tmp_path)) == before, args  # no labelloop.db, -wal, -shm or -writer.lock
    assert run("init", "p", "--labels", "A,B").exit_code == 0  # init creates it
    assert "labelloop.db" in os.listdir(tmp_path)
    assert run("configure", "p").exit_code == 0 and run("status", "p").exit_code == 0


@ON_POSTGRESQL
def test_commands_that_need_a_database_do_not_create_tables_on_postgresql(db_url, tmp_path):
    (tmp_path / "data.csv").write_text("id,t\n1,one\n")
    for args in READING_COMMANDS:
        args = [{"COPY": str(tmp_path / "c.db"), "OUT": str(tmp_path / "o.csv"), "DATA": str(tmp_path / "data.csv")}
                .get(a, a) for a in args]
        result = run(*args, "--db", db_url)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: no labelloop database at postgresql") and \
            "(it has no labelloop tables); create one with `labelloop init" in result.stderr, (args, result.stderr)
    probe = make_engine(db_url)  # no open_engine: it would migrate
    try:
        with probe.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        probe.dispose()


def test_an_existing_empty_sqlite_file_is_not_a_labelloop_database_for_reading(tmp_path):
    (tmp_path / "empty.db").touch()
    result = run("status", "p", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 2 and "(it has no labelloop tables)" in result.stderr


@ON_POSTGRESQL
def test_a_connection_lost_mid_command_is_one_line(db_url):
    """A database that goes away after it was opened (here: PostgreSQL ends our session) is
    reported by the CLI's root like one that could not be opened, not with a traceback."""
    group = _Cli("labelloop")

    @group.command()
    def lose() -> None:
        engine = engine_for(db_url)
        with reading(engine) as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            killer = make_engine(db_url)
            with killer.begin() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killer.dispose()
            conn.execute(text("SELECT 1"))

    result = CliRunner().invoke(group, ["lose"], catch_exceptions=False)
    assert result.exit_code == 2
    shown = make_url(db_url).render_as_string(hide_password=True)
    assert result.stderr.startswith(f"error: cannot open database {shown}: ") and result.stderr.count("\n") == 1
    assert "terminat" in result.stderr
