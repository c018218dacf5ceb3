"""Fixtures for import/export tests: a project, the CLI runner and a full database snapshot."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from labelloop.cli import main
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.schema import annotations, items, projects, tags


@pytest.fixture
def project(engine: Engine) -> store_projects.Project:
    """Project 'p' with tags A and B."""
    with writing(engine) as conn:
        return store_projects.create_project(conn, name="p", labels=["A", "B"], seed=7)


@pytest.fixture
def cli(db_url: str) -> Callable[..., Result]:
    """Run ``labelloop ARGS --db <the test database>``; keyword ``env`` sets LABELLOOP_* vars."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, [*map(str, args), "--db", db_url], env=env, catch_exceptions=False)

    return run


@pytest.fixture
def db_snapshot(engine: Engine) -> Callable[[], dict[str, list[tuple]]]:
    """``db_snapshot()``: every row an import may touch, for 'the database is as before' checks."""
    return lambda: _snapshot(engine)


@pytest.fixture
def stored_items(engine: Engine) -> Callable[..., dict[str, dict]]:
    """``stored_items(project="p")``: external id -> the item's stored fields."""
    return lambda project_name="p": _item_rows(engine, project_name)


def _snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with reading(engine) as conn:
        return {
            "projects": [tuple(r) for r in conn.execute(
                select(projects.c.id, projects.c.name, projects.c.id_column, projects.c.display_columns)
                .order_by(projects.c.id))],
            "tags": [tuple(r) for r in conn.execute(select(tags).order_by(tags.c.id))],
            "items": [tuple(r) for r in conn.execute(select(items).order_by(items.c.id))],
            "annotations": [tuple(r) for r in conn.execute(select(annotations).order_by(annotations.c.id))],
        }


def _item_rows(engine: Engine, project_name: str) -> dict[str, dict]:
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project_name)
        rows = conn.execute(select(items).where(items.c.project_id == proj.id).order_by(items.c.id)).all()
    names = {t.id: t.name for t in proj.tags}
    return {
        r.external_id: {
            "display": r.display,
            "text": r.text,
            "rand": r.rand,
            "n_labels": r.n_labels,
            "label": names.get(r.label_tag_id),
            "label_source": r.label_source,
        }
        for r in rows
    }
