"""`labelloop import`, `export` and `demo` through the command line (both databases)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from labelloop.cli import main
from labelloop.io.demo_data import read_articles
from labelloop.store import open_engine, reading
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import annotations, items

LABELLOOP = Path(sys.executable).parent / "labelloop"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def count(db_url, table, *where):
    engine = open_engine(db_url)
    try:
        with reading(engine) as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    finally:
        engine.dispose()


def status(db_url, project):
    result = run("status", project, "--json", "--db", db_url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_reddit_import_reimport_and_update(db_url, shared_datasets, tmp_path):
    assert run("init", "sg", "--labels", "Advice,Other", "--db", db_url).exit_code == 0
    path = shared_datasets / "reddit_sg.csv"
    args = ("--id-column", "id", "--text-columns", "title,selftext", "--db", db_url)
    first = run("import", "sg", path, *args)
    assert first.exit_code == 0, first.output
    assert first.stdout == "imported 3,155 items (0 skipped as already present, 0 labels)\n"
    again = run("import", "sg", path, *args)
    assert again.stdout == "imported 0 items (3,155 skipped as already present, 0 labels)\n"
    assert status(db_url, "sg")["items"] == 3155
    # --update replaces text and display of existing ids
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).head(3)
    frame["title"] = frame["title"] + " [edited]"
    edited = tmp_path / "edited.csv"
    frame.to_csv(edited, index=False)
    result = run("import", "sg", edited, *args, "--update")
    assert result.stdout == "imported 0 items (3 updated, 0 skipped, 0 labels)\n"
    engine = open_engine(db_url)
    with reading(engine) as conn:
        text = conn.execute(select(items.c.text).where(items.c.external_id == frame["id"][0])).scalar_one()
        display = conn.execute(select(items.c.display).where(items.c.external_id == frame["id"][0])).scalar_one()
    engine.dispose()
    assert text.startswith(frame["title"][0] + "\n\n") and display["title"].endswith(" [edited]")


def test_bbc_labels_status_counts_and_export_round_trip(db_url, shared_datasets, tmp_path):
    assert run("init", "bbc", "--labels", "tech,sports", "--db", db_url).exit_code == 0
    result = run("import", "bbc", shared_datasets / "bbc_news.csv", "--id-column", "id", "--text-columns",
                 "title,body", "--label-column", "label", "--add-labels", "--db", db_url)
    assert result.stdout == (
        "imported 2,225 items (0 skipped as already present, 2,225 labels); "
        "new tags: business, entertainment, politics\n"
    )
    labels = status(db_url, "bbc")["labels"]
    assert sorted(labels.values(), reverse=True) == [511, 510, 417, 401, 386]
    assert labels["sports"] == 511 and labels["business"] == 510 and labels["entertainment"] == 386
    table = run("status", "bbc", "--db", db_url).stdout
    assert "2,225 of 2,225 items labelled" in table and "511" in table
    assert count(db_url, annotations, annotations.c.source == "import", annotations.c.user_id.is_(None)) == 2225
    out = tmp_path / "bbc.jsonl"
    result = run("export", "bbc", out, "--db", db_url)
    assert result.stdout == f"exported 2,225 items to {out}\n"
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    original = pd.read_csv(shared_datasets / "bbc_news.csv", dtype=str, keep_default_na=False)
    assert [r["id"] for r in exported] == list(original["id"])
    assert [r["label"] for r in exported] == list(original["label"])
    assert {r["label_source"] for r in exported} == {"human"}
    assert [r["body"] for r in exported[:50]] == list(original["body"][:50])


def test_export_errors(db_url, tmp_path):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    result = run("export", "p", tmp_path / "missing" / "out.csv", "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'missing' / 'out.csv'}: the folder '{tmp_path / 'missing'}' does not exist\n"
    result = run("export", "p", tmp_path / "out.txt", "--db", db_url)
    assert result.exit_code == 2 and "unknown export format '.txt'" in result.stderr
    result = run("export", "p", tmp_path / "out.csv", "--with-predictions", "--db", db_url)
    assert result.exit_code == 2 and "project 'p' has no current model yet" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_input_prints_one_line_and_exit_code_2(db_url, tmp_path):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    path = tmp_path / "x.csv"
    path.write_text("id,title\n1,a\n2,b\n1,c\n")
    result = run("import", "p", path, "--id-column", "id", "--text-columns", "title", "--db", db_url)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}, line 4, field 'id': duplicate id '1': also on line 2\n"
    assert count(db_url, items) == 0


def test_import_in_a_real_subprocess_with_parquet(db_url, tmp_path):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    path = tmp_path / "items.parquet"
    pd.DataFrame({"doc": [f"d{i}" for i in range(50)], "text": [f"text {i}" for i in range(50)],
                  "tag": ["A", "B", ""] * 16 + ["A", "B"]}).to_parquet(path, index=False)
    env = {**os.environ, "LABELLOOP_IMPORT_CHUNK_ROWS": "7"}
    cmd = [str(LABELLOOP), "import", "p", str(path), "--id-column", "doc", "--text-columns", "text",
           "--label-column", "tag", "--db", db_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "imported 50 items (0 skipped as already present, 34 labels)\n"
    proc = subprocess.run(cmd[:-2] + ["--label-column", "nope", "--db", db_url], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {path}, field 'nope': no label column 'nope'; available columns: doc, text, tag\n"
    assert count(db_url, items) == 50


def test_demo_sets_up_project_and_admin_once(db_url):
    first = run("demo", "--no-serve", "--db", db_url)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0] == "created project 'bbc-news' with 2,225 unlabelled articles"
    password = lines[1].split("password (shown once): ")[1]
    second = run("demo", "--no-serve", "--db", db_url)
    assert second.stdout.splitlines() == [
        "project 'bbc-news' exists already; left as it is",
        "user 'admin' exists already; log in with its password",
    ]
    assert password not in second.output
    engine = open_engine(db_url)
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name="bbc-news")
        assert project.tag_names == ["business", "entertainment", "politics", "sports", "tech"]
        assert store_users.authenticate_password(conn, name="admin", password=password).is_admin
        item = conn.execute(select(items).where(items.c.display["title"].as_string()
                                                == "Ad sales boost Time Warner profit")).one()
        ids = dict(conn.execute(select(items.c.external_id, items.c.display["title"].as_string())
                                .order_by(items.c.id)).all())
    engine.dispose()
    assert item.text.startswith("Ad sales boost Time Warner profit\n\nQuarterly profits at US media giant")
    assert item.label_tag_id is None and item.n_labels == 0
    # neutral ids, bbc-0001 to bbc-2225 in database order, and neither tells the topic
    assert list(ids) == [f"bbc-{n:04d}" for n in range(1, 2226)]
    topic = {a["title"]: a["topic"] for a in read_articles()}
    runs = sum(topic[a] != topic[b] for a, b in zip(list(ids.values()), list(ids.values())[1:]))
    assert runs > 1000  # sorted by topic there would be 4 changes; shuffled, about 4 in 5 neighbours differ
    assert {topic[t] for t in list(ids.values())[:100]} == set(project.tag_names)
    assert status(db_url, "bbc-news")["items"] == 2225 and status(db_url, "bbc-news")["labelled"] == 0


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_export_with_predictions_header(kind, db_url, tmp_path):
    run("init", "p", "--labels", "A,B", "--db", db_url)
    path = tmp_path / "in.csv"
    path.write_text("id,title\n1,a\n")
    run("import", "p", path, "--id-column", "id", "--text-columns", "title", "--db", db_url)
    out = tmp_path / f"out.{kind}"
    assert run("export", "p", out, "--db", db_url).exit_code == 0
    frame = pd.read_csv(out) if kind == "csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["id", "title", "label", "label_source"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_and_the_printed_password_logs_in(db_url):
    port = _free_port()
    proc = subprocess.Popen([str(LABELLOOP), "demo", "--port", str(port), "--db", db_url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith("created project 'bbc-news' with 2,225")
        password = proc.stdout.readline().split("password (shown once): ")[1].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the demo server did not start"
            time.sleep(0.3)
        with httpx.Client(base_url=base, timeout=10) as client:
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            wrong = client.post("/login", data={"username": "admin", "password": "guess-me-not",
                                                "csrf_token": token, "next": "/"})
            assert wrong.status_code == 401
            login = client.post("/login", data={"username": "admin", "password": password, "csrf_token": token,
                                                "next": "/"})
            assert login.status_code == 303
    finally:
        proc.terminate()
        proc.wait(timeout=30)
