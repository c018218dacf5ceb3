"""Numbers on the admin pages are written for people: a rank or priority as 510 (not
"510.000"), a score as "0.00" (never "-0.0000"), counts with thousands separators. The filters
themselves, and the model page and the data browser through a real HTTP client on both databases."""

from __future__ import annotations

import math
import re

from sqlalchemy import insert, select, update

from labelloop.server.formats import ago, count, percent, rank, score
from labelloop.store import writing
from labelloop.store import scores as store_scores
from labelloop.store.schema import items, model_runs, projects, utcnow

PASSWORD = "correct horse"  # as in conftest


def test_the_filters():
    assert count(1234567) == "1,234,567" and count(0) == "0" and count(None) == "—"
    assert rank(510.0) == "510" and rank(12345.0) == "12,345" and rank(math.nan) == "—"
    assert score(-0.00003) == "0.00" and score(-0.0) == "0.00" and score(-0.004, 2) == "0.00"
    assert score(-0.0123) == "-0.01" and score(0.876, 3) == "0.876" and score(None) == "—"
    assert percent(0.8) == "80.0%" and percent(-0.0001) == "0.0%" and percent(0.873, 0) == "87%"
    assert ago(12.4) == "12 s" and ago(119) == "119 s" and ago(300) == "5 min" and ago(7500) == "2 h 5 min"
    assert ago(3 * 86400) == "3 days"


def login(client, name: str) -> None:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303


def test_model_page_and_data_browser_show_ranks_and_scores_for_people(client, world, engine):
    with writing(engine) as conn:
        ids = list(conn.execute(select(items.c.id).order_by(items.c.id)).scalars())
        top = [{"item_id": i, "score": -0.00001 * (k + 1), "score_rank": k + 1} for k, i in enumerate(ids)]
        run_id = conn.execute(insert(model_runs).values(
            project_id=world.project.id, version=1, status="complete", model_name="tfidf-logreg", strategy="margin",
            labels_used=12345, created_at=utcnow(),
            metrics={"state": "model", "cv": {"folds": 3, "accuracy": 0.75, "macro_f1": 0.7}, "top": top},
        )).inserted_primary_key[0]
        store_scores.insert_scores(conn, run_id=run_id, item_ids=ids, priorities=[510.0 - k for k in range(len(ids))],
                                   predicted_tag_ids=[world.project.tag_id("Sport")] * len(ids),
                                   confidences=[0.8734] * len(ids))
        conn.execute(update(projects).values(current_run_id=run_id))
    login(client, "boss")
    page = client.get("/admin/projects/news/models").text
    cells = re.findall(r'<td class="num">([^<]*)</td>', page)
    assert "510" in cells and "506" in cells and "0.87" in cells
    assert "510.000" not in page and "-0.0000" not in page and "-0.00" not in page
    assert cells.count("0.00") == len(ids)  # every score, none negative zero
    assert "12,345" in page  # labels used, with separators
    browse = client.get("/admin/projects/news/browse?sort=priority").text
    assert re.findall(r'<td class="num small">([^<]*)</td>', browse) == [str(510 - k) for k in range(len(ids))]
    assert "510.000" not in browse
