"""The labelling page in a real Chromium against a real Uvicorn server, on SQLite and PostgreSQL:
item ids stay hidden unless the project shows them, tag buttons break between words only,
nothing looks selected after a tap on a phone, undo after a skip brings the item back, and a
1 MB field of one repeated character keeps the page usable. Screenshots go to
``tests/artefacts/``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import members as store_members
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
BBC = ["business", "entertainment", "politics", "sports", "tech"]
LONG_TAGS = ["Personal Stories and Experiences", "Advocacy", "entertainment", "Question", "Other"]
BIG = 1_000_000  # characters: the largest field an import accepts (LABELLOOP_MAX_FIELD_BYTES)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 820}}


def add(conn, project, rows: list[tuple[str, str, str]]) -> None:
    now = datetime.now(UTC)
    conn.execute(insert(items), [
        {"project_id": project.id, "external_id": ext, "text": f"{title}\n\n{body}",
         "display": {"title": title, "body": body}, "rand": rand_key(project.seed, ext),
         "created_at": now, "updated_at": now}
        for ext, title, body in rows
    ])
    store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Project bbc (12 items named like the corpus: sports/152, ...), project long (one item
    with a 1 MB body of one character; a long tag name), users ann, bob and boss."""
    settings = Settings(database_url=db_url, lease_seconds=60, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    with writing(engine) as conn:
        bbc = store_projects.create_project(conn, name="bbc", labels=BBC, seed=3)
        add(conn, bbc, [(f"{BBC[i % 5]}/{100 + i}", f"Story {i}", f"The body of story {i}.") for i in range(12)])
        long = store_projects.create_project(conn, name="long", labels=LONG_TAGS, seed=5)
        add(conn, long, [("big", "One very long word", "x" * BIG)])
        for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")):
            store_users.create_user(conn, name=name, role=role, password=PASSWORD)
        for project in ("bbc", "long"):
            for name in ("ann", "bob"):
                store_members.add_member(conn, project=project, user=name, actor_id=None)
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def log_in(page, base: str, name: str, path: str) -> None:
    page.goto(base + path)
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(base + path)


def shown(page) -> str:
    """The database id of the item on screen, once it is shown (data-item, as the API gives it)."""
    page.wait_for_function("() => document.getElementById('item-card').dataset.item"
                           " && !document.getElementById('item-card').classList.contains('loading')")
    return page.locator("#item-card").get_attribute("data-item")


def next_shown(page, previous: str) -> str:
    page.wait_for_function(
        "prev => { const c = document.getElementById('item-card');"
        " return c.dataset.item && c.dataset.item !== prev && !c.classList.contains('loading'); }", arg=previous)
    return page.locator("#item-card").get_attribute("data-item")


def status(page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('status').textContent === t", arg=text)


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def test_item_ids_are_hidden_unless_the_project_shows_them(chromium, site, artefacts, db_url):
    with reading(site.engine) as conn:
        external = dict(conn.execute(select(items.c.id, items.c.external_id)).all())
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/bbc/label")
    first = shown(page)

    def visible_text() -> str:
        return page.locator("body").inner_text()

    def no_id_on_screen() -> None:
        text = visible_text()
        assert not [e for e in external.values() if e in text] and "#" not in text, text
        assert page.locator("#item-ref").text_content() == ""

    no_id_on_screen()
    page.screenshot(path=str(artefacts / f"label_page_1280_{backend(db_url)}.png"))
    page.keyboard.press("2")
    second = next_shown(page, first)
    status(page, "Saved as entertainment")
    no_id_on_screen()
    page.keyboard.press("s")
    third = next_shown(page, second)
    status(page, "Skipped")
    no_id_on_screen()
    page.keyboard.press("u")
    assert next_shown(page, third) == second
    status(page, "Skip undone")
    no_id_on_screen()

    with writing(site.engine) as conn:  # the admin turns ids on: the next page load shows them
        project = store_projects.get_project(conn, name="bbc")
        store_projects.update_settings(conn, project_id=project.id, values={"show_item_ids": True})
    page.reload()
    again = shown(page)
    assert page.locator("#item-ref").text_content() == "#" + external[int(again)]
    page.keyboard.press("1")
    next_shown(page, again)
    status(page, f"Saved #{external[int(again)]} as business")
    context.close()


def words_broken(page) -> list[str]:
    """Tag names with a word split over two lines (each word's text must sit on one line)."""
    return page.evaluate("""() => {
        const broken = [];
        for (const el of document.querySelectorAll('.tag-name')) {
            const node = el.firstChild, text = node.textContent;
            let start = 0;
            for (const word of text.split(' ')) {
                const range = document.createRange();
                range.setStart(node, start); range.setEnd(node, start + word.length);
                const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (tops.size > 1) broken.push(word);
                start += word.length + 1;
            }
        }
        return broken;
    }""")


@pytest.mark.parametrize("project, tags", [("bbc", BBC), ("long", LONG_TAGS)])
def test_tag_buttons_break_between_words_only(chromium, site, artefacts, db_url, project, tags):
    for width, options in ((1280, DESKTOP), (390, PHONE), (1000, {"viewport": {"width": 1000, "height": 800}})):
        context = chromium.new_context(**options)
        page = context.new_page()
        log_in(page, site.url, "bob", f"/projects/{project}/label")
        shown(page)
        assert words_broken(page) == [], width
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        height = options["viewport"]["height"]
        for tag in tags:
            box = page.get_by_role("button", name=tag).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (tag, width)
            assert box["y"] + box["height"] <= height, (tag, width)  # in reach without scrolling
        page.screenshot(path=str(artefacts / f"label_tags_{project}_{width}_{backend(db_url)}.png"))
        context.close()


LOOKS = """sel => [...document.querySelectorAll(sel)].map(e => {
    const s = getComputedStyle(e);
    return {background: s.backgroundColor, border: s.borderColor, color: s.color, transform: s.transform};
})"""


def looks(page, selector: str) -> list[dict[str, str]]:
    return page.evaluate(LOOKS, selector)


def settles_to(page, selector: str, expected: list[dict[str, str]]) -> list[dict[str, str]]:
    """The buttons' looks once their transitions are over (a sticky state never settles)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"([sel, want]) => JSON.stringify(({LOOKS})(sel)) === JSON.stringify(want)",
                               arg=[selector, expected], timeout=3000)
    except PlaywrightTimeout:
        pass
    return looks(page, selector)


def test_nothing_looks_selected_after_a_tap_on_a_phone(chromium, site, artefacts, db_url):
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/bbc/label")
    current = shown(page)
    untouched_tags, untouched_actions = looks(page, ".tag-btn"), looks(page, ".lbl-actions .btn")
    assert len({str(s) for s in untouched_tags}) == 1  # every tag button looks alike
    for tap in ("sports", "tech", "Skip", "business"):
        page.get_by_role("button", name=tap).tap()
        current = next_shown(page, current)
        assert settles_to(page, ".tag-btn", untouched_tags) == untouched_tags, tap
        assert settles_to(page, ".lbl-actions .btn", untouched_actions) == untouched_actions, tap
    page.screenshot(path=str(artefacts / f"label_after_tap_390_{backend(db_url)}.png"))
    context.close()


def test_undo_after_a_skip_brings_the_item_back(chromium, site, artefacts, db_url):
    with reading(site.engine) as conn:
        ann = store_users.get_user(conn, name="ann").id
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/bbc/label")
    first = shown(page)
    page.keyboard.press("1")
    skipped = next_shown(page, first)
    page.keyboard.press("s")
    after = next_shown(page, skipped)
    page.wait_for_function("() => document.getElementById('progress-mine').textContent.startsWith('you: 1 today')")
    page.get_by_role("button", name="Undo").click()  # the skip comes back ...
    assert next_shown(page, after) == skipped
    assert page.locator("#item-state").text_content() == "skip undone: label it now"
    assert page.locator("#progress-mine").text_content().startswith("you: 1 today")  # no label was undone
    page.keyboard.press("u")  # ... then the label before it
    assert next_shown(page, skipped) == first
    assert page.locator("#item-state").text_content() == "label undone: choose again"
    page.wait_for_function("() => document.getElementById('progress-mine').textContent.startsWith('you: 0 today')")
    page.keyboard.press("u")
    status(page, "Nothing to undo")
    page.keyboard.press("3")
    next_shown(page, first)
    with reading(site.engine) as conn:
        labelled = dict(conn.execute(select(annotations.c.item_id, annotations.c.tag_id)
                                     .where(annotations.c.user_id == ann)).all())
        skips = conn.execute(select(assignments.c.item_id).where(assignments.c.user_id == ann,
                                                                  assignments.c.state == "skipped")).all()
        project = store_projects.get_project(conn, name="bbc")
    assert labelled == {int(first): project.tag_id("politics")}
    assert skips == []  # the undone skip is gone: the item is the queue's again, ann's too
    context.close()


@pytest.mark.parametrize("options", [PHONE, DESKTOP], ids=["390", "1280"])
def test_a_1mb_field_of_one_character_keeps_the_page_usable(chromium, site, artefacts, db_url, options):
    width = options["viewport"]["width"]
    context = chromium.new_context(**options)
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/long/label")
    started = time.monotonic()
    shown(page)
    page.wait_for_function("n => document.querySelector('.field-text').textContent.length === n", arg=BIG)
    shown_after = time.monotonic() - started
    assert shown_after < 10, shown_after
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
    scroller = page.locator("#item-scroll")
    assert scroller.evaluate("e => e.scrollWidth <= e.clientWidth")  # the run wraps inside the card
    assert scroller.evaluate("e => e.scrollHeight > e.clientHeight")  # and scrolls down
    button = page.get_by_role("button", name="Advocacy")
    box = button.bounding_box()
    assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= options["viewport"]["height"]
    page.screenshot(path=str(artefacts / f"label_1mb_{width}_{backend(db_url)}.png"))
    started = time.monotonic()
    if options.get("has_touch"):
        button.tap()
    else:
        button.click()
    page.locator("#done").wait_for(state="visible")  # labelled: the only item, so all done
    assert time.monotonic() - started < 5
    context.close()
