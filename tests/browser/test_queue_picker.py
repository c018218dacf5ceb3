"""The queue picker of the labelling page in a real Chromium (issue 13), on SQLite and PostgreSQL:
search ("/"), label two results with keys, "more like this" ("m"), back to the default queue
(Escape); hidden for labellers when steering is off; a phone-width screen. Screenshots go to
``tests/artefacts/``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labelloop.config import Settings
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.io.demo_data import read_articles
from labelloop.orchestrator import run_round
from labelloop.store import open_engine, reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import assignments, project_members

pytestmark = pytest.mark.browser

TAGS = ["business", "entertainment", "politics", "sports", "tech"]
PASSWORD = "a long test password"


@pytest.fixture
def site(db_url, tmp_path, live_server_class):
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    rows = [{**a, "label": a["topic"]} for a in read_articles()][::14][:120]
    records = [{"id": r["id"], "title": r["title"], "body": r["body"], "label": r["label"] if i % 3 == 0 else ""}
               for i, r in enumerate(rows)]
    with writing(engine) as conn:
        store_projects.create_project(conn, name="bbc", labels=TAGS, seed=7, settings={"audit_fraction": 0.0})
    import_source(engine, project="bbc", source=MappingSource(records),
                  options=ImportOptions(id_column="id", text_columns=["title", "body"], label_column="label"),
                  settings=settings)
    run_round(engine, settings, project="bbc")
    with writing(engine) as conn:
        pid = store_projects.get_project(conn, name="bbc").id
        uid = store_users.create_user(conn, name="lena", role="labeller", password=PASSWORD).id
        conn.execute(insert(project_members).values(project_id=pid, user_id=uid, created_at=datetime.now(UTC)))
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


def active(page, text):
    page.wait_for_function("t => document.getElementById('queue-active').textContent === t", arg=text)


def steered_of(engine):
    with reading(engine) as conn:
        return dict(conn.execute(select(assignments.c.item_id, assignments.c.steered)).all())


def backend(db_url):
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def test_search_label_more_like_this_and_back(chromium, site, artefacts, db_url):
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    log_in(page, site.url, "lena", "/projects/bbc/label")
    first = shown(page)
    active(page, "Queue: default")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "queue-q"
    page.keyboard.type("film")
    with page.expect_response(lambda r: "queue=search" in r.url) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    active(page, 'Queue: search "film"')
    hit = shown(page)  # the first match (perhaps the item shown before, given back and served again)
    text = page.locator("#item-card").inner_text().lower()
    assert "film" in text
    page.screenshot(path=str(artefacts / f"queue_search_1280_{backend(db_url)}.png"))
    page.keyboard.press("2")  # label the first result with a key
    second = shown(page, hit)
    assert "film" in page.locator("#item-card").inner_text().lower()
    page.keyboard.press("2")
    third = shown(page, second)
    steered = steered_of(site.engine)
    assert steered[int(hit)] and steered[int(second)]
    page.keyboard.press("m")  # more like this
    active(page, f"Queue: similar to item {third}")
    similar = shown(page, third)
    assert steered_of(site.engine)[int(similar)]
    page.screenshot(path=str(artefacts / f"queue_similar_1280_{backend(db_url)}.png"))
    page.keyboard.press("Escape")
    active(page, "Queue: default")
    back = shown(page, similar)
    assert not steered_of(site.engine)[int(back)]
    assert errors == []


def test_phone_width_and_steering_off(chromium, site, artefacts, db_url):
    page = chromium.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    log_in(page, site.url, "lena", "/projects/bbc/label")
    first = shown(page)
    page.fill("#queue-q", "election")
    with page.expect_response(lambda r: "queue=search" in r.url) as answer:
        page.tap('#queue-search button[type="submit"]')
    assert answer.value.status == 200
    active(page, 'Queue: search "election"')
    shown(page)
    page.select_option("#queue-tag", "sports")
    page.tap("#queue-likely")
    active(page, "Queue: likely sports")
    page.screenshot(path=str(artefacts / f"queue_likely_390_{backend(db_url)}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    with writing(site.engine) as conn:
        pid = store_projects.get_project(conn, name="bbc").id
        store_projects.update_settings(conn, project_id=pid, values={"steering": False})
    import time

    time.sleep(3)  # the server's project cache
    page.reload()
    shown(page)
    assert page.locator("#queue-picker").count() == 0
