"""Liveness and readiness answer without authentication; readiness checks the schema."""

from sqlalchemy import text


def test_healthz_and_readyz_need_no_login(client):
    client.cookies.clear()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_readyz_reports_pending_migrations(client, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'not_the_head'"))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "migrations pending"
