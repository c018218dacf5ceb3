"""The team deployment files, checked statically (no container engine runs on CI machines)."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from labelloop.config import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_services(compose):
    assert set(compose["services"]) == {"db", "migrate", "web", "orchestrator", "adminer"}


def test_database_uses_a_password_from_env_and_never_trust(compose):
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    env = db["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", env["POSTGRES_PASSWORD"])
    text = (ROOT / "docker-compose.yml").read_text()
    assert "trust" not in re.sub(r"#.*", "", text)
    assert env.get("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256") != "trust"
    assert any(v.startswith("pgdata:") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_no_default_passwords_anywhere():
    for name in ("docker-compose.yml", ".env.example", "Dockerfile"):
        text = (ROOT / name).read_text()
        # ${VAR:-default} would silently supply a password
        assert not re.search(r"PASSWORD:-", text), name
        assert not re.search(r"(?im)^\s*(POSTGRES_PASSWORD|LABELLOOP_SECRET_KEY)=\S", text), name


def test_migration_runs_once_before_web_and_orchestrator(compose):
    services = compose["services"]
    assert _command(services["migrate"]) == "labelloop migrate"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "orchestrator"):
        deps = services[name]["depends_on"]
        assert deps["db"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_web_and_orchestrator(compose):
    web = compose["services"]["web"]
    assert _command(web).startswith("labelloop serve") and "--workers" in _command(web)
    assert all(p.startswith("127.0.0.1:") for p in web["ports"])
    assert "healthcheck" in web
    orchestrator = compose["services"]["orchestrator"]
    assert _command(orchestrator).startswith("labelloop orchestrate")
    assert orchestrator["restart"] == "on-failure"
    models = [v for v in web["volumes"] + orchestrator["volumes"] if v.startswith("models:")]
    assert len(models) == 2
    assert set(compose["volumes"]) >= {"pgdata", "models"}


def test_adminer_is_optional_and_local(compose):
    adminer = compose["services"]["adminer"]
    assert adminer["profiles"] == ["adminer"]
    assert all(p.startswith("127.0.0.1:") for p in adminer["ports"])


def test_dockerfile_is_slim_non_root_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text
    assert "[dev]" not in text and "playwright" not in text


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    for field in dataclasses.fields(Settings):
        assert PREFIX + field.name.upper() in text, field.name
    assert re.search(r"(?m)^POSTGRES_PASSWORD=$", text)
