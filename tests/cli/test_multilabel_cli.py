"""Multi-label projects through the command line: init, configure, import and export (both databases)."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labelloop.cli import main
from labelloop.store import open_engine, reading
from labelloop.store import projects as store_projects
from labelloop.store.schema import annotations, items, tags

ROWS = [("d0", "a game", "use::gameplaying|interface::x11"), ("d1", "a shell tool", "interface::commandline"),
        ("d2", "nothing applies", "__none__"), ("d3", "not labelled yet", ""),
        ("d4", "web server", "network::server|interface::web|interface::daemon")]
TAGS = "interface::commandline,interface::daemon,interface::web,interface::x11,network::server,use::gameplaying"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def snapshot(db_url):
    engine = open_engine(db_url)
    try:
        with reading(engine) as conn:
            return [[tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                    for t in (tags, items, annotations)]
    finally:
        engine.dispose()


def write_input(path, rows=ROWS):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "labels"])
        writer.writerows(rows)
    return path


def test_init_configure_import_export(db_url, tmp_path):
    created = run("init", "deb", "--labels", TAGS, "--multi-label", "--db", db_url)
    assert created.exit_code == 0 and created.output.startswith("created multi-label project 'deb' with tags:")
    shown = run("configure", "deb", "--db", db_url)
    assert shown.exit_code == 0 and shown.output.splitlines()[0] == "multi_label: true"
    assert "--multi-label" not in run("configure", "--help").output  # fixed for the project's life
    imported = run("import", "deb", write_input(tmp_path / "in.csv"), "--id-column", "id", "--text-columns", "title",
                   "--label-column", "labels", "--db", db_url)
    assert imported.exit_code == 0, imported.output
    assert "imported 5 items (0 skipped as already present, 4 labels)" in imported.output
    out = tmp_path / "out.csv"
    assert run("export", "deb", out, "--db", db_url).exit_code == 0
    with open(out, newline="", encoding="utf-8") as f:
        back = {r["id"]: (r["labels"], r["label_source"]) for r in csv.DictReader(f)}
    assert back == {
        "d0": ("interface::x11|use::gameplaying", "human"), "d1": ("interface::commandline", "human"),
        "d2": ("__none__", "human"), "d3": ("", ""),
        "d4": ("interface::daemon|interface::web|network::server", "human"),
    }
    semi = tmp_path / "semi.csv"
    assert run("export", "deb", semi, "--label-separator", ";", "--none-value", "NONE", "--db", db_url).exit_code == 0
    assert "interface::x11;use::gameplaying" in semi.read_text() and ",NONE," in semi.read_text()
    parquet = tmp_path / "out.parquet"
    assert run("export", "deb", parquet, "--db", db_url).exit_code == 0
    assert {r["id"]: r["labels"] for r in pq.read_table(parquet).to_pylist()}["d2"] == []
    assert run("configure", "sl", "--db", db_url).exit_code == 2  # no such project
    single = run("init", "sl", "--labels", "A,B", "--db", db_url)
    assert single.exit_code == 0 and run("configure", "sl", "--db", db_url).output.startswith("multi_label: false")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--label-separator", ""), "error: --label-separator must not be empty"),
        (("--none-value", " "), "error: --none-value must be a non-empty word"),
        ((), "error: {path}, line 3, field 'labels': unknown tag 'nope'; project 'deb' has: "),
        (("--add-labels", "--label-separator", ";"),
         "error: {path}, line 2, field 'labels': cannot add tag: invalid tag name"),
    ],
)
def test_import_errors_are_one_line_exit_2_and_change_nothing(db_url, tmp_path, args, message):
    assert run("init", "deb", "--labels", TAGS, "--multi-label", "--db", db_url).exit_code == 0
    before = snapshot(db_url)
    path = write_input(tmp_path / "bad.csv", [("n0", "x", "interface::web"), ("n1", "y", "interface::web|nope"),
                                              ("n2", "z", "interface::x11|\x07")])
    if "--add-labels" in args:
        path = write_input(tmp_path / "bad.csv", [("n0", "x", "new tag;\x07bell")])
    result = run("import", "deb", path, "--id-column", "id", "--text-columns", "title", "--label-column", "labels",
                 *args, "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr.startswith(message.format(path=path)) and result.stderr.count("\n") == 1, result.stderr
    assert snapshot(db_url) == before


def test_the_wrong_kind_of_project_and_the_tag_limit(db_url, tmp_path):
    too_many = ",".join(f"t{i}" for i in range(64))
    result = run("init", "big", "--labels", too_many, "--multi-label", "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr == ("error: a multi-label project has at most 63 tags, retired ones included: project 'big' "
                             "has 0 and would have 64; merge or leave out tags\n")
    assert run("init", "big", "--labels", too_many, "--db", db_url).exit_code == 0  # single-label: no limit
    strategy = run("init", "ml", "--labels", "A,B", "--multi-label", "--strategy", "margin", "--db", db_url)
    assert strategy.exit_code == 2 and "unknown query strategy 'margin' for a multi-label project" in strategy.stderr
    assert run("init", "ml", "--labels", "A,B", "--multi-label", "--strategy", "mean_uncertainty",
               "--db", db_url).exit_code == 0
    before = snapshot(db_url)
    path = write_input(tmp_path / "in.csv", [("s0", "x", "t1")])
    for verb in (("import", "big", path, "--id-column", "id", "--text-columns", "title", "--label-column", "labels",
                  "--label-separator", "|"),
                 ("export", "big", tmp_path / "big.csv", "--none-value", "NONE")):
        result = run(*verb, "--db", db_url)
        assert result.exit_code == 2 and result.stderr.startswith(
            "error: --label-separator and --none-value apply to multi-label projects; project 'big' is single-label")
    assert not (tmp_path / "big.csv").exists() and snapshot(db_url) == before
    engine = open_engine(db_url)
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="ml").setting("strategy") == "mean_uncertainty"
    engine.dispose()
