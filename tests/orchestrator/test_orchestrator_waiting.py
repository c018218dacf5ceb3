"""A project without items makes the orchestrator wait quietly: one INFO line when it starts
waiting (not one per check, never a traceback), a round as soon as items arrive. Both loops
(`orchestrate PROJECT`, and `orchestrate --all` / `serve --orchestrate`), both databases."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from click.testing import CliRunner

from labelloop.cli import main
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.orchestrator import orchestrate, run_forever
from labelloop.store import writing
from labelloop.store import projects as store_projects

WAITING = "{}: waiting for items: the project has none yet (add them with `labelloop import {} FILE ...`)"


def create(engine, *names: str) -> None:
    with writing(engine) as conn:
        for name in names:
            store_projects.create_project(conn, name=name, labels=["A", "B"])


def add_items(engine, settings, project: str) -> None:
    records = [{"id": str(i), "text": f"text number {i} about {'sport' if i % 2 else 'politics'}"} for i in range(30)]
    import_source(engine, project=project, source=MappingSource(records, name="records"),
                  options=ImportOptions(id_column="id", text_columns=["text"]), settings=settings)


def orchestrator_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "labelloop.orchestrator"]


def test_orchestrate_waits_for_items_with_one_line_then_runs(engine, settings, caplog):
    create(engine, "p")
    caplog.set_level(logging.INFO, logger="labelloop.orchestrator")
    stop, done = threading.Event(), threading.Event()
    checks = []
    thread = threading.Thread(target=orchestrate, args=(engine, settings),
                              kwargs={"project": "p", "interval": 0.02, "stop": stop, "on_round": lambda r: done.set()})
    original_wait = stop.wait
    stop.wait = lambda timeout=None: checks.append(timeout) or original_wait(timeout)  # count the checks
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(checks) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(checks) >= 10  # ten checks of an empty project
        add_items(engine, settings, "p")
        assert done.wait(timeout=120), [r.getMessage() for r in orchestrator_records(caplog)]
    finally:
        stop.set()
        thread.join(timeout=60)
    records = orchestrator_records(caplog)
    messages = [r.getMessage() for r in records]
    assert messages.count(WAITING.format("p", "p")) == 1, messages
    assert [r for r in records if r.getMessage() == WAITING.format("p", "p")][0].levelno == logging.INFO
    assert not [r for r in records if r.exc_info or r.levelno >= logging.WARNING], messages
    assert any(m.startswith("p: version 1 serving (cold-start order") for m in messages)


def test_the_server_loop_says_once_per_project_what_it_waits_for(engine, settings, caplog):
    create(engine, "empty", "other")
    caplog.set_level(logging.INFO, logger="labelloop.orchestrator")
    fast = dataclasses.replace(settings, orchestrate_interval=0.02)
    stop = threading.Event()
    passes = []
    original_wait = stop.wait
    stop.wait = lambda timeout=None: passes.append(timeout) or original_wait(timeout)
    thread = threading.Thread(target=run_forever, args=(fast, stop), kwargs={"engine": engine})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(passes) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(passes) >= 10
    finally:
        stop.set()
        thread.join(timeout=60)
    records = orchestrator_records(caplog)
    messages = [r.getMessage() for r in records]
    assert messages.count(WAITING.format("empty", "empty")) == 1 and messages.count(WAITING.format("other", "other")) == 1
    assert not [r for r in records if r.exc_info or r.levelno >= logging.WARNING], messages


def test_orchestrate_once_on_an_empty_project_is_a_clear_error(engine, db_url):
    create(engine, "p")
    result = CliRunner().invoke(main, ["orchestrate", "p", "--once", "--db", db_url], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("error: project 'p' has no items to train on; add them with "
                                              "`labelloop import p FILE ...`")
    assert "Traceback" not in result.output
