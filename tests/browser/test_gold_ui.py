"""Gold items in a real Chromium against a real Uvicorn server, on SQLite and PostgreSQL: the
admin marks an item gold from its page (the form, CSRF included), and the dashboard's gold table
flags the weak labeller. Screenshots at 1280 and 390 px go to ``tests/artefacts/``."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import gold as store_gold
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

pytestmark = pytest.mark.browser

TAGS = ["Business", "Sport", "Tech"]
PASSWORD = "a long test password"


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Project news (40 items, 30 of them gold with the answer Tech); ann answered 20 gold items
    (19 right), bob 30 (15 right: flagged below the default 80 %)."""
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=4,
                                                settings={"gold_fraction": 0.1})
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        users = {n: store_users.create_user(conn, name=n, role=r, password=PASSWORD).id
                 for n, r in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))}
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"story {i}",
             "display": {"title": f"Story {i}", "body": f"Body of story {i}: markets, matches and machines."},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i in range(40)
        ])
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
        store_gold.mark_gold(conn, project=project, values=dict.fromkeys(ids[10:], project.tag_id("Tech")),
                             user_id=users["boss"])
        rng = random.Random(1)
        for name, right, total in (("ann", 19, 20), ("bob", 15, 30)):
            for k in range(total):
                lease = store_gold.claim_gold(conn, project=project, user_id=users[name], lease_seconds=60, rng=rng)
                store_gold.answer_gold(conn, project=project, user_id=users[name], item_id=lease.item_id,
                                       tag="Tech" if k < right else "Sport")
    with live_server_class(settings) as server:
        server.engine, server.ids = engine, ids
        yield server
    engine.dispose()


def log_in(page, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_the_admin_marks_an_item_gold_from_its_page(chromium, site, artefacts, db_url, width, height):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, site.url, "boss")
    item_id = site.ids[0]
    page.goto(f"{site.url}/admin/projects/news/items/{item_id}")
    form = page.locator("#gold-form")
    assert form.is_visible()
    page.select_option("#gold-tag", "Sport")
    page.click("#gold-save")
    page.wait_for_url(f"**/items/{item_id}?done=gold-marked")
    assert page.get_by_role("status").first.inner_text() == "Gold answer saved: the item is a gold item."
    assert page.locator("#gold-answer").inner_text().strip() == "Gold answer: Sport"
    assert page.locator("#gold-save").inner_text() == "Change gold answer"
    assert "Sport gold\nthe gold answer; 0 labels from before it was gold" in page.locator(".item-facts").inner_text()
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(artefacts / f"gold_item_{width}_{backend}.png"), full_page=True)
    with reading(site.engine) as conn:
        project = store_projects.get_project(conn, name="news")
        assert store_gold.gold_answer_of(conn, project=project, item_id=item_id) == project.tag_id("Sport")
    page.click("#gold-unmark button")
    page.wait_for_url(f"**/items/{item_id}?done=gold-removed")
    assert page.locator("#gold-save").inner_text() == "Mark as gold"
    assert not errors, errors
    context.close()


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_the_dashboard_shows_the_gold_table_and_flags_the_weak_labeller(chromium, site, artefacts, db_url, width,
                                                                           height):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, site.url, "boss")
    page.goto(f"{site.url}/admin/projects/news/dashboard")
    warning = page.locator("#gold-warning")
    assert warning.is_visible() and "bob is below the accuracy of 80.0%" in warning.inner_text()
    rows = page.locator("#gold-table tbody tr")
    assert rows.count() == 2
    assert [cell.strip() for cell in rows.nth(0).inner_text().split("\t")] == ["ann", "19 / 20", "95.0%\n76% – 99%", "ok"]
    assert [cell.strip() for cell in rows.nth(1).inner_text().split("\t")] == ["bob", "15 / 30", "50.0%\n33% – 67%", "flagged"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator("#gold").scroll_into_view_if_needed()
    page.screenshot(path=str(artefacts / f"gold_dashboard_{width}_{backend}.png"), full_page=True)
    page.locator("#gold-table").screenshot(path=str(artefacts / f"gold_table_{width}_{backend}.png"))
    assert not errors, errors
    context.close()
