"""Audit draws through the server: flagged in the database, invisible in every answer."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from labelloop.server import create_app
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.schema import annotations, assignments

API = "/api/projects/news"


@pytest.fixture
def audit_client(world, engine, request):
    """The app, with every claim of project news an audit draw (fraction 1) or none (0)."""
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=world.project.id, values={"audit_fraction": request.param})
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        yield client, request.param


def login(client, name):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": name, "password": "correct horse", "csrf_token": csrf, "next": "/"})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


@pytest.mark.parametrize("audit_client", [1.0, 0.0], indirect=True)
def test_labellers_cannot_tell_audit_items(audit_client, world, engine):
    client, fraction = audit_client
    # Bearer token: the fast path.
    bearer = client.post(f"{API}/next", headers=world.auth("ann"))
    item_id = bearer.json()["item"]["id"]
    assert client.post(f"{API}/items/{item_id}/labels", json={"label": "Tech"},
                       headers=world.auth("ann")).status_code == 201
    undone = client.post(f"{API}/undo", headers=world.auth("ann"))
    # Browser session: the FastAPI routes.
    csrf = login(client, "bob")
    session = client.post(f"{API}/next", headers={"X-CSRF-Token": csrf})
    for response in (bearer, undone, session):
        assert response.status_code == 200
        body = response.json()
        expected = {"item", "lease", "undone"} if response is undone else {"item", "lease"}
        assert set(body) == expected and set(body["item"]) == {"id", "external_id", "display"}
        assert set(body["lease"]) == {"expires_at"} and "audit" not in response.text
    with reading(engine) as conn:
        flags = conn.execute(select(assignments.c.is_audit)).scalars().all()
        assert conn.execute(select(annotations)).first() is None  # the label was undone
    assert len(flags) == 2 and set(flags) == {fraction == 1.0}
