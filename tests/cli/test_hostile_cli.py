"""Hostile input through the command line, on SQLite and PostgreSQL (the web server's share is
tests/server/test_hostile_input.py): SQL fragments and markup in names are stored as the
strings they are, bad files are refused whole, and `export` writes exactly where it is told.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from labelloop.cli import main
from labelloop.store import open_engine

TABLES = ["users", "api_tokens", "projects", "tags", "items", "annotations", "assignments"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def snapshot(db_url: str) -> str:
    engine = open_engine(db_url)
    digest = hashlib.sha256()
    try:
        with engine.connect() as conn:
            for table in TABLES:
                for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")):
                    digest.update(repr(tuple(row)).encode())
    finally:
        engine.dispose()
    return digest.hexdigest()


def scalar(db_url: str, sql: str, **params):
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


HOSTILE_NAMES = ["x'); DROP TABLE items; --", "\" OR 1=1 --", "<script>alert(1)<\\script>", "Robert'; DELETE FROM users"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_sql_and_markup_in_project_and_tag_names_are_plain_strings(db_url, tmp_path, name):
    assert run("init", "keep", "--labels", "A,B", "--db", db_url).exit_code == 0
    data = tmp_path / "items.csv"
    data.write_text("id,title\n1,one\n2,two\n")
    assert run("import", "keep", data, "--id-column", "id", "--text-columns", "title", "--db", db_url).exit_code == 0
    created = run("init", name, "--labels", f"{name},B", "--db", db_url)
    assert created.exit_code == 0, created.output
    assert scalar(db_url, "SELECT count(*) FROM projects WHERE name = :n", n=name) == 1
    assert scalar(db_url, "SELECT count(*) FROM tags WHERE name = :n", n=name) == 1
    assert scalar(db_url, "SELECT count(*) FROM items") == 2  # nothing dropped or deleted
    shown = run("status", name, "--json", "--db", db_url)
    assert shown.exit_code == 0 and f'"{name}": 0' in shown.output.replace('\\"', '"').replace("\\\\", "\\")


def test_sql_in_user_names_and_control_characters_in_names_are_refused_or_literal(db_url):
    name = "robert');DROP_TABLE_users;--"
    assert run("user", "add", name, "--role", "labeller", "--db", db_url).exit_code == 0
    assert scalar(db_url, "SELECT count(*) FROM users WHERE name = :n", n=name) == 1
    before = snapshot(db_url)
    for bad in ("a b", "tab\tname", "esc\x1bname", ""):
        result = run("user", "add", bad, "--role", "labeller", "--db", db_url)
        assert result.exit_code == 2 and result.output.startswith("error: invalid user name"), bad
    for bad in ("bell\x07project", "new\nline", " padded"):
        result = run("init", bad, "--labels", "A,B", "--db", db_url)
        assert result.exit_code == 2 and "invalid project name" in result.output, bad
    result = run("init", "p", "--labels", "A,esc\x1bB", "--db", db_url)
    assert result.exit_code == 2 and "control characters" in result.output
    assert snapshot(db_url) == before


def test_huge_fields_nul_bytes_and_control_characters_on_import(db_url, tmp_path):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    args = ("--id-column", "id", "--text-columns", "title", "--db", db_url)
    before = snapshot(db_url)
    huge = tmp_path / "huge.csv"
    huge.write_text("id,title\n1,fine\n2," + "x" * 1_000_001 + "\n")
    result = run("import", "p", huge, *args)
    # (the csv module's own limit or the importer's check, whichever is lower, names the line)
    assert result.exit_code == 2 and "huge.csv, line 3" in result.output and "longer than the limit" in result.output
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"id,title\n1,fine\n2,a\x00b\n")
    result = run("import", "p", nul, *args)
    assert result.exit_code == 2 and "NUL" in result.output
    assert snapshot(db_url) == before  # all or nothing
    # other control characters and direction overrides are text: imported verbatim
    odd = tmp_path / "odd.csv"
    odd.write_text('id,title\n1,"\x1b[31mred\x07 \u202eevil\u202c"\n', encoding="utf-8")
    assert run("import", "p", odd, *args).exit_code == 0
    stored = scalar(db_url, "SELECT text FROM items WHERE external_id = '1'")
    assert stored == "\x1b[31mred\x07 \u202eevil\u202c"


def test_export_writes_exactly_where_told(db_url, tmp_path, monkeypatch):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    data = tmp_path / "items.csv"
    data.write_text("id,title\n1,one\n")
    assert run("import", "p", data, "--id-column", "id", "--text-columns", "title", "--db", db_url).exit_code == 0
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work)
    # relative paths with '..' are resolved like any program would, no further
    assert run("export", "p", "sub/../a.csv", "--db", db_url).exit_code == 0
    assert run("export", "p", "../b.csv", "--db", db_url).exit_code == 0
    assert (work / "a.csv").is_file() and (tmp_path / "b.csv").is_file()
    # odd but legal names are written as given
    for name in ("with space.csv", "ünï cødé.jsonl", "semi;colon.csv", "$(touch pwned).csv"):
        assert run("export", "p", name, "--db", db_url).exit_code == 0, name
        assert (work / name).is_file()
    assert run("export", "p", "--db", db_url, "--", "-dash.csv").exit_code == 0  # not taken for an option
    assert (work / "-dash.csv").is_file() and not (work / "pwned").exists()
    # a symbolic link at the target is an existing file: refused, or replaced with --force; its
    # destination is never written through
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, work / "link.csv")
    refused = run("export", "p", "link.csv", "--db", db_url)
    assert refused.exit_code == 2 and "exists already (a symbolic link)" in refused.stderr
    assert (work / "link.csv").is_symlink()
    assert run("export", "p", "link.csv", "--force", "--db", db_url).exit_code == 0
    assert victim.read_text() == "precious"
    assert not (work / "link.csv").is_symlink() and (work / "link.csv").read_text().startswith("id,")
    # refused: a folder, a missing folder, an unknown format; nothing is left behind
    listing = sorted(p.name for p in work.rglob("*"))
    for target, message in [("sub", "unknown export format"), ("nowhere/x.csv", "does not exist"),
                            ("x.csv/..", "unknown export format"), ("evil.sh", "unknown export format")]:
        result = run("export", "p", target, "--db", db_url)
        assert result.exit_code == 2 and message in result.output, (target, result.output)
    assert sorted(p.name for p in work.rglob("*")) == listing
    assert victim.read_text() == "precious"
