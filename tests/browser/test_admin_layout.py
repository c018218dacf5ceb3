"""Admin pages on a 1280 px screen and a 390 px phone, in a real Chromium against a real Uvicorn
server, on SQLite and PostgreSQL: the tags page's Rename and Retire buttons are visible and
inside the window, the merge form never defaults to a tag into itself, the overview does not
scroll sideways, and the review page keeps paragraphs and caps long bodies behind "show all".
Screenshots go to ``tests/artefacts/``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from labelloop.config import Settings
from labelloop.store import labelling, open_engine, queue, writing
from labelloop.store import projects as store_projects
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
LONG_TAG = "entertainment-and-culture-" * 3 + "longest"
TAGS = ["business", "entertainment", "politics", "sport", "tech", LONG_TAG, "old"]
LONG_PROJECT = "a-very-long-project-name-for-the-phone-layout-" * 2
WIDTHS = (1280, 390)
PARAGRAPHS = [f"Paragraph {n}: " + " ".join(f"word{n}x{i}" for i in range(40)) for n in range(1, 9)]
BODY = "\n\n".join(PARAGRAPHS)  # about 3,000 characters in 8 paragraphs


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Project news (retired tag "old", a very long tag name), two labellers who disagree on two
    items with long multi-paragraph bodies; and a second project with a very long name."""
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=4)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        store_projects.create_project(conn, name=LONG_PROJECT, labels=["yes", "no"], seed=1)
        users = [store_users.create_user(conn, name=n, role=r, password=PASSWORD).id
                 for n, r in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))]
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"story {i}", "target_labels": 2,
             "display": {"title": f"Story {i}", "body": BODY if i < 3 else f"Short body {i}.\nSecond line."},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i in range(6)
        ])
    with writing(engine) as conn:
        store_tags.retire_tag(conn, project=store_projects.get_project(conn, name="news"), name="old", user_id=None)
    for user, offset in ((users[1], 0), (users[2], 1)):  # they disagree on every item
        for k in range(6):
            with writing(engine) as conn:
                proj = store_projects.get_project(conn, name="news")
                lease = queue.next_item(conn, project=proj, user_id=user, lease_seconds=600,
                                        now=now + timedelta(seconds=20 * k))
                labelling.label_item(conn, project=proj, user_id=user, item_id=lease.item_id,
                                     tag=TAGS[(lease.item_id + offset) % 5], now=now + timedelta(seconds=20 * k + 5))
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def login(chromium, site, width: int):
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site.url + "/login")
    page.fill('input[name="username"]', "boss")
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')
    return context, page, errors


def horizontal_overflow(page) -> int:
    """How many pixels the page scrolls sideways (0: it fits the window)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def shown_in_window(page, locator) -> bool:
    """The element is visible, inside the window's width, and not clipped by a scrolling
    ancestor: the point at its centre hits the element itself."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    if box is None or not locator.is_visible():
        return False
    width = page.viewport_size["width"]
    if box["x"] < 0 or box["x"] + box["width"] > width:
        return False
    return locator.evaluate(
        """el => { const r = el.getBoundingClientRect();
                   const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                   return hit !== null && (hit === el || el.contains(hit)); }"""
    )


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.mark.parametrize("width", WIDTHS)
def test_tags_page_buttons_are_visible_and_the_merge_form_names_two_tags(chromium, site, artefacts, db_url, width):
    context, page, errors = login(chromium, site, width)
    page.goto(site.url + "/admin/projects/news/tags")
    table = page.locator("table").first  # the tags (the audit log follows)
    assert table.locator("tbody tr").count() == len(TAGS)
    renames = table.locator("button", has_text="Rename")
    retires = table.locator("button", has_text="Retire")
    assert renames.count() == len(TAGS) and retires.count() == len(TAGS) - 1  # "old" is retired already
    for buttons in (renames, retires):
        for i in range(buttons.count()):
            assert shown_in_window(page, buttons.nth(i)), f"button {i} of {buttons} cut off at {width} px"
    assert horizontal_overflow(page) == 0
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth - el.clientWidth") == 0  # the table fits its box
    source = page.locator('select[name="source"]').input_value()
    into = page.locator('select[name="into"]').input_value()
    assert (source, into) == ("business", "entertainment")
    page.screenshot(path=str(artefacts / f"admin_tags_{width}_{backend(db_url)}.png"), full_page=True)
    # A merge of a tag into itself is refused with a clear message, and the form keeps the choice.
    page.select_option('select[name="into"]', "business")
    with page.expect_navigation():
        page.get_by_role("button", name="Merge", exact=True).click()
    assert "cannot merge tag 'business' into itself: choose two different tags" in page.locator(
        ".alert.error").text_content()
    assert page.locator('select[name="into"]').input_value() == "business"
    # The buttons work: retire the long tag from its row.
    with page.expect_navigation():
        table.locator("tbody tr", has_text=LONG_TAG).locator("button", has_text="Retire").click()
    assert "Tag retired" in page.locator(".alert.ok").text_content()
    assert errors == []
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_overview_does_not_scroll_sideways(chromium, site, artefacts, db_url, width):
    context, page, errors = login(chromium, site, width)
    page.goto(site.url + "/admin")
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    assert page.locator("section.admin-project").count() == 2
    assert horizontal_overflow(page) == 0
    for link in ("Dashboard", "Review", "Data browser", "Tags", "Model", "Label"):
        for i in range(2):
            assert shown_in_window(page, page.locator("section.admin-project").nth(i).get_by_role("link", name=link,
                                                                                              exact=True))
    page.screenshot(path=str(artefacts / f"admin_overview_{width}_{backend(db_url)}.png"), full_page=True)
    assert errors == []
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_review_keeps_paragraphs_and_caps_long_bodies(chromium, site, artefacts, db_url, width):
    context, page, errors = login(chromium, site, width)
    page.goto(site.url + "/admin/projects/news/review")
    cards = page.locator("section.review-item")
    assert cards.count() == 6
    assert horizontal_overflow(page) == 0
    long_card = cards.filter(has=page.locator("details.show-all")).first
    preview = long_card.locator(".field-text.preview")
    full = long_card.locator("details.show-all .field-text")
    summary = long_card.locator("details.show-all summary")
    # capped: the preview shows the first paragraphs, line breaks kept; the rest is hidden
    assert preview.is_visible() and not full.is_visible()
    shown = preview.inner_text()
    assert shown.startswith(PARAGRAPHS[0] + "\n\n" + PARAGRAPHS[1]) and PARAGRAPHS[-1] not in shown
    assert summary.inner_text() == f"show all ({len(BODY):,} characters)"
    assert shown_in_window(page, summary)
    page.screenshot(path=str(artefacts / f"admin_review_{width}_{backend(db_url)}.png"), full_page=True)
    summary.click()
    assert full.is_visible() and not preview.is_visible()
    assert full.inner_text() == BODY  # every paragraph, with its line breaks
    assert summary.inner_text() == "show less"
    assert horizontal_overflow(page) == 0
    long_card.screenshot(path=str(artefacts / f"admin_review_open_{width}_{backend(db_url)}.png"))
    summary.click()
    assert preview.is_visible() and not full.is_visible()
    # a short body is shown whole, its line break kept, with no control
    short = cards.filter(has_not=page.locator("details.show-all")).first
    assert short.locator(".field-text").inner_text().endswith(".\nSecond line.")
    assert errors == []
    context.close()
