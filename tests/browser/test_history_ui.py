"""My history in a real Chromium against a real Uvicorn server, on SQLite and PostgreSQL: from
the labelling page with the key ``y``, change a label with a tag button (single-label) or the
checkboxes and Save (multi-label), see the change and the locked row of an adjudicated item, and
go back with ``y`` to the very item that was leased. Screenshots at 1280 and 390 px go to
``tests/artefacts/`` (and ``/tmp/shots-history/`` for the review of the page)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import labelling, open_engine, queue, reading, review, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, items, label_history

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
SHOTS = Path("/tmp/shots-history")
STORIES = [
    "The council approved the new cycle lanes after a long debate about parking on the high street.",
    "A late goal sent the home side through to the cup final, to the delight of a packed stadium.",
    "The chip maker said its new laptops would ship with twice the battery life of last year's models.",
    "Ministers met union leaders again on Tuesday, but the talks on pay ended without an agreement.",
    "The marathon route will close several roads in the city centre from six in the morning on Sunday.",
]


def make_site(db_url, tmp_path, live_server_class, *, multi: bool):
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    tags = ["Politics", "Sport", "Tech"]
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=tags, seed=4, multi_label=multi,
                                                settings={"audit_fraction": 0.0})
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id",
                                          display_columns=["title", "body"])
        ann = store_users.create_user(conn, name="ann", role="labeller", password=PASSWORD).id
        store_members.add_member(conn, project="news", user="ann", actor_id=None)
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"Story {i} {body}",
             "display": {"title": f"Story {i}", "body": body},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i, body in enumerate(STORIES)
        ])
    labelled = []
    for value in (["Politics"], ["Sport"], ["Tech", "Politics"] if multi else ["Tech"]):
        with writing(engine) as conn:
            lease = queue.next_item(conn, project=project, user_id=ann, lease_seconds=600)
            kwargs = {"tags": value} if multi else {"tag": value[0]}
            labelling.label_item(conn, project=project, user_id=ann, item_id=lease.item_id, **kwargs)
            labelled.append(lease.item_id)
    with writing(engine) as conn:  # an admin decided the oldest: its row is locked
        decision = {"tags": ["Politics"]} if multi else {"tag": "Politics"}
        review.adjudicate(conn, project=project, item_id=labelled[0], user_id=None, **decision)
    server = live_server_class(settings)
    server.engine, server.project, server.ann, server.labelled = engine, project, ann, labelled
    return server


@pytest.fixture
def single_site(db_url, tmp_path, live_server_class):
    server = make_site(db_url, tmp_path, live_server_class, multi=False)
    with server:
        yield server
    server.engine.dispose()


@pytest.fixture
def multi_site(db_url, tmp_path, live_server_class):
    server = make_site(db_url, tmp_path, live_server_class, multi=True)
    with server:
        yield server
    server.engine.dispose()


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def shoot(page, artefacts, name: str) -> None:
    path = artefacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def open_page(chromium, site, width):
    context = chromium.new_context(viewport={"width": width, "height": 900 if width > 600 else 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.goto(site.url + "/login")
    page.fill('input[name="username"]', "ann")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    return context, page, errors


def ann_leases(site):
    with reading(site.engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(assignments.c.item_id, assignments.c.state, assignments.c.expires_at)
            .where(assignments.c.user_id == site.ann, assignments.c.state == "leased"))]


@pytest.mark.parametrize("width", [1280, 390])
def test_change_a_label_from_history_and_come_back_to_the_same_item(chromium, single_site, artefacts, db_url, width):
    site = single_site
    context, page, errors = open_page(chromium, site, width)
    page.goto(site.url + "/projects/news/label")
    page.wait_for_function("() => document.getElementById('item-title').textContent.startsWith('Story')")
    current = page.locator("#item-title").inner_text()
    held = ann_leases(site)
    assert len(held) == 1
    shoot(page, artefacts, f"label_history_link_{width}_{backend(db_url)}")

    if width > 600:
        page.keyboard.press("y")  # the key, as a labeller at a keyboard would
    else:
        page.click("#history-link")  # the button, on a phone
    page.wait_for_url("**/projects/news/history")
    rows = page.locator(".hist-row")
    assert rows.count() == 3
    newest, oldest = site.labelled[-1], site.labelled[0]
    row = page.locator(f"#row-{newest}")
    assert "Tech" in row.locator(".hist-yours").inner_text()
    assert row.locator("button.hist-tag.current").inner_text() == "Tech"
    locked = page.locator(f"#row-{oldest}")
    assert "Can no longer be changed: an admin has decided this item in the review." in locked.inner_text()
    assert locked.locator("form").count() == 0
    shoot(page, artefacts, f"history_{width}_{backend(db_url)}")

    row.locator('button.hist-tag:has-text("Sport")').click()
    page.wait_for_url(f"**/projects/news/history?changed={newest}#row-{newest}")
    assert page.locator(".alert.ok").inner_text() == "Your label is now “Sport”."
    row = page.locator(f"#row-{newest}")
    assert row.locator("button.hist-tag.current").inner_text() == "Sport"
    assert "changed 1×" in row.locator(".hist-meta").inner_text()
    assert "final:" in row.inner_text() and "Sport" in row.locator(".hist-meta .badge").inner_text()
    with reading(site.engine) as conn:
        tag = conn.execute(select(annotations.c.tag_id).where(annotations.c.item_id == newest)).scalar_one()
        kept = conn.execute(select(label_history.c.old_tag_id, label_history.c.new_tag_id)).all()
    assert tag == site.project.tag_id("Sport")
    assert [tuple(k) for k in kept] == [(site.project.tag_id("Tech"), site.project.tag_id("Sport"))]
    assert ann_leases(site) == held  # the change took no lease and left hers alone
    shoot(page, artefacts, f"history_changed_{width}_{backend(db_url)}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1  # nothing wider than the window

    if width > 600:
        page.keyboard.press("y")
    else:
        page.click('a[data-history-key="y"]')
    page.wait_for_url("**/projects/news/label")
    page.wait_for_function("() => document.getElementById('item-title').textContent.startsWith('Story')")
    assert page.locator("#item-title").inner_text() == current  # the same item, still hers
    assert errors == []
    context.close()


def test_change_a_set_on_a_phone(chromium, multi_site, artefacts, db_url):
    site = multi_site
    context, page, errors = open_page(chromium, site, 390)
    page.goto(site.url + "/projects/news/label")
    page.wait_for_function("() => document.getElementById('item-title').textContent.startsWith('Story')")
    box = page.locator("#history-link").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844  # in reach
    shoot(page, artefacts, f"label_sets_history_link_390_{backend(db_url)}")
    page.click("#history-link")
    page.wait_for_url("**/projects/news/history")
    newest = site.labelled[-1]
    row = page.locator(f"#row-{newest}")
    assert [b.inner_text() for b in row.locator(".hist-yours .badge").all()] == ["Politics", "Tech"]
    checked = row.locator("input[name=labels]:checked")
    assert [c.get_attribute("value") for c in checked.all()] == ["Politics", "Tech"]
    shoot(page, artefacts, f"history_sets_390_{backend(db_url)}")
    row.locator('label.hist-tag:has-text("Tech")').click()  # uncheck Tech
    row.locator('label.hist-tag:has-text("Sport")').click()  # check Sport
    row.locator("button.hist-save").click()
    page.wait_for_url(f"**/projects/news/history?changed={newest}#row-{newest}")
    assert page.locator(".alert.ok").inner_text() == "Your label is now “Politics, Sport”."
    with reading(site.engine) as conn:
        mask, final = conn.execute(select(annotations.c.tag_mask, items.c.label_mask)
                                   .join(items, items.c.id == annotations.c.item_id)
                                   .where(annotations.c.item_id == newest)).one()
    assert mask == final == 0b011  # Politics (bit 0) and Sport (bit 1): the lone labeller's set is final
    # none applies: uncheck both and save
    row = page.locator(f"#row-{newest}")
    for name in ("Politics", "Sport"):
        row.locator(f'label.hist-tag:has-text("{name}")').click()
    row.locator("button.hist-save").click()
    page.wait_for_url(f"**/history?changed={newest}#row-{newest}")
    assert page.locator(".alert.ok").inner_text() == "Your label is now “none of these”."
    shoot(page, artefacts, f"history_sets_changed_390_{backend(db_url)}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
    assert errors == []
    context.close()
