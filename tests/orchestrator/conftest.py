"""Orchestrator fixtures: settings with a temporary models folder, and the ``bbc`` project
(see :mod:`orch_helpers`) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_helpers import Bbc, make_bbc
from sqlalchemy import Engine

from labelloop.config import Settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, models_dir=tmp_path / "models", keep_models=2)


@pytest.fixture
def bbc(engine: Engine, settings: Settings) -> Bbc:
    return make_bbc(engine, settings)
