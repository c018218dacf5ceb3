"""Comments, flags and skip reasons in a real Chromium against a real Uvicorn server, on SQLite
and PostgreSQL (issue 14): a labeller comments on and flags a label and skips with a reason, by
keys on a desktop and by taps on a phone; the admin sees them on the flags page, decides one
item's label and resolves a note. Screenshots go to ``tests/artefacts/`` (and, with
``LABELLOOP_SHOTS``, to that folder too)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.store import members as store_members
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, assignments, item_notes, items, users

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
TAGS = ["business", "entertainment", "politics", "sports", "tech"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 820}}


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    settings = Settings(database_url=db_url, lease_seconds=60, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="bbc", labels=TAGS, seed=3,
                                                settings={"audit_fraction": 0.0})
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"s{i}", "text": f"Story {i}",
             "display": {"title": f"Story {i}: a club buys a bank", "body": f"The body of story {i}. " * 8},
             "rand": rand_key(project.seed, f"s{i}"), "created_at": now, "updated_at": now}
            for i in range(10)])
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id",
                                          display_columns=["title", "body"])
        for name, role in (("boss", "admin"), ("ann", "labeller")):
            store_users.create_user(conn, name=name, role=role, password=PASSWORD)
        store_members.add_member(conn, project="bbc", user="ann", actor_id=None)
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


def notes_of(engine) -> list[tuple]:
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(item_notes.c.item_id, users.c.name, item_notes.c.kind, item_notes.c.reason, item_notes.c.text,
                   item_notes.c.resolved_at.is_not(None))
            .select_from(item_notes.join(users, users.c.id == item_notes.c.user_id)).order_by(item_notes.c.id))]


def label_of(engine, item_id: int) -> str | None:
    with reading(engine) as conn:
        tag = conn.execute(select(annotations.c.tag_id).where(annotations.c.item_id == item_id)).scalar()
        project = store_projects.get_project(conn, name="bbc")
    return {t.id: t.name for t in project.tags}.get(tag)


def shot(page, artefacts: Path, name: str) -> None:
    path = artefacts / name
    page.screenshot(path=str(path))
    if os.environ.get("LABELLOOP_SHOTS"):
        target = Path(os.environ["LABELLOOP_SHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)


def test_comment_flag_skip_reason_and_the_flags_queue(chromium, site, artefacts, db_url):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    engine = site.engine
    # ---- desktop, by keys ---------------------------------------------------------------------
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, site.url, "ann", "/projects/bbc/label")
    first = shown(page)
    page.keyboard.press("c")  # opens the box, focused; the "c" is not typed into it
    page.wait_for_selector("#note-comment:focus")
    page.keyboard.type("Is 2 the right tag? Both business and sports.")  # "2" typed, not a label
    assert page.locator("#note-comment").input_value() == "Is 2 the right tag? Both business and sports."
    page.keyboard.press("Escape")  # leaves the box; the text stays
    page.keyboard.press("f")
    assert page.locator("#note-unsure").get_attribute("aria-pressed") == "true"
    assert page.locator("#note-pending").inner_text() == "Your next label goes flagged unsure, with your comment."
    assert shown(page) == first  # nothing was labelled meanwhile
    shot(page, artefacts, f"notes_label_1280_comment_{backend}.png")
    page.keyboard.press("4")  # sports, with the comment and the flag
    second = next_shown(page, first)
    page.wait_for_function("() => document.getElementById('note-box').hidden")
    assert page.locator("#note-unsure").get_attribute("aria-pressed") == "false"
    assert page.locator("#note-comment").input_value() == ""
    assert page.locator("#note-pending").is_hidden()
    assert label_of(engine, int(first)) == "sports"
    assert notes_of(engine) == [(int(first), "ann", "unsure", None,
                                 "Is 2 the right tag? Both business and sports.", False)]

    page.keyboard.press("r")  # the skip menu; 3 = needs context (not the third tag)
    page.wait_for_selector("#skip-menu:not([hidden])")
    shot(page, artefacts, f"notes_label_1280_skipmenu_{backend}.png")
    page.keyboard.press("3")
    third = next_shown(page, second)
    assert page.locator("#skip-menu").is_hidden()
    assert label_of(engine, int(second)) is None
    with reading(engine) as conn:
        state = conn.execute(select(assignments.c.state).where(assignments.c.item_id == int(second))).scalar_one()
    assert state == "skipped"
    assert notes_of(engine)[-1] == (int(second), "ann", "skip", "needs-context", None, False)
    page.keyboard.press("r")
    page.keyboard.press("Escape")  # closes the menu, skips nothing
    assert page.locator("#skip-menu").is_hidden() and shown(page) == third
    page.keyboard.press("1")  # a plain label: no note
    fourth = next_shown(page, third)
    assert label_of(engine, int(third)) == "business" and len(notes_of(engine)) == 2
    assert errors == []
    context.close()

    # ---- a phone, by taps ---------------------------------------------------------------------
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    log_in(page, site.url, "ann", "/projects/bbc/label")
    assert shown(page) == fourth  # the lease held from the desktop
    page.get_by_role("button", name="Comment").tap()
    page.locator("#note-comment").fill("Spelling: 'bnak'")
    page.locator("#note-unsure").tap()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, artefacts, f"notes_label_390_comment_{backend}.png")
    page.locator(".tag-btn", has_text="tech").tap()
    fifth = next_shown(page, fourth)
    assert notes_of(engine)[-1] == (int(fourth), "ann", "unsure", None, "Spelling: 'bnak'", False)
    page.get_by_role("button", name="Reason…").tap()
    page.wait_for_selector("#skip-menu:not([hidden])")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, artefacts, f"notes_label_390_skipmenu_{backend}.png")
    page.locator("#skip-menu").get_by_role("button", name="Off-topic").tap()
    next_shown(page, fifth)
    assert notes_of(engine)[-1] == (int(fifth), "ann", "skip", "off-topic", None, False)
    context.close()

    # ---- the admin's flags queue --------------------------------------------------------------
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    log_in(page, site.url, "boss", "/admin/projects/bbc/flags")
    cards = page.locator("section.flag-item")
    assert cards.count() == 4
    assert [cards.nth(i).get_attribute("data-item") for i in range(4)] == [fifth, fourth, second, first]
    text = page.locator("main").inner_text()
    for words in ("Is 2 the right tag? Both business and sports.", "skipped: needs context", "skipped: off-topic",
                  "Spelling: 'bnak'", "Story", "ann"):
        assert words in text, words
    assert page.locator(f'section[data-item="{first}"] .badge', has_text="unsure").count() == 1
    shot(page, artefacts, f"notes_flags_1280_{backend}.png")
    # decide the first item's label: its note is resolved
    page.locator(f'section[data-item="{first}"] form.decide button', has_text="business").click()
    page.wait_for_selector(".alert.ok")
    assert page.locator(f'section[data-item="{first}"]').count() == 0
    with reading(engine) as conn:
        decided = conn.execute(select(items.c.adjudicated_tag_id).where(items.c.id == int(first))).scalar_one()
    assert decided is not None
    # mark the skip note resolved
    page.locator(f'section[data-item="{second}"]').get_by_role("button", name="Mark resolved").click()
    page.wait_for_selector(".alert.ok")
    assert page.locator(".alert.ok").inner_text() == "Note marked resolved."
    assert [n[5] for n in notes_of(engine)] == [True, True, False, False]
    context.close()

    context = chromium.new_context(**PHONE)
    page = context.new_page()
    log_in(page, site.url, "boss", "/admin/projects/bbc/flags")
    assert page.locator("section.flag-item").count() == 2
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, artefacts, f"notes_flags_390_{backend}.png")
    context.close()
