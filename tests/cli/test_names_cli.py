"""Names with control or bidirectional-control characters, or '.' and '..', are refused
wherever the command line or the Python API creates or renames one (both databases), with one
line and exit status 2, and nothing changes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

import labelloop
from labelloop.cli import main
from labelloop.errors import InvalidInputError
from labelloop.store import open_engine

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "admin\u202enimda" reads "adminadmin"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def rows(db_url: str) -> tuple:
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT name FROM {t} ORDER BY id")).scalars().all()
                         for t in ("projects", "tags", "users")) + (
                conn.execute(text("SELECT count(*) FROM items")).scalar_one(),)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("bad", "problem"), [
    (f"sales{RLO}gpj.exe", "bidirectional control characters are not allowed (it has U+202E"),
    ("..", "'.' and '..' are not allowed as names"),
    ("tab\x7fdel", "control characters are not allowed (it has U+007F)"),
])
def test_every_command_that_names_something_refuses_bad_names(db_url, tmp_path, bad, problem):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    data = tmp_path / "items.csv"
    data.write_text(f"id,text,label\n1,one,A\n2,two,{bad}\n", encoding="utf-8")
    before = rows(db_url)
    attempts = [
        (["init", bad, "--labels", "A,B"], f"error: invalid project name {bad!r}: {problem}"),
        (["init", "q", "--labels", f"A,{bad}"], f"error: invalid tag name {bad!r}: {problem}"),
        (["labels", "add", "p", bad], f"error: invalid tag name {bad!r}: {problem}"),
        (["labels", "rename", "p", "A", bad], f"error: invalid tag name {bad!r}: {problem}"),
        (["import", "p", data, "--id-column", "id", "--text-columns", "text", "--label-column", "label",
          "--add-labels"], f"error: {data}, line 3, field 'label': cannot add tag: invalid tag name {bad!r}: {problem}"),
        (["user", "add", bad, "--role", "admin"], f"error: invalid user name {bad!r}: {problem}"),
    ]
    for args, message in attempts:
        result = run(*args, "--db", db_url)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, (args, result.stderr)
    assert rows(db_url) == before


def test_a_refused_name_creates_no_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    assert run("init", "..", "--labels", "A,B").exit_code == 2
    assert run("init", "p", "--labels", f"A,B{RLO}").exit_code == 2
    assert run("user", "add", f"x{RLO}", "--role", "admin").exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_refuses_bad_names(db_url):
    with pytest.raises(InvalidInputError, match=r"invalid project name '\.\.'"):
        labelloop.create_project("..", labels=["A"], db=db_url)
    with pytest.raises(InvalidInputError, match="invalid tag name 'A\\\\u202e'"):
        labelloop.create_project("p", labels=[f"A{RLO}"], db=db_url)
    assert rows(db_url) == ([], [], [], 0)
