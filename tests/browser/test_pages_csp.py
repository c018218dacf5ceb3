"""Every page in a real Chromium against a real Uvicorn server, on SQLite and PostgreSQL: the
Content-Security-Policy blocks nothing the pages need (no violation in the console) and the API
viewer at /docs renders the operations from files of this server. Screenshots go to
``tests/artefacts/``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from labelloop.config import Settings
from labelloop.store import members as store_members
from labelloop.store import labelling, open_engine, queue, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

pytestmark = pytest.mark.browser

TAGS = ["Business", "Sport", "Tech"]
PASSWORD = "a long test password"
ADMIN_PAGES = [
    ("/projects", "projects"), ("/projects/news/label", "label"), ("/admin", "admin_overview"),
    ("/admin/projects/news/browse", "browse"), ("/admin/projects/news/browse?q=story%20-nothing", "browse_search"),
    ("/admin/projects/news/tags", "tags"), ("/admin/users", "users"),
    ("/admin/projects/news/models", "models"), ("/admin/projects/news/review", "review"),
    ("/admin/projects/news/dashboard", "dashboard"), ("/admin/projects/nope/browse", "error_page"),
    ("/admin/projects/news/items/9", "item"), ("/docs", "docs"),
    ("/admin/projects/news/bulk?q=story", "bulk"), ("/projects/news/history", "history"),
    ("/admin/projects/news/codebook", "codebook"), ("/admin/projects/news/flags?state=all", "flags"),
]
BIG = 1_000_000


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Project news (8 items, two labelled by ann, and item 9 with a 1 MB body of one
    character), an admin and a labeller."""
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=4)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        ann = store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD).id
        store_users.create_user(conn, name="boss", role="admin", password=PASSWORD)
        store_members.add_member(conn, project="news", user="ann", actor_id=None)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"story {i}",
             "display": {"title": f"Story {i}", "body": f"Body of story {i}."},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i in range(8)
        ] + [{"project_id": project.id, "external_id": "big", "text": "big", "rand": 2**62,
              "display": {"title": "Story big: " + "w" * 3000, "body": "x" * BIG},
              "created_at": now, "updated_at": now}])
    for tag in TAGS[:2]:
        with writing(engine) as conn:
            lease = queue.next_item(conn, project=project, user_id=ann, lease_seconds=600)
            labelling.label_item(conn, project=project, user_id=ann, item_id=lease.item_id, tag=tag)
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


class Console:
    """A page's console errors and uncaught exceptions (CSP violations are console errors)."""

    def __init__(self, page):
        self.messages: list[str] = []
        page.on("console", lambda m: self.messages.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught: {exc}"))

    def take(self) -> list[str]:
        taken, self.messages = self.messages, []
        return taken


def log_in(page, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


def test_no_page_breaks_the_content_security_policy(chromium, site, artefacts, db_url):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page)
    page.goto(site.url + "/login")
    assert page.locator('input[name="username"]').is_visible()
    assert console.take() == [], "login"
    log_in(page, site.url, "boss")
    for path, name in ADMIN_PAGES:
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        if name == "label":
            page.wait_for_function("() => document.getElementById('item-title').textContent.startsWith('Story')")
        if name == "docs":
            page.locator(".opblock").first.wait_for()
        # every image of the page loaded (charts are PNGs of this server)
        assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"), name
        messages = console.take()
        if name == "error_page":  # the 404 itself is logged as a failed resource load
            messages = [m for m in messages if "404" not in m]
        assert messages == [], (name, messages)
    context.close()


def test_docs_render_the_operations_offline(chromium, site, artefacts, db_url):
    """Swagger UI from this server's files: every request of the page goes to this server, and
    the operations of the JSON API are listed and can be opened."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    for width, height in ((1280, 900), (390, 844)):
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        console = Console(page)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        log_in(page, site.url, "ann")
        page.goto(site.url + "/docs")
        page.locator(".opblock").first.wait_for()
        paths = page.locator(".opblock-summary-path").all_text_contents()
        assert "/api/projects/{project}/next" in [p.replace("\u200b", "") for p in paths]
        assert page.locator(".opblock").count() >= 10
        page.locator(".opblock-summary", has_text="/api/projects/{project}/undo").first.click()
        page.locator(".opblock-body").first.wait_for()
        if width == 1280:  # "Try it out" sends the session's CSRF token with a write: ann's last label is undone
            undo = page.locator(".opblock", has_text="/api/projects/{project}/undo").first
            undo.get_by_role("button", name="Try it out").click()
            undo.locator('input[placeholder="project"]').fill("news")
            undo.get_by_role("button", name="Execute").click()
            undo.locator(".live-responses-table tbody .response-col_status").first.wait_for()
            assert undo.locator(".live-responses-table tbody .response-col_status").first.inner_text().strip() == "200"
        assert all(url.startswith(site.url) or url.startswith("data:") for url in requested), requested
        assert console.take() == []
        page.screenshot(path=str(artefacts / f"docs_{width}_{backend}.png"))
        context.close()


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_browse_cuts_the_1mb_item_and_its_page_shows_it(chromium, site, artefacts, db_url, width, height):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console = Console(page)
    log_in(page, site.url, "boss")
    response = page.goto(site.url + "/admin/projects/news/browse")
    assert len(response.body()) < 80_000  # the 1 MB item is cut to 2,000 characters a field
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # the table scrolls in its box
    row = page.locator("table.browse tbody tr", has_text="big")
    assert row.locator(".item-title .cut").inner_text() == "…"
    row.locator("details.item-full summary").click()
    assert row.locator("details.item-full .field-text").nth(1).inner_text() == "x" * 2000 + "…"
    page.screenshot(path=str(artefacts / f"browse_{width}_{backend}.png"), full_page=True)
    row.get_by_role("link", name="Long fields are cut here: open the full item").click()
    page.wait_for_url("**/admin/projects/news/items/9")
    body = page.locator(".item-fields .field-text").nth(1)
    assert body.evaluate("e => e.textContent.length") == BIG
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # the long run wraps
    assert page.locator(".item-facts").inner_text().startswith("external id\nbig")
    page.screenshot(path=str(artefacts / f"item_{width}_{backend}.png"))  # the top: 1 MB is very long
    assert console.take() == []
    context.close()


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_data_browser_search_box_highlights_counts_and_explains_errors(chromium, site, artefacts, db_url, width,
                                                                        height):
    """Type a search in the data browser's box: the matching items, their words marked, the count;
    a bad query: the 422 message, no console error other than the 422 itself."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console = Console(page)
    log_in(page, site.url, "boss")
    page.goto(site.url + "/admin/projects/news/browse")
    box = page.get_by_role("searchbox", name="Search text")
    box.fill("story*")
    box.press("Enter")
    page.wait_for_load_state()
    assert "q=story" in page.url
    marks = page.locator("table.browse mark")
    assert marks.count() >= 1 and marks.first.inner_text().lower().startswith("story")
    assert page.locator(".search-count").inner_text().startswith(
        f"{page.locator('table.browse tbody tr').count()} items match")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(artefacts / f"browse_search_{width}_{backend}.png"), full_page=True)
    box = page.get_by_role("searchbox", name="Search text")
    box.fill('"unclosed')
    box.press("Enter")
    page.wait_for_load_state()
    assert "unclosed quote" in page.get_by_role("alert").inner_text()
    assert page.locator("table.browse mark").count() == 0
    assert [m for m in console.take() if "422" not in m] == []
    context.close()
