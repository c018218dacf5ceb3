"""Gold items on the admin pages: the item page's form (admins only, CSRF), the dashboard's gold
table and warning, and `status --json`'s ``gold`` key; both databases."""

from __future__ import annotations

import json
import re
import random

from click.testing import CliRunner
from sqlalchemy import select

from labelloop.cli import main
from labelloop.store import gold as store_gold
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.schema import items

ADMIN = "/admin/projects/news"


def _login(client, who):
    client.cookies.clear()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": who, "password": "correct horse", "csrf_token": csrf})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/projects").text).group(1)


def _ids(engine):
    with reading(engine) as conn:
        return list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())


def test_an_admin_marks_changes_and_unmarks_gold_from_the_item_page(client, world, engine):
    item_id = _ids(engine)[0]
    csrf = _login(client, "boss")
    page = client.get(f"{ADMIN}/items/{item_id}")
    assert page.status_code == 200 and 'id="gold-form"' in page.text and "Mark as gold" in page.text
    no_csrf = client.post(f"{ADMIN}/items/{item_id}/gold", data={"tag": "Tech"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    missing = client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf}, follow_redirects=False)
    assert missing.status_code == 400 and "choose the gold answer&#39;s tag" in missing.text
    bad = client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf, "tag": "<b>Nope</b>"})
    assert bad.status_code == 400 and "unknown tag" in bad.text and "<b>Nope</b>" not in bad.text
    done = client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf, "tag": "Tech"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith(f"/items/{item_id}?done=gold-marked")
    page = client.get(done.headers["location"]).text
    assert "Gold answer saved" in page and re.search(r'id="gold-answer">Gold answer: <span class="badge tag">Tech', page)
    with reading(engine) as conn:
        assert store_gold.gold_answer_of(conn, project=world.project, item_id=item_id) == world.project.tag_id("Tech")
        assert conn.execute(select(items.c.target_labels).where(items.c.id == item_id)).scalar_one() == 0
    assert client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf, "tag": "Sport"}).status_code == 200
    with reading(engine) as conn:
        assert store_gold.gold_answer_of(conn, project=world.project, item_id=item_id) == world.project.tag_id("Sport")
    gone = client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf, "action": "unmark"})
    assert gone.status_code == 200 and "no longer a gold item" in gone.text
    with reading(engine) as conn:
        assert store_gold.gold_answer_of(conn, project=world.project, item_id=item_id) is None
    # labellers may not
    csrf = _login(client, "ann")
    refused = client.post(f"{ADMIN}/items/{item_id}/gold", data={"csrf_token": csrf, "tag": "Tech"},
                          follow_redirects=False)
    assert refused.status_code == 403
    with reading(engine) as conn:
        assert store_gold.gold_answer_of(conn, project=world.project, item_id=item_id) is None


def _answers(engine, project, user_ids, *, n_gold, accuracy):
    """Each user answers ``n_gold`` gold items, right with the given probability per user."""
    rng = random.Random(5)
    with writing(engine) as conn:
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                                .order_by(items.c.id)).scalars())[:n_gold]
        store_gold.mark_gold(conn, project=project, values=dict.fromkeys(ids, project.tag_id("Tech")), user_id=None)
        for user_id, (right, total) in zip(user_ids, accuracy, strict=True):
            for k in range(total):
                lease = store_gold.claim_gold(conn, project=project, user_id=user_id, lease_seconds=60, rng=rng)
                store_gold.answer_gold(conn, project=project, user_id=user_id, item_id=lease.item_id,
                                       tag="Tech" if k < right else "Sport")


def test_the_dashboard_and_status_show_accuracy_and_flag_the_weak(world, engine, tools, tmp_path):
    from fastapi.testclient import TestClient

    from labelloop.server import create_app

    tools.add_items(engine, world.project, 60, prefix="g")
    with writing(engine) as conn:
        store_projects.update_settings(conn, project_id=world.project.id, values={"gold_min_accuracy": 0.8})
        project = store_projects.get_project(conn, name="news")
    _answers(engine, project, [world.ids["ann"], world.ids["bob"]], n_gold=60, accuracy=[(57, 60), (36, 60)])
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1") as client:
        _login(client, "boss")
        page = client.get(f"{ADMIN}/dashboard")
        assert page.status_code == 200
        text = page.text
        warning = re.search(r'id="gold-warning">(.*?)</div>', text, re.S).group(1)
        assert "bob" in warning and "ann" not in warning
        table = re.search(r'<table id="gold-table">(.*?)</table>', text, re.S).group(1)
        rows = re.findall(r"<tr(?: class=\"flagged\")?>\s*<td>(\w+)</td>\s*<td class=\"num\">(\d+) / (\d+)</td>",
                          table)
        assert rows == [("ann", "57", "60"), ("bob", "36", "60")]
        assert '<tr class="flagged">\n    <td>bob</td>' in table
    result = CliRunner().invoke(main, ["status", "news", "--json", "--db", world.settings.database_url])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["gold_items"] == 60
    ann, bob = status["gold"]["ann"], status["gold"]["bob"]
    assert (ann["answered"], ann["correct"], ann["accuracy"], ann["flagged"]) == (60, 57, 0.95, False)
    assert (bob["answered"], bob["correct"], bob["accuracy"], bob["flagged"]) == (60, 36, 0.6, True)
    assert bob["ci95"][0] < 0.6 < bob["ci95"][1] < 0.8 and ann["ci95"][0] < 0.95 < ann["ci95"][1]
    shown = CliRunner().invoke(main, ["status", "news", "--db", world.settings.database_url])
    assert shown.exit_code == 0 and "FLAGGED" in shown.stdout and "gold items (60" in shown.stdout


def test_status_json_without_gold(world):
    result = CliRunner().invoke(main, ["status", "news", "--json", "--db", world.settings.database_url])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["gold"] == {} and status["gold_items"] == 0


def test_multi_label_gold_from_the_item_page(client, world, engine, tools):
    with writing(engine) as conn:
        ml = store_projects.create_project(conn, name="ml", labels=["Video", "Audio", "Text"], seed=2,
                                           multi_label=True)
    tools.add_items(engine, ml, 2, prefix="m")
    with reading(engine) as conn:
        first, second = conn.execute(select(items.c.id).where(items.c.project_id == ml.id)
                                     .order_by(items.c.id)).scalars()
    csrf = _login(client, "boss")
    assert 'name="tags" value="Audio"' in client.get(f"/admin/projects/ml/items/{first}").text
    done = client.post(f"/admin/projects/ml/items/{first}/gold",
                       data={"csrf_token": csrf, "tags": ["Video", "Text"]}, follow_redirects=False)
    assert done.status_code == 303
    none = client.post(f"/admin/projects/ml/items/{second}/gold", data={"csrf_token": csrf}, follow_redirects=False)
    assert none.status_code == 303  # nothing checked: "no tag applies" is a gold answer too
    with reading(engine) as conn:
        assert store_gold.gold_answer_of(conn, project=ml, item_id=first) == 1 | 4
        assert store_gold.gold_answer_of(conn, project=ml, item_id=second) == 0
    page = client.get(f"/admin/projects/ml/items/{second}").text
    assert 'id="gold-answer">Gold answer: <span class="badge">no tag applies</span>' in page
