"""Model suggestions on the labelling page (issue 14) in a real Chromium against a real Uvicorn
server, on SQLite and PostgreSQL: ``preselect`` marks the model's tag and Enter accepts it
(multi-label: the predicted set is chosen and Enter submits it); ``order`` puts the buttons in the
model's order and the number keys follow the buttons; no suggestion (an audit item) leaves the
page as it is. Screenshots at 1280 and 390 px go to /tmp/shots-suggest/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select, update

from labelloop.config import Settings
from labelloop.store import open_engine, reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import scores as store_scores
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.schema import annotations, items, model_runs, projects, utcnow
from labelloop.store.setscores import write_set_scores

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"
TAGS = ["Sport", "Politics", "Tech", "Culture"]
SET_TAGS = ["interface::commandline", "interface::x11", "works-with::text", "network::client"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 820}}
SHOTS = Path("/tmp/shots-suggest")
TEXTS = [
    ("Cup final goes to extra time", "The home side equalised in the last minute before a penalty shoot-out."),
    ("Parliament passes the budget", "After a long night of debate the coalition agreed on spending cuts."),
    ("New chip doubles battery life", "The maker says phones will last two days on a single charge."),
    ("Film festival opens downtown", "Forty films from twelve countries compete for the main prize this week."),
    ("Marathon record falls", "The winner ran the course in under two hours and five minutes."),
    ("Election date set", "Voters will go to the polls in the spring, the president announced."),
]


def _project(conn, name: str, labels: list[str], mode: str, *, multi: bool = False):
    project = store_projects.create_project(conn, name=name, labels=labels, seed=5, multi_label=multi,
                                            settings={"audit_fraction": 0.0, "suggestions": mode})
    now = datetime.now(UTC)
    conn.execute(insert(items), [
        {"project_id": project.id, "external_id": f"{name}-{k}", "display": {"title": t, "body": b},
         "text": f"{t} {b}", "rand": rand_key(project.seed, f"{name}-{k}"), "created_at": now, "updated_at": now}
        for k, (t, b) in enumerate(TEXTS)
    ])
    store_projects.set_import_columns(conn, project_id=project.id, id_column="id", display_columns=["title", "body"])
    for user in ("ann", "bob"):
        store_members.add_member(conn, project=name, user=user, actor_id=None)
    ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id).order_by(items.c.id)).scalars())
    metrics = {"state": "model"}
    if multi:
        metrics.update({"multi_label": True, "tags": labels, "bits": list(range(len(labels)))})
    run_id = conn.execute(insert(model_runs).values(
        project_id=project.id, version=1, status="complete", model_name="tfidf-logreg", strategy="margin",
        labels_used=10, created_at=utcnow(), metrics=metrics)).inserted_primary_key[0]
    return project, ids, run_id


@pytest.fixture
def site(db_url: str, tmp_path, live_server_class):
    """Projects ``pre`` (preselect) and ``ord`` (order), single-label, whose model predicts item k
    as ``PREDICTED[k]``; ``setpre`` and ``setord``, multi-label, predicting the first two tags
    of ``SET_TAGS`` reversed in probability; labellers ann and bob."""
    settings = Settings(database_url=db_url, lease_seconds=60, models_dir=tmp_path / "models")
    engine = open_engine(db_url)
    with writing(engine) as conn:
        for name in ("ann", "bob"):
            store_users.create_user(conn, name=name, role="labeller", password=PASSWORD)
        made = {}
        for name, mode in (("pre", "preselect"), ("ord", "order")):
            project, ids, run_id = _project(conn, name, TAGS, mode)
            predicted = [project.tag_id(TAGS[k % 3 + 1]) for k in range(len(ids))]  # Politics, Tech, Culture...
            store_scores.insert_scores(conn, run_id=run_id, item_ids=ids, priorities=[9.0 - k for k in range(len(ids))],
                                       predicted_tag_ids=predicted, confidences=[0.7] * len(ids))
            conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
            made[name] = ids
        set_runs = {}
        for name, mode in (("setpre", "preselect"), ("setord", "order")):
            project, ids, run_id = _project(conn, name, SET_TAGS, mode, multi=True)
            set_runs[name] = (project, ids, run_id)
    for project, ids, run_id in set_runs.values():
        n = len(ids)
        proba = np.tile(np.array([[0.55, 0.93, 0.1, 0.3]], dtype=np.float32), (n, 1))
        write_set_scores(engine, run_id=run_id, item_ids=np.array(ids), priorities=np.arange(n, 0, -1, dtype=float),
                         confidences=np.full(n, 0.5), predicted_masks=np.full(n, 0b0011), proba=proba)
        with writing(engine) as conn:
            conn.execute(update(projects).where(projects.c.id == project.id).values(current_run_id=run_id))
    with live_server_class(settings) as server:
        server.engine = engine
        server.ids = made
        yield server
    engine.dispose()


def log_in(page, base: str, name: str, path: str) -> None:
    page.goto(base + path)
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(base + path)


def shown(page, previous: str | None = None) -> str:
    page.wait_for_function(
        "prev => { const c = document.getElementById('item-card');"
        " return c.dataset.item && c.dataset.item !== prev && !c.classList.contains('loading'); }", arg=previous)
    return page.locator("#item-card").get_attribute("data-item")


def buttons(page) -> list[tuple[str, str | None]]:
    """(tag, number key) of the tag buttons in the order shown."""
    pairs = page.eval_on_selector_all(".tag-btn", "bs => bs.map(b => [b.dataset.tag, b.dataset.key || null])")
    return [tuple(pair) for pair in pairs]


def labels_of(engine, user: str, project: str) -> dict[int, int]:
    with reading(engine) as conn:
        uid = store_users.get_user(conn, name=user).id
        proj = store_projects.get_project(conn, name=project)
        rows = conn.execute(select(annotations.c.item_id, annotations.c.tag_id, annotations.c.tag_mask)
                            .where(annotations.c.user_id == uid, annotations.c.project_id == proj.id)).all()
    return {r.item_id: (proj.tag_name(r.tag_id) if r.tag_id is not None else r.tag_mask) for r in rows}


def watch(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)  # CSP, too
    return errors


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def test_preselect_enter_accepts_the_suggestion(chromium, site, db_url):
    SHOTS.mkdir(exist_ok=True)
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    errors = watch(page)
    log_in(page, site.url, "ann", "/projects/pre/label")
    first = shown(page)
    ids = site.ids["pre"]
    assert int(first) == ids[0]
    assert page.eval_on_selector_all(".tag-btn.suggested", "bs => bs.map(b => b.dataset.tag)") == ["Politics"]
    assert [tag for tag, _key in buttons(page)] == TAGS  # preselect keeps the display order
    if db_url.startswith("sqlite"):
        page.screenshot(path=str(SHOTS / "label_preselect_1280.png"))
    page.keyboard.press("Enter")
    second = shown(page, first)
    page.wait_for_function("() => document.getElementById('status').textContent === 'Saved as Politics'")
    assert labels_of(site.engine, "ann", "pre") == {ids[0]: "Politics"}
    assert page.eval_on_selector_all(".tag-btn.suggested", "bs => bs.map(b => b.dataset.tag)") == ["Tech"]
    page.keyboard.press("1")  # a number key still labels with the tag it shows
    third = shown(page, second)
    assert labels_of(site.engine, "ann", "pre")[int(second)] == "Sport"
    page.keyboard.press("Enter")
    shown(page, third)
    assert labels_of(site.engine, "ann", "pre")[int(third)] == "Culture"
    assert errors == []
    context.close()


def test_order_mode_number_keys_follow_the_buttons(chromium, site, db_url):
    SHOTS.mkdir(exist_ok=True)
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    errors = watch(page)
    log_in(page, site.url, "ann", "/projects/ord/label")
    first = shown(page)
    ids = site.ids["ord"]
    expected = [("Politics", "1"), ("Sport", "2"), ("Tech", "3"), ("Culture", "4")]
    assert buttons(page) == expected
    assert page.eval_on_selector_all(".tag-btn kbd", "ks => ks.map(k => k.textContent)") == ["1", "2", "3", "4"]
    assert page.locator(".tag-btn.suggested").count() == 0
    if db_url.startswith("sqlite"):
        page.screenshot(path=str(SHOTS / "label_order_1280.png"))
    page.keyboard.press("2")  # the second button: Sport
    second = shown(page, first)
    assert labels_of(site.engine, "ann", "ord") == {ids[0]: "Sport"}
    assert buttons(page) == [("Tech", "1"), ("Sport", "2"), ("Politics", "3"), ("Culture", "4")]
    page.keyboard.press("1")
    third = shown(page, second)
    assert labels_of(site.engine, "ann", "ord")[int(second)] == "Tech"
    page.keyboard.press("Enter")  # Enter accepts nothing in order mode
    page.wait_for_timeout(150)
    assert shown(page) == third and len(labels_of(site.engine, "ann", "ord")) == 2
    page.get_by_role("button", name="Culture").click()  # the mouse: the button clicked
    shown(page, third)
    assert labels_of(site.engine, "ann", "ord")[int(third)] == "Culture"
    assert errors == []
    context.close()


def test_multi_label_preselect_and_order(chromium, site, db_url):
    SHOTS.mkdir(exist_ok=True)
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    errors = watch(page)
    log_in(page, site.url, "bob", "/projects/setpre/label")
    first = shown(page)
    pressed = page.eval_on_selector_all('.tag-btn[aria-pressed="true"]', "bs => bs.map(b => b.dataset.tag)")
    assert pressed == SET_TAGS[:2]
    page.keyboard.press("Enter")  # submits the preselected set
    second = shown(page, first)
    assert labels_of(site.engine, "bob", "setpre") == {int(first): 0b0011}
    page.keyboard.press("1")  # take one tag out of the preselected set, then submit
    page.keyboard.press("Enter")
    shown(page, second)
    assert labels_of(site.engine, "bob", "setpre")[int(second)] == 0b0010

    page.goto(site.url + "/projects/setord/label")
    shown(page)
    order = [SET_TAGS[1], SET_TAGS[0], SET_TAGS[3], SET_TAGS[2]]
    assert buttons(page) == [(t, str(k + 1)) for k, t in enumerate(order)]
    assert page.eval_on_selector_all(".suggest-p", "ps => ps.map(p => p.textContent)") == ["93%", "55%", "30%", "10%"]
    assert page.eval_on_selector_all('.tag-btn[aria-pressed="true"]', "bs => bs.length") == 0  # order only
    if db_url.startswith("sqlite"):
        page.screenshot(path=str(SHOTS / "label_multi_order_1280.png"))
    assert errors == []
    context.close()


def test_phone_screenshots(chromium, site, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("screenshots once")
    SHOTS.mkdir(exist_ok=True)
    for project in ("pre", "ord", "setpre"):
        context = chromium.new_context(**PHONE)
        page = context.new_page()
        errors = watch(page)
        log_in(page, site.url, "bob", f"/projects/{project}/label")
        shown(page)
        page.screenshot(path=str(SHOTS / f"label_{project}_390.png"))
        assert errors == []
        context.close()
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    log_in(page, site.url, "bob", "/projects/setpre/label")
    shown(page)
    page.screenshot(path=str(SHOTS / "label_multi_preselect_1280.png"))
    context.close()


def test_no_suggestion_leaves_the_page_as_drawn(chromium, site, db_url):
    """An audit draw (every claim, here) comes without a suggestion: display order, keys 1-4."""
    with writing(site.engine) as conn:
        proj = store_projects.get_project(conn, name="ord")
        store_projects.update_settings(conn, project_id=proj.id, values={"audit_fraction": 1.0})
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    log_in(page, site.url, "bob", "/projects/ord/label")
    first = shown(page)
    assert buttons(page) == [(t, str(k + 1)) for k, t in enumerate(TAGS)]
    page.keyboard.press("3")
    shown(page, first)
    assert labels_of(site.engine, "bob", "ord") == {int(first): "Tech"}
    context.close()
