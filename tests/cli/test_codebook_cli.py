"""`labelloop codebook show|set` on both databases: output, the round trip through a file and
stdin, versions, and errors (one line, exit 2, nothing changed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from labelloop.cli import main
from labelloop.store import codebook as store_codebook
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.browse import audit_entries
from labelloop.store.items import rand_key
from labelloop.store.schema import items

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def db(db_url):
    engine = open_engine(db_url)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=["Sport", "Tech news"], seed=1)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"e{i}", "display": {"t": f"t{i}"}, "text": f"text of e{i}",
             "rand": rand_key(1, f"e{i}"), "created_at": T0, "updated_at": T0} for i in range(3)])
        first = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().first()
        store_codebook.pin_example(conn, project=project, tag="Sport", item_id=first, user_id=None)
    yield db_url, engine, first
    engine.dispose()


def version(engine):
    with reading(engine) as conn:
        return store_codebook.current_version(conn, project_id=store_projects.get_project(conn, name="news").id)


def test_set_and_show(db, tmp_path):
    url, engine, first = db
    empty = run("codebook", "show", "news", "--db", url)
    assert empty.exit_code == 0
    assert empty.stdout.startswith("# Codebook of project 'news', version 0\n\n## Sport\n\n(no definition yet)\n")
    assert f"- example #{first} e0: text of e0" in empty.stdout

    path = tmp_path / "sport.md"
    path.write_text("Matches and **results**.\n\n- not: betting\n", encoding="utf-8")
    done = run("codebook", "set", "news", "Sport", "--file", path, "--db", url)
    assert done.exit_code == 0
    assert done.stdout == "tag 'Sport' of project 'news': definition saved as codebook version 1\n"
    again = run("codebook", "set", "news", "Sport", "--file", path, "--db", url)
    assert again.stdout == "tag 'Sport' of project 'news': unchanged (codebook version 1)\n"
    piped = run("codebook", "set", "news", "Tech news", "--file", "-", "--db", url, input="Gadgets.\n")
    assert piped.stdout == "tag 'Tech news' of project 'news': definition saved as codebook version 2\n"

    shown = run("codebook", "show", "news", "--db", url)
    assert shown.stdout.splitlines()[:6] == [
        "# Codebook of project 'news', version 2", "", "## Sport (version 1)", "", "Matches and **results**.", ""]
    assert "## Tech news (version 2)\n\nGadgets.\n" in shown.stdout

    one = run("codebook", "show", "news", "Sport", "--db", url)
    assert one.stdout == "Matches and **results**.\n\n- not: betting\n"  # the source alone: it round-trips
    assert one.stderr == "tag 'Sport': defined in codebook version 1; the codebook is at version 2\n"
    (tmp_path / "back.md").write_text(one.stdout, encoding="utf-8")
    assert "unchanged" in run("codebook", "set", "news", "Sport", "--file", tmp_path / "back.md", "--db", url).stdout
    with reading(engine) as conn:
        log = audit_entries(conn, project_id=store_projects.get_project(conn, name="news").id)
    assert [(e["action"], e["details"]["version"]) for e in log if e["action"] == "codebook.set"] == \
        [("codebook.set", 2), ("codebook.set", 1)]


def test_errors_are_one_line_and_change_nothing(db, tmp_path):
    url, engine, _ = db
    bad = tmp_path / "latin1.md"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    big = tmp_path / "big.md"
    big.write_text("x" * 20_001, encoding="utf-8")
    cases = [
        (("codebook", "set", "news", "Sport", "--file", tmp_path / "missing.md"), "error: no file '"),
        (("codebook", "set", "news", "Sport", "--file", tmp_path), "is a directory"),
        (("codebook", "set", "news", "Sport", "--file", bad), "is not UTF-8 text (byte 3): save it as UTF-8"),
        (("codebook", "set", "news", "Sport", "--file", big), "at most 20,000 are allowed"),
        (("codebook", "set", "news", "Nope", "--file", "-"), "unknown tag 'Nope' in project 'news'"),
        (("codebook", "set", "nope", "Sport", "--file", "-"), "nope"),
        (("codebook", "show", "news", "Nope"), "no active tag 'Nope' in project 'news': use one of 'Sport', 'Tech news'"),
        (("codebook", "show", "nope"), "nope"),
    ]
    for args, words in cases:
        result = run(*args, "--db", url, input="x")
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and words in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stdout == ""
    assert version(engine) == 0
