"""Model suggestions (issue 14) through the server, on both databases: what ``next`` answers, what
the assignment records, never on audit or overlap items, the settings and the dashboard figures."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from labelloop.cli import main
from labelloop.errors import InvalidInputError
from labelloop.server import create_app
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import scores as store_scores
from labelloop.store.schema import assignments, items, model_runs, projects, utcnow
from labelloop.store.setscores import write_set_scores
from labelloop.store.suggestions import interval95, suggestion_figures

API = "/api/projects/news"


def scored_run(engine, project, *, tag: str = "Politics", confidence: float = 0.9) -> int:
    """A complete run of ``project`` predicting ``tag`` for every item, made the current one."""
    with writing(engine) as conn:
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id))
                   .scalars())
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="tfidf-logreg", strategy="margin",
            labels_used=10, created_at=utcnow(), metrics={"state": "model"})).inserted_primary_key[0]
        store_scores.insert_scores(conn, run_id=run_id, item_ids=ids, priorities=[100.0 - k for k in range(len(ids))],
                                   predicted_tag_ids=[project.tag_id(tag)] * len(ids),
                                   confidences=[confidence] * len(ids))
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
    return run_id


def configure(engine, project, **values) -> None:
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=project.id, values=values)


def login(client, name: str) -> str:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": name, "password": "correct horse", "csrf_token": csrf, "next": "/"})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def recorded(engine, user_id: int) -> list[tuple]:
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(assignments.c.item_id, assignments.c.predicted_tag_id, assignments.c.predicted_mask,
                   assignments.c.suggest_mode).where(assignments.c.user_id == user_id).order_by(assignments.c.id))]


@pytest.mark.parametrize("mode", ["order", "preselect"])
def test_next_carries_the_suggestion_and_the_assignment_records_it(world, engine, mode):
    configure(engine, world.project, suggestions=mode, audit_fraction=0.0)
    scored_run(engine, world.project)
    politics = world.project.tag_id("Politics")
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        fast = client.post(f"{API}/next", headers=world.auth("ann"))  # bearer: the fast path
        assert fast.status_code == 200
        expected = {"mode": mode, "top": "Politics", "tags": ["Politics", "Sport", "Tech"], "confidence": 0.9}
        assert fast.json()["suggestion"] == expected
        item = fast.json()["item"]["id"]
        assert recorded(engine, world.ids["ann"]) == [(item, politics, None, mode)]
        # the label is the suggestion: accepted
        assert client.post(f"{API}/items/{item}/labels", json={"label": "Politics"},
                           headers=world.auth("ann")).status_code == 201
        # undo brings the item back with its suggestion
        undone = client.post(f"{API}/undo", headers=world.auth("ann")).json()
        assert undone["item"]["id"] == item and undone["suggestion"] == expected
        assert client.post(f"{API}/items/{item}/labels", json={"label": "Sport"},
                           headers=world.auth("ann")).status_code == 201
        # a browser session: the FastAPI route
        csrf = login(client, "bob")
        session = client.post(f"{API}/next", headers={"X-CSRF-Token": csrf})
        assert session.json()["suggestion"] == expected
        bob_item = session.json()["item"]["id"]
        assert client.post(f"{API}/items/{bob_item}/labels", json={"label": "Politics"},
                           headers={"X-CSRF-Token": csrf}).status_code == 201
        # a steered queue (random) carries it too
        steered = client.post(f"{API}/next?queue=random", headers={"X-CSRF-Token": csrf})
        assert steered.json()["queue"]["name"] == "random" and steered.json()["suggestion"] == expected
    with reading(engine) as conn:
        figures = suggestion_figures(conn, project=store_projects.get_project(conn, name="news"))
    assert figures["mode"] == mode and figures["shown"] == 2 and figures["accepted"] == 1
    assert figures["by_mode"][mode]["n"] == 2 and figures["anchoring"]["not_shown"]["n"] == 0


def test_suggestions_off_add_nothing(world, engine):
    scored_run(engine, world.project)  # a model exists, the setting stays at its default
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        answer = client.post(f"{API}/next", headers=world.auth("ann")).json()
        assert "suggestion" not in answer
        client.post(f"{API}/items/{answer['item']['id']}/labels", json={"label": "Tech"}, headers=world.auth("ann"))
        assert "suggestion" not in client.post(f"{API}/undo", headers=world.auth("ann")).json()
    assert recorded(engine, world.ids["ann"]) == [(answer["item"]["id"], None, None, None)]  # nothing written


def test_no_suggestion_without_a_model(world, engine):
    configure(engine, world.project, suggestions="preselect")
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        answer = client.post(f"{API}/next", headers=world.auth("ann")).json()
    assert "suggestion" not in answer
    assert recorded(engine, world.ids["ann"])[0][1:] == (None, None, None)


def test_never_on_audit_items_but_the_prediction_is_recorded(world, engine):
    configure(engine, world.project, suggestions="preselect", audit_fraction=1.0)  # every claim an audit draw
    scored_run(engine, world.project, tag="Tech")
    tech = world.project.tag_id("Tech")
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        answers = []
        for _ in range(3):
            answer = client.post(f"{API}/next", headers=world.auth("ann")).json()
            answers.append(answer)
            client.post(f"{API}/items/{answer['item']['id']}/labels", json={"label": "Tech"}, headers=world.auth("ann"))
        answers.append(client.post(f"{API}/undo", headers=world.auth("ann")).json())  # still an audit item
    assert all("suggestion" not in a for a in answers)
    with reading(engine) as conn:
        rows = conn.execute(select(assignments.c.is_audit, assignments.c.predicted_tag_id,
                                   assignments.c.suggest_mode)).all()
        figures = suggestion_figures(conn, project=store_projects.get_project(conn, name="news"))
    assert [tuple(r) for r in rows] == [(True, tech, None)] * 3
    assert figures["shown"] == 0 and figures["anchoring"]["not_shown"] == {
        "n": 2, "agree": 2, "share": 1.0, "ci95": interval95(2, 2)}  # two labels left after the undo


def test_never_on_overlap_items(world, engine, tools):
    configure(engine, world.project, suggestions="order", audit_fraction=0.0)
    with writing(engine) as conn:  # every item needs two labellers
        conn.execute(update(items).where(items.c.project_id == world.project.id).values(target_labels=2))
    scored_run(engine, world.project)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        for name in ("ann", "bob"):
            answer = client.post(f"{API}/next", headers=world.auth(name)).json()
            assert "suggestion" not in answer
            client.post(f"{API}/items/{answer['item']['id']}/labels", json={"label": "Sport"}, headers=world.auth(name))
    with reading(engine) as conn:
        rows = conn.execute(select(assignments.c.predicted_tag_id, assignments.c.suggest_mode)).all()
        figures = suggestion_figures(conn, project=store_projects.get_project(conn, name="news"))
    assert [tuple(r) for r in rows] == [(world.project.tag_id("Politics"), None)] * 2
    assert figures["shown"] == 0 and figures["anchoring"]["not_shown"]["n"] == 2
    assert figures["anchoring"]["not_shown"]["agree"] == 0


def test_anchoring_figures_compare_shown_and_withheld(world, engine):
    """Half the items are overlap items (withheld), half not (shown): the figures split them."""
    configure(engine, world.project, suggestions="preselect", audit_fraction=0.0)
    with writing(engine) as conn:
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
        conn.execute(update(items).where(items.c.id.in_(ids[:2])).values(target_labels=2))
    scored_run(engine, world.project)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        for _ in range(5):
            answer = client.post(f"{API}/next", headers=world.auth("ann")).json()
            tag = "Politics" if "suggestion" in answer else ("Sport" if answer["item"]["id"] == ids[0] else "Politics")
            client.post(f"{API}/items/{answer['item']['id']}/labels", json={"label": tag}, headers=world.auth("ann"))
    with reading(engine) as conn:
        figures = suggestion_figures(conn, project=store_projects.get_project(conn, name="news"))
    assert figures["shown"] == 3 and figures["accepted"] == 3 and figures["accepted_share"] == 1.0
    assert figures["anchoring"]["shown"]["share"] == 1.0
    assert figures["anchoring"]["not_shown"] == {"n": 2, "agree": 1, "share": 0.5, "ci95": interval95(1, 2)}


def test_multi_label_suggestion_orders_tags_by_probability(engine, settings, tools):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="sets", labels=["A", "B", "C"], seed=3, multi_label=True,
                                                settings={"audit_fraction": 0.0, "suggestions": "preselect"})
    tokens, ids = tools.make_users(engine, [("ann", "labeller")])
    tools.add_members(engine, project, ["ann"])
    tools.add_items(engine, project, 3)
    with writing(engine) as conn:
        item_ids = np.array(conn.execute(select(items.c.id).order_by(items.c.id)).scalars().all())
        run_id = conn.execute(insert(model_runs).values(
            project_id=project.id, version=1, status="complete", model_name="tfidf-logreg", strategy="max_uncertainty",
            labels_used=10, created_at=utcnow(),
            metrics={"state": "model", "multi_label": True, "tags": ["A", "B", "C"], "bits": [0, 1, 2]},
        )).inserted_primary_key[0]
    proba = np.tile(np.array([[0.2, 0.9, 0.6]], dtype=np.float32), (3, 1))
    write_set_scores(engine, run_id=run_id, item_ids=item_ids, priorities=np.array([3.0, 2.0, 1.0]),
                     confidences=np.array([0.5] * 3), predicted_masks=np.array([0b110] * 3), proba=proba)
    with writing(engine) as conn:
        conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
    auth = {"Authorization": f"Bearer {tokens['ann']}"}
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/projects/sets/next", headers=auth).json()
        assert answer["suggestion"] == {"mode": "preselect", "top": "B", "tags": ["B", "C", "A"],
                                        "set": ["B", "C"], "proba": [0.9, 0.6, 0.2]}
        item = answer["item"]["id"]
        assert client.post(f"/api/projects/sets/items/{item}/labels", json={"labels": ["C", "B"]},
                           headers=auth).status_code == 201
        second = client.post("/api/projects/sets/next", headers=auth).json()
        client.post(f"/api/projects/sets/items/{second['item']['id']}/labels", json={"labels": ["B"]}, headers=auth)
    assert recorded(engine, ids["ann"])[0] == (item, None, 0b110, "preselect")
    with reading(engine) as conn:
        figures = suggestion_figures(conn, project=store_projects.get_project(conn, name="sets"))
    assert figures["shown"] == 2 and figures["accepted"] == 1  # the same set, in any order, is accepted


def test_setting_validation_and_cli(engine, db_url, world):
    for bad in ("on", "sometimes", True, None):
        with pytest.raises(InvalidInputError, match="suggestions must be off, order or preselect"):
            store_projects.check_settings({"suggestions": bad})
    runner = CliRunner()
    done = runner.invoke(main, ["configure", "news", "--suggestions", "preselect", "--db", db_url])
    assert done.exit_code == 0, done.output
    assert "suggestions: off -> preselect" in done.output
    shown = runner.invoke(main, ["configure", "news", "--db", db_url])
    assert "suggestions: preselect" in shown.output
    bad = runner.invoke(main, ["configure", "news", "--suggestions", "always", "--db", db_url])
    assert bad.exit_code == 2 and "Traceback" not in bad.output and "'always' is not one of" in bad.output
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="news").setting("suggestions") == "preselect"


def test_dashboard_shows_the_figures(world, engine):
    configure(engine, world.project, suggestions="order", audit_fraction=0.0)
    scored_run(engine, world.project)
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        answer = client.post(f"{API}/next", headers=world.auth("ann")).json()
        client.post(f"{API}/items/{answer['item']['id']}/labels", json={"label": "Sport"}, headers=world.auth("ann"))
        login(client, "boss")
        page = client.get("/admin/projects/news/dashboard").text
    section = page[page.index('id="suggestions"'):]
    assert "order" in section[:400]
    assert re.search(r"<strong>all</strong></td><td class=\"num\">1</td><td class=\"num\">0 of 1</td>", section)


def test_label_and_next_in_flight_together_never_deadlock(world, engine, tools):
    """The page sends the label and the next ``next`` back to back: the claim then often renews the
    lease being labelled. Recording the suggestion again on that renewed row made PostgreSQL
    check the item's foreign key (a KEY SHARE lock the label holds FOR UPDATE): a deadlock, a
    second's wait each time. Counted from the dispatcher's retry warnings."""
    import logging
    import socket
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import uvicorn

    configure(engine, world.project, suggestions="preselect", audit_fraction=0.0)
    tools.add_items(engine, world.project, 60, prefix="more")
    scored_run(engine, world.project)
    warnings: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    catch = Catch(logging.WARNING)
    logging.getLogger("labelloop.server.dispatch").addHandler(catch)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(world.settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}{API}"
        with httpx.Client(headers=world.auth("ann"), timeout=30) as http, ThreadPoolExecutor(2) as pool:
            current = http.post(f"{base}/next").json()
            for _ in range(40):
                label = pool.submit(http.post, f"{base}/items/{current['item']['id']}/labels", json={"label": "Sport"})
                following = pool.submit(http.post, f"{base}/next")
                assert label.result().status_code == 201
                answer = following.result().json()
                if answer["item"]["id"] == current["item"]["id"]:  # the next overtook the label: ask again
                    answer = http.post(f"{base}/next").json()
                assert "suggestion" in answer
                current = answer
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        logging.getLogger("labelloop.server.dispatch").removeHandler(catch)
    assert not [w for w in warnings if "deadlock" in w]


def test_never_on_gold_items_served_or_renewed(world, engine):
    from labelloop.store import gold as store_gold

    configure(engine, world.project, suggestions="preselect", audit_fraction=0.0, gold_fraction=0.5)
    scored_run(engine, world.project)
    with writing(engine) as conn:
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == world.project.id)
                                .order_by(items.c.id)).scalars())
        golden = set(ids[::2])
        for item_id in golden:
            store_gold.mark_item(conn, project=world.project, item_id=item_id, tag="Sport", user_id=None)
    seen = {True: 0, False: 0}
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        for _ in range(60):  # gold draws are random (half the claims): until both kinds were served
            if seen[True] and seen[False]:
                break
            answer = client.post(f"{API}/next", headers=world.auth("ann"))
            if answer.status_code == 204:  # no ordinary item left this time; a gold draw may still come
                continue
            item_id = answer.json()["item"]["id"]
            is_gold = item_id in golden
            seen[is_gold] += 1
            assert ("suggestion" in answer.json()) is not is_gold, (item_id, is_gold)
            again = client.post(f"{API}/next", headers=world.auth("ann")).json()  # the same lease, renewed
            assert again["item"]["id"] == item_id and ("suggestion" in again) is not is_gold
            client.post(f"{API}/items/{item_id}/labels", json={"label": "Sport"}, headers=world.auth("ann"))
    assert seen[True] and seen[False]
