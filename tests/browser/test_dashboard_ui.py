"""The admin dashboard and the review queue in a real Chromium against a real Uvicorn server,
on SQLite and PostgreSQL. Screenshots go to ``tests/artefacts/``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from labelloop.config import Settings
from labelloop.store import labelling
from labelloop.store import open_engine, reading, writing
from labelloop.store import scores as store_scores
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import items, model_runs, projects

pytestmark = pytest.mark.browser

TAGS = ["Business", "Sport", "Tech"]
PASSWORD = "a long test password"
HOSTILE = '<img src=x onerror="window.__pwned = 1"> Shares <b>rise</b>'


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Project news (12 items, each wanted twice), ann and bob who disagree on two items, and a
    model run with an audit estimate and stopping advice."""
    settings = Settings(database_url=db_url, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="news", labels=TAGS, seed=4)
        store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
        users = [store_users.create_user(conn, name=n, role=r, password=PASSWORD).id
                 for n, r in (("boss", "admin"), ("ann", "labeller"), ("bob", "labeller"))]
        conn.execute(insert(items), [
            {"project_id": project.id, "external_id": f"n{i}", "text": f"story {i}", "target_labels": 2,
             "display": {"title": f"Story {i}", "body": f"Body of story {i}."},
             "rand": rand_key(project.seed, f"n{i}"), "created_at": now, "updated_at": now}
            for i in range(12)
        ])
    truth, disputed = {}, []
    for user, flip in ((users[1], set()), (users[2], {0, 5})):  # bob disagrees on two items
        for k in range(10):
            with writing(engine) as conn:
                proj = store_projects.get_project(conn, name="news")
                lease = queue.next_item(conn, project=proj, user_id=user, lease_seconds=600,
                                        now=now + timedelta(seconds=20 * k))
                tag = truth.setdefault(lease.item_id, TAGS[k % 3])
                if k in flip:
                    tag = TAGS[(k + 1) % 3]
                    disputed.append(lease.item_id)
                labelling.label_item(conn, project=proj, user_id=user, item_id=lease.item_id, tag=tag,
                                 now=now + timedelta(seconds=20 * k + 5))
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == min(disputed)).values(
            display={"title": HOSTILE, "body": "Body <script>window.__pwned = 2</script>"}))
        proj = store_projects.get_project(conn, name="news")
        for version, labels, audit in ((1, 8, None), (2, 16, [0.62, 0.93])):
            metrics = {"state": "model", "cv": {"folds": 3, "accuracy": 0.6 + 0.1 * version,
                                                "macro_f1": 0.55 + 0.1 * version}}
            if audit:
                metrics |= {"audit": {"labelled": 30, "correct": 24, "accuracy": 0.8, "ci95": audit},
                            "stability": {"kappa": 0.97, "compared": 200, "previous_version": 1},
                            "advice": {"stop": False, "message": "keep labelling: predictions still change"}}
            run_id = conn.execute(insert(model_runs).values(
                project_id=proj.id, version=version, status="complete", model_name="tfidf-logreg",
                strategy="margin", labels_used=labels, metrics=metrics, created_at=now - timedelta(hours=1),
            )).inserted_primary_key[0]
        ids = list(conn.execute(select(items.c.id).where(items.c.n_labels == 0)).scalars())
        store_scores.insert_scores(conn, run_id=run_id, item_ids=ids, priorities=[1.0] * len(ids),
                                   predicted_tag_ids=[proj.tag_id("Tech")] * len(ids), confidences=[0.7] * len(ids))
        conn.execute(update(projects).values(current_run_id=run_id))
    with live_server_class(settings) as server:
        server.engine = engine
        yield server
    engine.dispose()


def test_dashboard_and_review_queue(chromium, site, artefacts, db_url):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site.url + "/admin/projects/news/dashboard")
    assert "/login?next=" in page.url
    page.fill('input[name="username"]', "boss")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(site.url + "/admin/projects/news/dashboard")

    # every chart is a real image, rendered by the server
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    charts = page.locator("img.chart")
    assert charts.count() == 4
    for i in range(charts.count()):
        assert charts.nth(i).evaluate("i => i.naturalWidth") > 200, charts.nth(i).get_attribute("src")
    assert page.locator("#percent-agreement").text_content() == "80.0%"  # 8 of 10 pairs agree
    assert page.locator("#audit-accuracy").text_content() == "80.0%"
    assert page.locator("#cv-accuracy").text_content() == "80.0%"
    assert "drawn at random and never trained on" in page.locator("#cv-vs-audit").text_content()
    assert "keep labelling: predictions still change" in page.locator("#advice").text_content()
    assert page.locator("#labellers tbody tr").count() == 2
    page.screenshot(path=str(artefacts / f"dashboard_{backend}.png"), full_page=True)

    # the review queue: two disagreements, the hostile title shown as text
    page.click("nav.tabs >> text=Review")
    page.wait_for_url(site.url + "/admin/projects/news/review")
    assert page.locator("section.review-item").count() == 2
    assert page.locator("section.review-item .item-title").first.text_content() == HOSTILE  # as text
    assert page.evaluate("() => window.__pwned") is None
    page.screenshot(path=str(artefacts / f"review_{backend}.png"), full_page=True)
    for _ in range(2):
        with page.expect_navigation():
            page.locator("section.review-item").first.locator("button", has_text="Sport").click()
    assert "Nothing to review" in page.locator("main").text_content()
    with reading(site.engine) as conn:
        sport = store_projects.get_project(conn, name="news").tag_id("Sport")
        decided = conn.execute(select(items.c.label_tag_id, items.c.label_source)
                               .where(items.c.adjudicated_tag_id.is_not(None))).all()
    assert decided == [(sport, "human"), (sport, "human")]
    assert errors == []
    context.close()
