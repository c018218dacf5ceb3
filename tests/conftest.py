"""Shared fixtures: a fresh real database per test, on SQLite and on PostgreSQL.

PostgreSQL: each test gets its own schema in the database named by
``LABELLOOP_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) through the
connection's ``search_path``; the schema is dropped afterwards. When PostgreSQL cannot be
reached the PostgreSQL half of the suite is skipped with a loud reason, except under
``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from labelloop.store import open_engine

PG_URL = os.environ.get("LABELLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# The shared data sets live beside the repository (``../shared/datasets``); a clone elsewhere
# points LABELLOOP_TEST_SHARED_DIR at the ``shared`` folder.
SHARED = Path(os.environ.get("LABELLOOP_TEST_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared") / "datasets"
ARTEFACTS = Path(__file__).resolve().parent / "artefacts"

_pg_admin: Engine | None = None
_pg_error: str | None = None


def _pg() -> Engine:
    global _pg_admin, _pg_error
    if _pg_admin is None and _pg_error is None:
        try:
            engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=2)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg_admin = engine
        except Exception as exc:  # any failure to connect
            _pg_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if _pg_admin is None:
        message = (
            f"PostgreSQL at {PG_URL} is not reachable ({_pg_error}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true requires PostgreSQL: " + message)
        pytest.skip("SKIPPING POSTGRESQL TESTS: " + message)
    return _pg_admin


def pg_schema_url() -> Iterator[str]:
    admin = _pg()
    schema = "t_" + uuid.uuid4().hex[:16]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = PG_URL if "?" not in PG_URL else PG_URL.split("?")[0]
    try:
        yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (not yet migrated), on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'labelloop.db'}"
    else:
        yield from pg_schema_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on a fresh database."""
    eng = open_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"SKIPPING: the shared data sets are not at {SHARED} (set LABELLOOP_TEST_SHARED_DIR)")
    return SHARED


@pytest.fixture
def artefacts() -> Path:
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS
