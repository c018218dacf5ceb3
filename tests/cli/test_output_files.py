"""Files the command line writes: `backup` and `export` never write through a symbolic link,
never replace a file unless asked (`export --force`), and take the user's umask (exports as
ordinary files, backups owner-only); CSV exports neutralise formula cells unless `--raw`."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from labelloop.cli import main
from labelloop.store import outfiles


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def project_with_items(db_url: str, tmp_path: Path, records: list[dict] | None = None) -> None:
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    data = tmp_path / "items.jsonl"
    records = records or [{"id": "1", "text": "one", "label": "A"}, {"id": "2", "text": "two", "label": ""}]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    imported = run("import", "p", data, "--id-column", "id", "--text-columns", "text", "--label-column", "label",
                   "--db", db_url)
    assert imported.exit_code == 0, imported.output


# ---------------------------------------------------------------------------------- backup

def sqlite_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    assert run("init", "p", "--labels", "A,B", "--db", url).exit_code == 0
    return url


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o600), (0o002, 0o600), (0o000, 0o600), (0o077, 0o600),
                                                (0o277, 0o400)])
def test_backups_are_never_readable_by_others_whatever_the_umask(tmp_path, mask, expected):
    url = sqlite_db(tmp_path)
    with umask(mask):
        result = run("backup", tmp_path / "copy.db", "--db", url)
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "copy.db") == expected
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT name FROM projects").fetchall() == [("p",)]
    copy.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_backup_refuses_to_write_through_a_symbolic_link(tmp_path):
    url = sqlite_db(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "to-file.db").symlink_to(victim)
    (tmp_path / "dangling.db").symlink_to(tmp_path / "created-through-the-link.db")
    for name in ("to-file.db", "dangling.db"):
        result = run("backup", tmp_path / name, "--db", url)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {tmp_path / name} exists already (a symbolic link); choose a new file name\n"
    assert victim.read_text() == "precious" and not (tmp_path / "created-through-the-link.db").exists()
    # a link planted at the old, predictable temporary name is never opened
    (tmp_path / "copy.db.partial").symlink_to(victim)
    assert run("backup", tmp_path / "copy.db", "--db", url).exit_code == 0
    assert victim.read_text() == "precious" and not (tmp_path / "copy.db").is_symlink()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_backup_of_postgresql_points_to_pg_dump(db_url, tmp_path):
    assert run("init", "p", "--labels", "A", "--db", db_url).exit_code == 0
    result = run("backup", tmp_path / "copy.db", "--db", db_url)
    assert result.exit_code == 2 and "for PostgreSQL use pg_dump" in result.stderr
    assert not (tmp_path / "copy.db").exists()


def test_a_link_planted_at_the_temporary_name_is_skipped_not_written_through(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(outfiles.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".out.csv.guessed.tmp").symlink_to(victim)
    with outfiles.new_file(tmp_path / "out.csv", mode=outfiles.EXPORT_MODE) as tmp:
        assert tmp.name == ".out.csv.fresh.tmp" and not tmp.is_symlink()
        tmp.write_text("new")
    assert (tmp_path / "out.csv").read_text() == "new" and victim.read_text() == "precious"


# ---------------------------------------------------------------------------------- export

@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_exports_are_ordinary_files_with_the_users_umask(db_url, tmp_path, mask, expected):
    project_with_items(db_url, tmp_path)
    for suffix in (".csv", ".jsonl", ".parquet"):
        out = tmp_path / f"out{suffix}"
        with umask(mask):
            result = run("export", "p", out, "--db", db_url)
        assert result.exit_code == 0, result.output
        assert mode(out) == expected, (suffix, oct(mode(out)))


def test_export_refuses_an_existing_file_unless_force(db_url, tmp_path):
    project_with_items(db_url, tmp_path)
    out = tmp_path / "out.csv"
    out.write_text("last week's export")
    result = run("export", "p", out, "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr == f"error: {out} exists already (a file); choose a new name, or overwrite it with --force\n"
    assert out.read_text() == "last week's export"
    assert run("export", "p", out, "--force", "--db", db_url).exit_code == 0
    assert out.read_text().splitlines()[0] == "id,text,label,label_source"


def test_export_never_writes_through_a_symbolic_link(db_url, tmp_path):
    project_with_items(db_url, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    result = run("export", "p", link, "--db", db_url)
    assert result.exit_code == 2 and "exists already (a symbolic link)" in result.stderr
    assert run("export", "p", link, "--force", "--db", db_url).exit_code == 0  # replaces the link itself
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text().startswith("id,text")


FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+2", "-3", "@SUM(A1)", "\tlead tab", "\rlead CR", "plain",
            "a=b", ""]


def test_csv_export_neutralises_formula_cells_unless_raw(db_url, tmp_path):
    records = [{"id": f"={i}" if i == 0 else str(i), "text": value, "@note": value, "label": ""}
               for i, value in enumerate(FORMULAS)]
    records[1]["label"] = "-B"
    assert run("init", "p", "--labels", "A,-B", "--db", db_url).exit_code == 0
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert run("import", "p", data, "--id-column", "id", "--text-columns", "text", "--display-columns", "text,@note",
               "--label-column", "label", "--db", db_url).exit_code == 0

    def read(path: Path) -> list[list[str]]:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    assert run("export", "p", tmp_path / "safe.csv", "--db", db_url).exit_code == 0
    safe = read(tmp_path / "safe.csv")
    assert safe[0] == ["id", "text", "'@note", "label", "label_source"]
    shown = ["'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in FORMULAS]
    assert [row[1] for row in safe[1:]] == shown and [row[2] for row in safe[1:]] == shown
    assert safe[1][0] == "'=0" and safe[2][3:] == ["'-B", "human"]

    assert run("export", "p", tmp_path / "raw.csv", "--raw", "--db", db_url).exit_code == 0
    raw = read(tmp_path / "raw.csv")
    assert raw[0][2] == "@note" and [row[1] for row in raw[1:]] == FORMULAS and raw[1][0] == "=0"
    # JSONL and Parquet keep values as they are
    assert run("export", "p", tmp_path / "out.jsonl", "--db", db_url).exit_code == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in lines] == FORMULAS and lines[1]["label"] == "-B"
    assert run("export", "p", tmp_path / "out.parquet", "--db", db_url).exit_code == 0
    assert pd.read_parquet(tmp_path / "out.parquet")["@note"].fillna("").tolist() == FORMULAS


def test_export_help_explains_force_and_raw():
    help_text = run("export", "--help").stdout
    assert "--force" in help_text and "--raw" in help_text and "formula" in help_text
