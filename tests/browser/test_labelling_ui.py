"""The labelling UI in a real Chromium against a real Uvicorn server, on SQLite and PostgreSQL.

A labeller logs in, labels with number keys, undoes, labels with the mouse, skips; the progress
bar follows; the lease is renewed while the page is open; an admin sees the overview and the
data browser; a phone-width screen works; hostile text shows as text. Screenshots go to
``tests/artefacts/``.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from labelloop.config import Settings
from labelloop.io.importer import ImportOptions, import_file
from labelloop.store import open_engine, reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import annotations, assignments, items, tags

pytestmark = pytest.mark.browser

TAGS = ["Personal Stories", "Advocacy", "Question", "Other"]
PASSWORD = "a long test password"
HOSTILE_TITLE = '<script>window.__pwned = 1</script><b>not bold</b> **nor this**'
HOSTILE_BODY = "\n\n".join(
    ['First paragraph with <img src=x onerror="window.__pwned = 2"> inside.', "# not a heading", "- not a list"]
    + [f"Paragraph {i}: a long post scrolls inside its card." for i in range(60)]
)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "title", "selftext"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def reddit_rows(shared: Path, n: int) -> list[dict[str, str]]:
    """The first posts of the Reddit sample, with two of its posts that have no body."""
    csv.field_size_limit(sys.maxsize)
    with (shared / "reddit_sg.csv").open(encoding="utf-8", newline="") as f:
        rows = [{k: r[k] for k in ("id", "title", "selftext")} for r in csv.DictReader(f)]
    return rows[: n - 2] + [r for r in rows if not r["selftext"].strip()][:2]


@pytest.fixture
def site(db_url: str, tmp_path: Path, shared_datasets: Path, live_server_class):
    """A server on a fresh database with a Reddit project (12 posts), a hostile one, users."""
    settings = Settings(database_url=db_url, lease_seconds=10, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    with writing(engine) as conn:
        # these pages show external ids (tests/browser/test_label_page.py checks that, by default, they do not)
        store_projects.create_project(conn, name="reddit", labels=TAGS, seed=7, settings={"show_item_ids": True})
        store_projects.create_project(conn, name="hostile", labels=["Fine", "Bad"], seed=1,
                                      settings={"show_item_ids": True})
        for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")):
            store_users.create_user(conn, name=name, role=role, password=PASSWORD)
        for project in ("reddit", "hostile"):  # labellers see only the projects they are members of
            for name in ("ann", "bob"):
                store_members.add_member(conn, project=project, user=name, actor_id=None)
    options = ImportOptions(id_column="id", text_columns=["title", "selftext"])
    import_file(engine, project="reddit", path=write_csv(tmp_path / "r.csv", reddit_rows(shared_datasets, 12)),
                options=options, settings=settings)
    hostile = [{"id": "evil", "title": HOSTILE_TITLE, "selftext": HOSTILE_BODY}]
    import_file(engine, project="hostile", path=write_csv(tmp_path / "h.csv", hostile), options=options,
                settings=settings)
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def log_in(page, base: str, name: str, path: str, screenshot: Path | None = None) -> None:
    page.goto(base + path)
    assert "/login?next=" in page.url  # pages need a session
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(base + path)


def ref(page) -> str:
    return page.locator("#item-ref").text_content() or ""


def wait_for_new_item(page, previous: str) -> str:
    page.wait_for_function(
        "prev => { const r = document.getElementById('item-ref').textContent;"
        " return r && r !== prev && !document.getElementById('item-card').classList.contains('loading'); }",
        arg=previous,
    )
    return ref(page)


def first_item(page) -> str:
    page.wait_for_function("() => document.getElementById('item-ref').textContent.startsWith('#')")
    return ref(page)


def test_label_undo_skip_progress_admin_and_phone(chromium, site, artefacts, db_url):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    base = site.url
    engine = site.engine
    with reading(engine) as conn:
        total = len(conn.execute(select(items.c.id).where(items.c.project_id == 1)).all())
        ann_id = store_users.get_user(conn, name="ann").id
    assert total == 12

    # ---- a labeller with a keyboard ------------------------------------------------------------
    desktop = chromium.new_context(viewport={"width": 1280, "height": 820})
    page = desktop.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, base, "ann", "/projects/reddit/label", artefacts / f"login_{backend}.png")
    current = first_item(page)
    page.screenshot(path=str(artefacts / f"label_desktop_{backend}.png"))

    pressed: list[tuple[str, str]] = []  # (external id, tag)
    for i in range(5):
        key = str(i % len(TAGS) + 1)
        pressed.append((current.lstrip("#"), TAGS[int(key) - 1]))
        page.keyboard.press(key)
        current = wait_for_new_item(page, current)
    assert len({e for e, _ in pressed} | {current.lstrip("#")}) == 6  # six different items

    page.keyboard.press("u")  # undo: the fifth item comes back
    assert wait_for_new_item(page, current) == "#" + pressed[-1][0]
    assert page.locator("#item-state").text_content() == "label undone: choose again"
    progress = f"4 / {total} labelled ({math.floor(400 / total)}%)"
    page.wait_for_function(
        "want => document.getElementById('progress-text').textContent === want", arg=progress
    )
    assert page.locator("#progress-mine").text_content() == "you: 4 today · 4 total"
    assert page.locator("#progress-fill").evaluate("e => e.style.width") == f"{400 / total:.1f}%"
    server = page.request.get(base + "/api/projects/reddit/stats").json()  # the page's figures are the server's
    assert (server["labelled"], server["yours_today"], server["yours_total"]) == (4, 4, 4)

    # ---- the mouse, Backspace and skip ------------------------------------------------------
    page.get_by_role("button", name="Question").click()
    current = wait_for_new_item(page, "#" + pressed[-1][0])
    page.keyboard.press("Backspace")
    current = wait_for_new_item(page, current)
    assert current == "#" + pressed[-1][0]
    page.keyboard.press("s")
    current = wait_for_new_item(page, current)
    page.screenshot(path=str(artefacts / f"label_after_undo_{backend}.png"))

    with reading(engine) as conn:
        rows = conn.execute(
            select(items.c.external_id, tags.c.name)
            .join_from(annotations, items, items.c.id == annotations.c.item_id)
            .join(tags, tags.c.id == annotations.c.tag_id)
            .where(annotations.c.user_id == ann_id)
            .order_by(annotations.c.id)
        ).all()
        skipped = conn.execute(
            select(items.c.external_id)
            .join_from(assignments, items, items.c.id == assignments.c.item_id)
            .where(assignments.c.user_id == ann_id, assignments.c.state == "skipped")
        ).scalars().all()
    assert [tuple(r) for r in rows] == pressed[:4]
    assert skipped == [pressed[-1][0]]

    # ---- the lease is renewed while the page is open (every half lease: 5 s here) -------------
    def expiry():
        with reading(engine) as conn:
            return conn.execute(
                select(assignments.c.expires_at)
                .where(assignments.c.user_id == ann_id, assignments.c.state == "leased")
            ).scalar_one()

    before = expiry()
    page.wait_for_timeout(5600)
    assert expiry() > before
    assert errors == []
    desktop.close()

    # ---- an admin: overview and data browser ---------------------------------------------------
    admin = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = admin.new_page()
    log_in(page, base, "boss", "/admin")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert "4\nlabelled (33.3%)" in page.locator("#p-1").inner_text()
    page.screenshot(path=str(artefacts / f"admin_overview_{backend}.png"), full_page=True)
    page.locator("#p-1").get_by_role("link", name="Data browser").click()
    page.wait_for_url("**/admin/projects/reddit/browse")
    assert page.locator("table.browse tbody tr").count() == total
    page.select_option('select[name="labeller"]', "ann")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**labeller=ann**")
    assert page.locator("table.browse tbody tr").count() == 4
    page.select_option('select[name="labeller"]', "")
    page.get_by_role("button", name="Filter").click()
    page.screenshot(path=str(artefacts / f"admin_browse_{backend}.png"), full_page=True)

    # hostile text on the labelling page: shown as text, never run or rendered
    page.goto(base + "/projects/hostile/label")
    first_item(page)
    assert page.locator("#item-title").text_content() == HOSTILE_TITLE
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#item-card img, #item-card script, #item-card b").count() == 0
    body = page.locator(".field-text").first
    assert body.text_content() == HOSTILE_BODY  # paragraphs kept
    assert body.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    scroller = page.locator("#item-scroll")
    assert scroller.evaluate("e => e.scrollHeight > e.clientHeight")  # the long post scrolls ...
    assert page.get_by_role("button", name="Fine").is_visible()  # ... and the tags stay in view
    page.screenshot(path=str(artefacts / f"label_hostile_{backend}.png"))
    page.keyboard.press("PageDown")
    page.wait_for_function("() => document.getElementById('item-scroll').scrollTop > 0")
    for path, name in (("/projects", "projects"), ("/admin/users", "admin_users"),
                       ("/admin/projects/reddit/tags", "admin_tags")):
        page.goto(base + path)
        page.screenshot(path=str(artefacts / f"{name}_{backend}.png"), full_page=True)
    admin.close()

    # ---- a phone-width screen ----------------------------------------------------------------
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                 device_scale_factor=2)
    page = phone.new_page()
    log_in(page, base, "bob", "/projects/reddit/label")
    current = first_item(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    for tag in TAGS:
        box = page.get_by_role("button", name=tag).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(artefacts / f"label_phone_{backend}.png"))
    page.get_by_role("button", name="Advocacy").tap()
    wait_for_new_item(page, current)
    page.wait_for_function("() => document.getElementById('progress-mine').textContent.startsWith('you: 1 today')")
    phone.close()


def test_all_done_when_nothing_is_left(chromium, site):
    context = chromium.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/hostile/label")
    first = first_item(page)
    page.keyboard.press("2")
    page.locator("#done").wait_for(state="visible")
    assert page.locator("#done h2").text_content() == "All done"
    assert page.locator("#item-card").is_hidden()
    assert page.get_by_role("button", name="Fine").is_disabled()
    assert page.locator("#item-ref").text_content() == ""
    page.keyboard.press("u")  # undo brings the item back
    page.wait_for_function("want => document.getElementById('item-ref').textContent === want", arg=first)
    assert page.locator("#item-card").is_visible() and page.locator("#done").is_hidden()
    assert page.get_by_role("button", name="Fine").is_enabled()
    context.close()
