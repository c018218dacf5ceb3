"""The model's admin page, the learning-curve chart and "retrain now" (HTML form and JSON),
through a real in-process HTTP client on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.orchestrator import ProjectLock, run_round
from labelloop.server import create_app, models_admin
from labelloop.store import reading, writing
from labelloop.store import members as store_members
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store import users as store_users
from labelloop.store.schema import items, score_ranks

PASSWORD = "a long password"
PAGE = "/admin/projects/bbc/models"


def app_for(settings):
    app = create_app(settings)
    if not any(getattr(r, "path", "") == PAGE.replace("bbc", "{project}") for r in app.routes):
        app.include_router(models_admin.router)  # until the app includes it itself
    return app


@pytest.fixture
def client(bbc) -> Iterator[TestClient]:
    with writing(bbc.engine) as conn:
        for name, role in (("boss", "admin"), ("ann", "labeller")):
            store_users.create_user(conn, name=name, role=role, password=PASSWORD)
        store_members.add_member(conn, project="bbc", user="ann", actor_id=None)  # her project, yet not her page
    hostile = [{"id": "evil", "title": "<script>alert('x')</script> Bank shares fall", "body": "Markets."}]
    import_source(bbc.engine, project="bbc", source=MappingSource(hostile),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"]), settings=bbc.settings)
    with TestClient(app_for(bbc.settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get(PAGE).text) if name == "boss" else csrf_in(client.get("/projects").text)


def token_for(engine, name: str) -> dict[str, str]:
    with writing(engine) as conn:
        user = store_users.get_user(conn, name=name)
        return {"Authorization": "Bearer " + store_users.create_token(conn, user_id=user.id)}


def test_the_model_page_shows_version_history_curve_and_queue_head(bbc, client):
    login(client, "boss")
    empty = client.get(PAGE)
    assert empty.status_code == 200 and "No version yet" in empty.text and "No rounds yet" in empty.text
    first = run_round(bbc.engine, bbc.settings, project="bbc")
    second = run_round(bbc.engine, bbc.settings, project="bbc")
    page = client.get(PAGE).text
    assert f"<strong>v{second.version}</strong>" in page and "Cross-validated" in page
    assert f"{second.cv['accuracy']:.3f}" in page and f"{first.cv['macro_f1']:.3f}" in page  # history
    assert page.count("<td>complete</td>") == 2
    project = bbc.project()
    with reading(bbc.engine) as conn:
        head = store_scores.queue_preview(conn, project=project, run_id=second.run_id, limit=20)
    shown = re.findall(r'<span class="mono small">([^<]+)</span>', page)
    assert shown == [r["external_id"] for r in head]  # the queue's order
    assert "most informative by margin" in page
    # Item text is escaped: put the hostile item at the head of the queue and look.
    with writing(bbc.engine) as conn:
        evil = conn.execute(select(items.c.id).where(items.c.external_id == "evil")).scalar_one()
        conn.execute(update(score_ranks).where(score_ranks.c.run_id == second.run_id,
                                               score_ranks.c.item_id == evil).values(rank=-1))
    page = client.get(PAGE).text
    assert re.findall(r'<span class="mono small">([^<]+)</span>', page)[0] == "evil"
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    png = client.get(PAGE + "/learning-curve.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


def test_retrain_now_button_records_a_request_with_csrf_only(bbc, client):
    csrf = login(client, "boss")
    run_round(bbc.engine, bbc.settings, project="bbc")
    refused = client.post(PAGE + "/retrain", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    with reading(bbc.engine) as conn:
        assert store_runs.retrain_pending(conn, project_id=bbc.project().id) is None
    response = client.post(PAGE + "/retrain", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == PAGE + "?done=retrain"
    page = client.get(response.headers["location"]).text
    assert "Retrain requested" in page and "waiting for the orchestrator" in page
    with reading(bbc.engine) as conn:
        project = bbc.project()
        assert store_runs.round_due(conn, project=project, min_new_labels=1000) == "retrain requested"
    run_round(bbc.engine, bbc.settings, project="bbc")  # the orchestrator's next round
    with reading(bbc.engine) as conn:
        assert store_runs.retrain_pending(conn, project_id=project.id) is None


def test_retrain_api_for_admins_says_whether_an_orchestrator_listens(bbc, client):
    headers = token_for(bbc.engine, "boss")
    response = client.post("/api/projects/bbc/retrain", headers=headers)
    assert response.status_code == 202
    body = response.json()
    assert body["project"] == "bbc" and body["orchestrator"] is None and "no orchestrator" in body["message"]
    with ProjectLock(bbc.engine, project_id=bbc.project().id, project_name="bbc", holder="box:42:abc"):
        body = client.post("/api/projects/bbc/retrain", headers=headers).json()
    assert body["orchestrator"]["holder"] == "box:42:abc" and body["orchestrator"]["alive"]
    assert body["message"] == "a round starts at the orchestrator's next check"
    assert client.post("/api/projects/nope/retrain", headers=headers).status_code == 404
    assert client.post("/api/projects/bbc/retrain", headers=token_for(bbc.engine, "ann")).status_code == 403
    assert client.post("/api/projects/bbc/retrain").status_code == 401


def test_labellers_cannot_see_the_model_page(bbc, client):
    login(client, "ann")
    assert client.get(PAGE).status_code == 403
    assert client.get(PAGE + "/learning-curve.png").status_code == 403


def test_a_multi_label_model_page_shows_micro_f1_and_predicted_sets(bbc, client):
    from sets_helpers import make_debian

    deb = make_debian(bbc.engine, bbc.settings)
    with writing(bbc.engine) as conn:
        store_members.add_member(conn, project="deb", user="ann", actor_id=None)
    result = run_round(deb.engine, deb.settings, project="deb")
    login(client, "boss")
    page = client.get("/admin/projects/deb/models").text
    cv = result.cv
    assert f"micro-F1 <strong>{cv['micro_f1']:.3f}</strong>" in page
    assert f"sets exactly right {cv['subset_accuracy']:.3f}" in page
    assert "<th class=\"num\">micro-F1</th>" in page and "<th class=\"num\">accuracy</th>" not in page
    project = deb.project()
    with reading(deb.engine) as conn:
        head = store_scores.queue_preview(conn, project=project, run_id=result.run_id, limit=20)
    assert head and all(r["predicted"] for r in head)  # a set's names or "none of these", never blank
    for row in head:
        shown = row["predicted"]
        assert shown == "none of these" or set(shown.split(", ")) <= set(t.name for t in project.tags)
    assert head[0]["predicted"] in page
    png = client.get("/admin/projects/deb/models/learning-curve.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
