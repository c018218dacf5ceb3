"""The codebook in a real Chromium (issue 14), on SQLite and PostgreSQL: the labelling page's
panel opens with ? (and h, and its button), shows the rendered definitions and pinned examples,
runs nothing from hostile Markdown, closes with Escape, and labelling by keys goes on (the label
records the codebook version); a bottom sheet on a phone; the admin page. Screenshots go to
``tests/artefacts/`` and /tmp/shots-codebook/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import codebook as store_codebook
from labelloop.store import members as store_members
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, items

pytestmark = pytest.mark.browser

TAGS = ["Business", "Sport", "Tech"]
PASSWORD = "a long test password"
SHOTS = Path("/tmp/shots-codebook")
DEFINITIONS = {
    "Business": "Companies, **markets** and the economy.\n\n- earnings, mergers\n- *not*: consumer tech reviews",
    "Sport": "Matches, athletes, results. <img src=x onerror=\"window.__pwned=1\"> "
             "[rules](javascript:window.__pwned=2) <script>window.__pwned=3</script>",
}


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=4,
                                                settings={"audit_fraction": 0.0})
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD)
        store_users.create_user(conn, name="boss", role="admin", password=PASSWORD)
        store_members.add_member(conn, project="news", user="ann", actor_id=None)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"Story {i}. Shares rose at the market.",
             "display": {"title": f"Story {i}", "body": f"Body of story {i}."},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i in range(8)
        ])
        first = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().first()
        for tag, text in DEFINITIONS.items():
            store_codebook.set_definition(conn, project=project, tag=tag, definition=text, user_id=None)
        store_codebook.pin_example(conn, project=project, tag="Business", item_id=first, user_id=None)
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def log_in(page, base, name, path):
    page.goto(base + path)
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(base + path)


def shown(page, previous=""):
    page.wait_for_function(
        "prev => { const c = document.getElementById('item-card');"
        " return c.dataset.item && c.dataset.item !== prev && !c.classList.contains('loading'); }", arg=previous)
    return page.locator("#item-card").get_attribute("data-item")


def shoot(page, artefacts, name):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(artefacts / name))
    page.screenshot(path=str(SHOTS / name))


def backend(db_url):
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def test_open_with_question_mark_close_with_escape_and_keep_labelling(chromium, site, artefacts, db_url):
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    requests = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/api/projects/news/codebook") else None)
    log_in(page, site.url, "ann", "/projects/news/label")
    first = shown(page)
    panel = page.locator("#codebook-panel")
    assert not panel.is_visible()
    assert requests == []  # loaded lazily: nothing until the panel opens

    page.keyboard.press("?")
    panel.wait_for(state="visible")
    page.locator("#codebook-body .cb-entry").first.wait_for()
    assert page.locator("#codebook-title").inner_text() == "Codebook · version 2"
    business = page.locator('.cb-entry[data-tag="Business"]')
    assert business.locator(".cb-definition strong").inner_text() == "markets"
    assert business.locator(".cb-examples li").inner_text().startswith("Story 0.")
    sport = page.locator('.cb-entry[data-tag="Sport"] .cb-definition')
    assert "<script>" in sport.inner_text()  # raw HTML shows as text
    assert sport.locator("img, script, a").count() == 0
    assert page.locator('.cb-entry[data-tag="Tech"]').inner_text().endswith("No definition yet.")
    assert page.evaluate("window.__pwned") is None
    assert len(requests) == 1
    shoot(page, artefacts, f"codebook_panel_1280_{backend(db_url)}.png")

    # number keys still label with the panel open
    page.keyboard.press("2")
    second = shown(page, first)
    assert panel.is_visible()
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.locator("#queue-active").inner_text() == "Queue: default"
    page.keyboard.press("1")
    third = shown(page, second)
    page.keyboard.press("h")
    panel.wait_for(state="visible")
    page.keyboard.press("h")
    panel.wait_for(state="hidden")
    page.click("#codebook-open")
    panel.wait_for(state="visible")
    page.click("#codebook-close")
    panel.wait_for(state="hidden")
    page.keyboard.press("3")
    shown(page, third)
    with reading(site.engine) as conn:
        got = conn.execute(select(annotations.c.item_id, annotations.c.codebook_version)
                           .order_by(annotations.c.id)).all()
    assert [(str(i), v) for i, v in got] == [(first, 2), (second, 2), (third, 2)]
    assert page.evaluate("window.__pwned") is None
    assert errors == []


def test_a_bottom_sheet_on_a_phone(chromium, site, artefacts, db_url):
    page = chromium.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    log_in(page, site.url, "ann", "/projects/news/label")
    first = shown(page)
    page.tap("#codebook-open")
    panel = page.locator("#codebook-panel")
    panel.wait_for(state="visible")
    page.locator("#codebook-body .cb-entry").first.wait_for()
    box = panel.bounding_box()
    assert box["x"] == 0 and abs(box["width"] - 390) < 1
    assert abs(box["y"] + box["height"] - 844) < 2 and box["height"] <= 0.75 * 844  # at the bottom, not full screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, artefacts, f"codebook_panel_390_{backend(db_url)}.png")
    page.tap("#codebook-close")
    panel.wait_for(state="hidden")
    page.tap('.tag-btn[data-tag="Sport"]')
    shown(page, first)


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_the_admin_page(chromium, site, artefacts, db_url, width, height):
    page = chromium.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    log_in(page, site.url, "boss", "/admin/projects/news/codebook")
    assert page.locator("#codebook-version").inner_text() == "2"
    page.fill('textarea[aria-label="definition of Tech"]', "Gadgets, software, **the internet**.")
    page.click('button:has-text("Save “Tech”")')
    page.wait_for_url("**done=saved#tag-3")
    assert page.locator("#codebook-version").inner_text() == "3"
    assert page.locator("#tag-3 .cb-definition strong").inner_text() == "the internet"
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, artefacts, f"codebook_admin_{width}_{backend(db_url)}.png")
    assert errors == []
