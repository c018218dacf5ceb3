"""The bulk labelling page in a real Chromium against a real Uvicorn server, on SQLite and
PostgreSQL: search, pick some of the previewed items, apply a tag, see it in the data browser,
undo it with the button. Screenshots at 1280 and 390 px go to ``tests/artefacts/``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
WORDS = ["cat", "dog", "cat", "bird", "cat", "dog"]


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="pets", labels=["Cats", "Dogs", "Other"], seed=4)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        store_users.create_user(conn, name="boss", role="admin", password=PASSWORD)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"p{i}", "text": f"a story about a {w} number {i}",
             "display": {"title": f"Pet {i}", "body": f"A story about a {w} number {i}."},
             "rand": rand_key(project.seed, f"p{i}"), "created_at": now, "updated_at": now}
            for i, w in enumerate(WORDS)
        ])
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def sources(engine):
    with reading(engine) as conn:
        return {r.external_id: r.label_source for r in conn.execute(select(items.c.external_id, items.c.label_source))}


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.mark.parametrize("width", [1280, 390])
def test_search_pick_some_apply_and_undo(chromium, site, artefacts, db_url, width):
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.goto(site.url + "/login")
    page.fill('input[name="username"]', "boss")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()

    page.goto(site.url + "/admin/projects/pets/bulk")
    page.fill('input[name="q"]', "cat")
    page.click('form.bulk-source button:has-text("Search")')
    page.wait_for_load_state()
    picks = page.locator("input.pick")
    assert picks.count() == 3
    assert "3 of 3 checked" in page.locator("#checked-count").inner_text()
    page.uncheck("#select-all")  # select all off: none checked, Apply disabled
    assert page.locator("#checked-count").inner_text() == "0 of 3 checked"
    assert page.locator("#bulk-submit").is_disabled()
    picks.nth(0).check()
    picks.nth(2).check()
    assert page.locator("#checked-count").inner_text() == "2 of 3 checked"
    assert page.evaluate("() => document.getElementById('select-all').indeterminate")
    chosen = [picks.nth(i).get_attribute("value") for i in (0, 2)]
    page.select_option("#bulk-tag", "Cats")
    page.screenshot(path=str(artefacts / f"bulk_preview_{width}_{backend(db_url)}.png"), full_page=True)
    page.click("#bulk-submit")
    page.wait_for_load_state()
    assert "Bulk operation #1: “Cats” applied to 2 items" in page.locator(".alert.ok").inner_text()
    assert page.locator(".bulk-items .badge.bulk").count() == 2
    labelled = sorted(k for k, v in sources(site.engine).items() if v == "bulk")
    assert len(labelled) == 2 and all(k in {"p0", "p2", "p4"} for k in labelled)
    with reading(site.engine) as conn:
        ids = {str(r.id) for r in conn.execute(select(items.c.id).where(items.c.label_source == "bulk"))}
    assert ids == set(chosen)
    page.screenshot(path=str(artefacts / f"bulk_applied_{width}_{backend(db_url)}.png"), full_page=True)

    page.goto(site.url + "/admin/projects/pets/browse?source=bulk")
    assert page.locator("td .badge.bulk").count() == 2

    page.goto(site.url + "/admin/projects/pets/bulk")
    page.click('#bulk-1 button:has-text("Undo")')
    page.wait_for_load_state()
    assert "Bulk operation #1 undone" in page.locator(".alert.ok").inner_text()
    assert "undone" in page.locator("#bulk-1").inner_text()
    assert all(v is None for v in sources(site.engine).values())
    page.screenshot(path=str(artefacts / f"bulk_undone_{width}_{backend(db_url)}.png"), full_page=True)
    # nothing is wider than the window
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1
    assert errors == []
    context.close()
