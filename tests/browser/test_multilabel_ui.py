"""The labelling page and the review page of a multi-label project in a real Chromium against a
real Uvicorn server, on SQLite and PostgreSQL: number keys toggle tags, Enter submits the set,
0 submits "none of these", undo brings the item back, submitting nothing is refused with a
hint, no tag stays chosen on the next item; taps and the buttons on a phone; an admin decides a
per-tag conflict with the checkboxes of the review page. Screenshots (1280 and 390 px wide) go
to ``tests/artefacts/``."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import labelling, open_engine, queue, reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, items

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
TAGS = ["interface::commandline", "interface::x11", "interface::graphical", "works-with::text",
        "use::gameplaying", "works-with::audio", "network::client", "network::server"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 820}}
HINT_KEYS = "Choose tags, or press 0 for none of these"
HINT_TAP = "Choose tags, or tap None of these"


def mask(*names: str) -> int:
    return sum(1 << TAGS.index(n) for n in names)


def debian_rows(shared: Path, n: int | None) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with (shared / "debian_tags.csv").open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)
        return list(rows) if n is None else [row for _, row in zip(range(n), rows, strict=False)]


def add(conn, project, rows: list[dict[str, str]], *, target: int = 1) -> None:
    now = datetime.now(UTC)
    conn.execute(insert(items), [
        {"project_id": project.id, "external_id": r["id"], "text": f"{r['title']}\n\n{r['text']}",
         "display": {"title": r["title"], "description": r["text"]}, "rand": rand_key(project.seed, r["id"]),
         "target_labels": target, "created_at": now, "updated_at": now}
        for r in rows
    ])
    store_projects.set_import_columns(conn, project_id=project.id, id_column="id",
                                      display_columns=["title", "description"])


@pytest.fixture
def site(db_url: str, tmp_path, shared_datasets, live_server_class):
    """Project debtags (multi-label, 12 Debian packages, 8 of their tags) for ann and bob;
    project debreview (the next 4 packages, two labels each) where ann and bob disagree on some
    tags; the admin boss."""
    settings = Settings(database_url=db_url, lease_seconds=60, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    rows = debian_rows(shared_datasets, 16)
    with writing(engine) as conn:
        debtags = store_projects.create_project(conn, name="debtags", labels=TAGS, seed=3, multi_label=True)
        add(conn, debtags, rows[:12])
        review = store_projects.create_project(conn, name="debreview", labels=TAGS, seed=4, multi_label=True)
        add(conn, review, rows[12:], target=2)
        ids = {}
        for name, role in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller")):
            ids[name] = store_users.create_user(conn, name=name, role=role, password=PASSWORD).id
        for project in ("debtags", "debreview"):
            for name in ("ann", "bob"):
                store_members.add_member(conn, project=project, user=name, actor_id=None)
    sets = {"ann": [TAGS[:2], [TAGS[2], TAGS[4], TAGS[5]], [], [TAGS[6]]],
            "bob": [TAGS[:1], [TAGS[2], TAGS[5]], [TAGS[3]], [TAGS[6]]]}
    for name, chosen in sets.items():
        for tags in chosen:
            with writing(engine) as conn:
                lease = queue.next_item(conn, project=review, user_id=ids[name], lease_seconds=600)
                labelling.label_item(conn, project=review, user_id=ids[name], item_id=lease.item_id, tags=tags)
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
    page.wait_for_function("() => document.getElementById('item-card').dataset.item"
                           " && !document.getElementById('item-card').classList.contains('loading')")
    return page.locator("#item-card").get_attribute("data-item")


def next_shown(page, previous: str) -> str:
    page.wait_for_function(
        "prev => { const c = document.getElementById('item-card');"
        " return c.dataset.item && c.dataset.item !== prev && !c.classList.contains('loading'); }", arg=previous)
    return page.locator("#item-card").get_attribute("data-item")


def pressed(page) -> list[str]:
    """The tags shown as chosen (aria-pressed)."""
    return page.eval_on_selector_all('.tag-btn[aria-pressed="true"]', "bs => bs.map(b => b.dataset.tag)")


def status(page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('status').textContent === t", arg=text)


def sets_of(engine, user: str, project: str = "debtags") -> dict[int, int]:
    """item id -> the user's set (mask) in the project."""
    with reading(engine) as conn:
        uid = store_users.get_user(conn, name=user).id
        pid = store_projects.get_project(conn, name=project).id
        return dict(conn.execute(select(annotations.c.item_id, annotations.c.tag_mask)
                                 .where(annotations.c.user_id == uid, annotations.c.project_id == pid)).all())


def lines_of(page, tag: str) -> int:
    """On how many lines the tag's name is shown."""
    return page.eval_on_selector(f'.tag-btn[data-tag="{tag}"] .tag-name', """e => {
        const range = document.createRange(); range.selectNodeContents(e);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }""")


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def test_keys_toggle_enter_submits_zero_is_none_and_undo(chromium, site, artefacts, db_url):
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)  # CSP, too
    log_in(page, site.url, "ann", "/projects/debtags/label")
    first = shown(page)
    assert pressed(page) == []
    assert lines_of(page, "works-with::text") == 1  # no break at the hyphen
    assert page.get_by_role("button", name="Submit").is_visible()
    assert page.get_by_role("button", name="None of these").is_visible()
    page.screenshot(path=str(artefacts / f"label_multi_1280_{backend(db_url)}.png"))

    page.keyboard.press("1")
    page.keyboard.press("3")
    assert pressed(page) == [TAGS[0], TAGS[2]]
    page.keyboard.press("3")  # a second press takes it back
    page.keyboard.press("2")
    assert pressed(page) == [TAGS[0], TAGS[1]]
    chosen = page.locator(f'.tag-btn[data-tag="{TAGS[0]}"]')
    assert chosen.get_attribute("class").split().count("chosen") == 1
    assert chosen.locator(".tick").evaluate("e => getComputedStyle(e, '::before').content") == '"✓"'  # not colour alone
    page.screenshot(path=str(artefacts / f"label_multi_chosen_1280_{backend(db_url)}.png"))
    page.keyboard.press("Enter")
    second = next_shown(page, first)
    status(page, f"Saved as {TAGS[0]}, {TAGS[1]}")
    assert pressed(page) == []  # nothing chosen on the next item
    assert sets_of(site.engine, "ann") == {int(first): mask(TAGS[0], TAGS[1])}

    page.keyboard.press("u")  # undo: the first item comes back, nothing chosen
    assert next_shown(page, second) == first
    assert page.locator("#item-state").text_content() == "label undone: choose again"
    assert pressed(page) == [] and sets_of(site.engine, "ann") == {}
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    second = next_shown(page, first)
    assert sets_of(site.engine, "ann") == {int(first): mask(TAGS[4])}

    page.keyboard.press("Enter")  # nothing chosen: refused with a hint, nothing sent
    status(page, HINT_KEYS)
    assert page.locator("#status").get_attribute("class") == "status error hint"
    assert shown(page) == second and len(sets_of(site.engine, "ann")) == 1
    page.screenshot(path=str(artefacts / f"label_multi_hint_1280_{backend(db_url)}.png"))
    page.keyboard.press("4")
    status(page, "")  # choosing a tag takes the hint away
    page.keyboard.press("4")
    page.keyboard.press("0")  # none of these
    third = next_shown(page, second)
    status(page, "Saved as none of these")
    assert sets_of(site.engine, "ann")[int(second)] == 0

    # the mouse: click two tags and Submit; then Skip
    page.get_by_role("button", name=TAGS[7]).click()
    page.get_by_role("button", name=TAGS[6]).click()
    assert pressed(page) == [TAGS[6], TAGS[7]]
    page.get_by_role("button", name="Submit").click()
    fourth = next_shown(page, third)
    assert pressed(page) == []
    assert sets_of(site.engine, "ann")[int(third)] == mask(TAGS[6], TAGS[7])
    page.keyboard.press("1")
    page.keyboard.press("s")  # a skip leaves nothing chosen either
    next_shown(page, fourth)
    assert pressed(page) == []
    page.wait_for_function("() => document.getElementById('progress-mine').textContent.startsWith('you: 3 today')")
    assert errors == []
    context.close()


def test_taps_and_buttons_on_a_phone(chromium, site, artefacts, db_url):
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    log_in(page, site.url, "bob", "/projects/debtags/label")
    first = shown(page)
    page.screenshot(path=str(artefacts / f"label_multi_390_{backend(db_url)}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert lines_of(page, "works-with::audio") == 1  # no break at the hyphen
    for name in ("Submit", "None of these", "Skip", "Undo", TAGS[0], TAGS[-1]):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
    page.get_by_role("button", name="Submit").tap()
    status(page, HINT_TAP)
    assert page.locator("#status").is_visible()
    box = page.locator("#status").bounding_box()
    assert box["y"] + box["height"] <= 844  # the hint is in view
    page.screenshot(path=str(artefacts / f"label_multi_hint_390_{backend(db_url)}.png"))
    page.get_by_role("button", name=TAGS[1]).tap()
    page.get_by_role("button", name=TAGS[5]).tap()
    assert pressed(page) == [TAGS[1], TAGS[5]]
    page.wait_for_timeout(200)  # the colour transition is over
    page.screenshot(path=str(artefacts / f"label_multi_chosen_390_{backend(db_url)}.png"))
    untouched = page.eval_on_selector(f'.tag-btn[data-tag="{TAGS[2]}"]', "e => getComputedStyle(e).backgroundColor")
    page.get_by_role("button", name="Submit").tap()
    second = next_shown(page, first)
    assert pressed(page) == []
    # the last tapped tag does not look chosen on the next item (no sticky hover or active look)
    page.wait_for_timeout(300)
    for tag in (TAGS[1], TAGS[5]):
        look = page.eval_on_selector(f'.tag-btn[data-tag="{tag}"]', "e => getComputedStyle(e).backgroundColor")
        assert look == untouched, tag
    page.get_by_role("button", name="None of these").tap()
    next_shown(page, second)
    assert sets_of(site.engine, "bob") == {int(first): mask(TAGS[1], TAGS[5]), int(second): 0}
    context.close()


def test_review_page_decides_a_per_tag_conflict(chromium, site, artefacts, db_url):
    with reading(site.engine) as conn:
        rows = conn.execute(select(items.c.id, items.c.label_source, items.c.label_mask)
                            .where(items.c.project_id == 2).order_by(items.c.id)).all()
    conflicts = [r.id for r in rows if r.label_source == "conflict"]
    assert len(conflicts) == 3  # ann and bob tie on tags of three items; they agree on one
    item = next(i for i, m in sets_of(site.engine, "ann", "debreview").items() if m == mask(TAGS[0], TAGS[1]))
    assert item in conflicts and sets_of(site.engine, "bob", "debreview")[item] == mask(TAGS[0])
    for options, width in ((DESKTOP, 1280), (PHONE, 390)):
        context = chromium.new_context(**options)
        page = context.new_page()
        log_in(page, site.url, "boss", "/admin/projects/debreview/review")
        assert page.locator(".review-item").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(artefacts / f"review_multi_{width}_{backend(db_url)}.png"), full_page=True)
        context.close()
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    console: list[str] = []  # CSP violations are console errors
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    log_in(page, site.url, "boss", "/admin/projects/debreview/review")
    card = page.locator(f"#item-{item}")
    assert "Tie on:" in card.inner_text() and TAGS[1] in card.locator(".tie-line").inner_text()
    assert card.get_by_role("checkbox", name=TAGS[0]).is_checked()  # both chose it
    assert not card.get_by_role("checkbox", name=TAGS[1]).is_checked()  # the tie: the admin decides
    card.get_by_role("checkbox", name=TAGS[1]).check()
    card.get_by_role("checkbox", name=TAGS[3]).check()
    card.get_by_role("button", name="Decide: the checked set").click()
    page.wait_for_url("**/review?decided=*")
    assert "now has your set of tags" in page.locator(".alert.ok").inner_text()
    assert page.locator(".review-item").count() == 2
    with reading(site.engine) as conn:
        row = conn.execute(select(items.c.label_mask, items.c.adjudicated_mask, items.c.label_source)
                           .where(items.c.id == item)).one()
    assert tuple(row) == (mask(TAGS[0], TAGS[1], TAGS[3]),) * 2 + ("human",)
    # the dashboard and the overview of a multi-label project: per-tag counts of the final sets
    page.goto(site.url + "/admin/projects/debreview/dashboard")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    per_tag = page.locator("#per-tag").inner_text()
    assert f"{TAGS[0]}\t1" in per_tag and f"{TAGS[6]}\t1" in per_tag, per_tag
    page.screenshot(path=str(artefacts / f"dashboard_multi_1280_{backend(db_url)}.png"), full_page=True)
    page.goto(site.url + "/admin")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert "2\nlabelled (50.0%)" in page.locator("#p-2").inner_text()
    page.screenshot(path=str(artefacts / f"overview_multi_1280_{backend(db_url)}.png"), full_page=True)
    assert console == []
    context.close()


def test_all_42_debian_tags_fit_or_scroll_in_their_area(chromium, site, artefacts, db_url, shared_datasets):
    """Every tag of the Debian set (42): on a desktop they all show; on a phone the tags scroll
    within their area and the item, Submit and None of these stay in view."""
    rows = debian_rows(shared_datasets, None)
    counts: dict[str, int] = {}
    for row in rows:
        for tag in row["labels"].split("|"):
            counts[tag] = counts.get(tag, 0) + 1
    tags = sorted(counts, key=lambda t: (-counts[t], t))
    assert len(tags) == 42
    with writing(site.engine) as conn:
        project = store_projects.create_project(conn, name="debian", labels=tags, seed=8, multi_label=True)
        add(conn, project, rows[100:104])
        store_members.add_member(conn, project="debian", user="ann", actor_id=None)
    for options, width in ((DESKTOP, 1280), (PHONE, 390)):
        context = chromium.new_context(**options)
        page = context.new_page()
        log_in(page, site.url, "ann", "/projects/debian/label")
        current = shown(page)
        page.keyboard.press("2")
        page.get_by_role("button", name=tags[20]).click()
        assert pressed(page) == [tags[1], tags[20]]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        height = options["viewport"]["height"]
        for name in ("Submit", "None of these"):
            box = page.get_by_role("button", name=name).bounding_box()
            assert box is not None and box["y"] + box["height"] <= height, (name, width)
        card = page.locator("#item-card").bounding_box()
        assert card["height"] > 120, width  # the item keeps room to be read
        page.wait_for_timeout(200)
        page.screenshot(path=str(artefacts / f"label_multi_42tags_{width}_{backend(db_url)}.png"))
        page.get_by_role("button", name="Submit").click()
        next_shown(page, current)
        assert pressed(page) == []
        context.close()
