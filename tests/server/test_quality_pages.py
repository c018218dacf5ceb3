"""The dashboard, the review queue and the tag merge/retire forms, through a real in-process
HTTP client, on both databases."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import insert, select, update

from labelloop.io.export import export_rows, plan_export
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.runs import label_snapshot
from labelloop.store.schema import audit_log, items, model_runs, projects, utcnow

PASSWORD = "correct horse"  # as in conftest
API = "/api/projects/news"
HOSTILE = '<script>window.__pwned = 1</script><b>bold?</b>'
PAGES = ("/admin/projects/news/dashboard", "/admin/projects/news/dashboard/progress.png",
         "/admin/projects/news/dashboard/quality.png", "/admin/projects/news/dashboard/confusion.png",
         "/admin/projects/news/review")


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def label_as(client, world, name: str, tags: list[str]) -> list[int]:
    done = []
    for tag in tags:
        item = client.post(f"{API}/next", headers=world.auth(name)).json()["item"]
        response = client.post(f"{API}/items/{item['id']}/labels", json={"label": tag}, headers=world.auth(name))
        assert response.status_code == 201, response.text
        done.append(item["id"])
    return done


@pytest.fixture
def overlap(client, world, engine):
    """Every item wants two labels; ann and bob label all five and disagree on the second."""
    with writing(engine) as conn:
        conn.execute(update(items).values(target_labels=2))
    order = label_as(client, world, "ann", ["Sport", "Sport", "Politics", "Tech", "Tech"])
    assert label_as(client, world, "bob", ["Sport", "Politics", "Politics", "Tech", "Tech"]) == order
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == order[1]).values(display={"title": HOSTILE, "body": "b & c"}))
    return order


def test_pages_and_charts_are_for_admins_only(client, world):
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    login(client, "ann")
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    client.cookies.clear()
    login(client, "boss")
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        if path.endswith(".png"):
            assert response.content.startswith(b"\x89PNG\r\n\x1a\n") and response.headers["content-type"] == "image/png"
    assert client.get("/admin/projects/nope/dashboard").status_code == 404
    overview = client.get("/admin").text
    assert 'href="/admin/projects/news/dashboard"' in overview and 'href="/admin/projects/news/review"' in overview


def test_dashboard_shows_agreement_labellers_and_no_model_yet(client, world, overlap):
    login(client, "boss")
    page = client.get("/admin/projects/news/dashboard")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "5 items labelled by several people" in text
    assert "80.0% of label pairs agree" in text  # 4 of 5 pairs
    # ann: Sport Sport Politics Tech Tech; bob: Sport Politics Politics Tech Tech
    assert re.search(r"ann / bob 5 0\.7\d\d", text)
    assert re.search(r"ann 5 — 80\.0% —", text) and re.search(r"bob 5 — 80\.0% —", text)
    assert "Advice: no model yet" in text
    assert client.get("/admin/projects/news/dashboard/confusion.png").status_code == 200


def test_dashboard_shows_the_audit_estimate_beside_cv_and_the_advice(client, world, engine, overlap):
    with writing(engine) as conn:
        old = {"state": "model", "cv": {"folds": 3, "accuracy": 0.7, "macro_f1": 0.6}}  # before audits existed
        new = {"state": "model", "cv": {"folds": 5, "accuracy": 0.81, "macro_f1": 0.77},
               "audit": {"labelled": 120, "correct": 110, "accuracy": 110 / 120, "ci95": [0.853, 0.954]},
               "stability": {"kappa": 0.995, "compared": 500, "previous_version": 1},
               "advice": {"stop": True, "message": "the model's labels are estimated 91.7 % accurate "
                                                   "(95 % CI 85.3-95.4 %); labelling more changes little <ok>"}}
        for version, metrics in ((1, old), (2, new)):
            run_id = conn.execute(insert(model_runs).values(
                project_id=world.project.id, version=version, status="complete", model_name="tfidf-logreg",
                strategy="margin", labels_used=5 * version, metrics=metrics, created_at=utcnow(),
            )).inserted_primary_key[0]
        conn.execute(update(projects).values(current_run_id=run_id))
    login(client, "boss")
    page = client.get("/admin/projects/news/dashboard").text
    text = text_of(page)
    assert "Audit estimate (v2) 91.7% 95 % interval 85.3% – 95.4%, from 120 random audit items (110 right)" in text
    assert "Cross-validated on the labelled items (biased) 81.0% accuracy; macro-F1 0.770" in text
    assert "the audit estimate uses items drawn at random and never trained on" in text
    assert "labelling more changes little &lt;ok&gt;" in page  # escaped
    assert "Predictions changed little since v1: Cohen's kappa 0.995 ≥ 0.99 on 500 fixed random items." in unescape(text)
    chart = client.get("/admin/projects/news/dashboard/quality.png")
    assert chart.status_code == 200 and len(chart.content) > 5000
    # the older version (no audit, no advice) as the serving one: read defensively
    with writing(engine) as conn:
        first = conn.execute(select(model_runs.c.id).where(model_runs.c.version == 1)).scalar_one()
        conn.execute(update(projects).values(current_run_id=first))
    text = text_of(client.get("/admin/projects/news/dashboard").text)
    assert "Audit estimate (v1) — no held-out audit items labelled yet" in text
    assert "no stopping advice for this version" in text


def test_dashboard_words_stability_from_kappa_and_hides_an_accuracy_from_few_audit_items(client, world, engine):
    """kappa 0.788 is not "changed little" beside the advice "kappa 0.788 < 0.99", and 5 of 5
    audit items right is not headlined as "100.0%"."""
    metrics = {"state": "model", "cv": {"folds": 3, "accuracy": 0.75, "macro_f1": 0.7},
               "audit": {"labelled": 5, "correct": 5, "accuracy": 1.0, "ci95": [0.566, 1.0]},
               "stability": {"kappa": 0.788, "compared": 1000, "previous_version": 3},
               "advice": {"stop": False, "message": "keep labelling: predictions still change between rounds "
                                                    "(kappa 0.788 < 0.99); only 5 audit items labelled (30 needed)"}}
    with writing(engine) as conn:
        run_id = conn.execute(insert(model_runs).values(
            project_id=world.project.id, version=4, status="complete", model_name="tfidf-logreg",
            strategy="margin", labels_used=40, metrics=metrics, created_at=utcnow(),
        )).inserted_primary_key[0]
        conn.execute(update(projects).values(current_run_id=run_id))
    login(client, "boss")
    page = client.get("/admin/projects/news/dashboard").text
    text = text_of(page)
    assert "changed little" not in text
    assert ("Predictions still change since v3: Cohen's kappa 0.788 < 0.99 (stable from 0.99) "
            "on 1,000 fixed random items.") in unescape(text)
    assert "Audit estimate (v4) — too few audit items (5 of 30): an accuracy from so few random items" in text
    assert "100.0%" not in text
    assert "Advice: keep labelling: predictions still change between rounds (kappa 0.788 < 0.99)" in unescape(text)


def test_progress_chart_is_readable_with_one_day_of_labels(client, world, overlap):
    """All ten labels are from today: one bar (not a lone dot, not a bar across the whole chart)."""
    import io

    import numpy as np
    from PIL import Image

    login(client, "boss")
    response = client.get("/admin/projects/news/dashboard/progress.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    accent = (np.abs(pixels - np.array([0x2F, 0x6F, 0xDE])).sum(axis=2) < 40)  # the chart's blue
    share = accent.mean()
    columns = np.flatnonzero(accent.any(axis=0))
    assert share > 0.02, f"the day's total is hardly drawn ({share:.2%} of the chart)"
    assert columns.size and (columns[-1] - columns[0]) < 0.25 * pixels.shape[1]  # one bar, not a band


def test_review_queue_resolves_conflicts_in_the_page(client, world, engine, overlap):
    csrf = login(client, "boss")
    page = client.get("/admin/projects/news/review")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page.text
    assert "b &amp; c" in page.text
    text = text_of(page.text)
    assert "1 items where labellers disagree (1 ties without a final label)" in text
    assert "ann : Sport" in text and "bob : Politics" in text
    item = overlap[1]
    refused = client.post(f"/admin/projects/news/review/{item}", data={"label": "Politics"})
    assert refused.status_code == 403
    unknown = client.post(f"/admin/projects/news/review/{item}", data={"label": "Nope", "csrf_token": csrf})
    assert unknown.status_code == 400 and "unknown tag" in unknown.text
    done = client.post(f"/admin/projects/news/review/{item}", data={"label": "Politics", "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/projects/news/review?decided=")
    after = client.get(done.headers["location"])
    assert "Nothing to review" in after.text and "Decided: item" in after.text
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name="news")
        row = conn.execute(select(items.c.external_id, items.c.label_tag_id, items.c.label_source)
                           .where(items.c.id == item)).one()
        assert (row.label_tag_id, row.label_source) == (proj.tag_id("Politics"), "human")
        rows = [r for chunk in export_rows(conn, plan_export(conn, project=proj)) for r in chunk]
        assert (row.external_id, "Politics", "human") in rows
        snapshot = label_snapshot(conn, project_id=proj.id)
        assert dict(zip(snapshot["train_ids"].tolist(), snapshot["train_tags"].tolist()))[item] == proj.tag_id("Politics")
        actions = list(conn.execute(select(audit_log.c.action)).scalars())
    assert actions == ["item.adjudicate"]


def test_adjudicate_api(client, world, engine, overlap):
    item = overlap[1]
    url = f"{API}/items/{item}/adjudicate"
    assert client.post(url, json={"label": "Sport"}).status_code == 401
    assert client.post(url, json={"label": "Sport"}, headers=world.auth("ann")).status_code == 403
    unknown = client.post(url, json={"label": "Nope"}, headers=world.auth("boss"))
    assert unknown.status_code == 422 and "unknown tag 'Nope'" in unknown.json()["detail"]
    assert client.post(f"{API}/items/999999/adjudicate", json={"label": "Sport"},
                       headers=world.auth("boss")).status_code == 404
    with reading(engine) as conn:
        assert conn.execute(select(items.c.label_source).where(items.c.id == item)).scalar_one() == "conflict"
    csrf = login(client, "boss")
    assert client.post(url, json={"label": "Sport"}).status_code == 403  # session without the CSRF header
    done = client.post(url, json={"label": "Sport"}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200
    assert done.json() == {"item_id": item, "external_id": done.json()["external_id"], "label": "Sport",
                           "label_source": "human"}
    stats = client.get(f"{API}/stats").json()
    assert stats["conflicts"] == 0 and stats["per_tag"]["Sport"] == 2


def test_tag_merge_and_retire_forms(client, world, engine, overlap):
    csrf = login(client, "boss")
    merged = client.post("/admin/projects/news/tags/merge",
                         data={"csrf_token": csrf, "source": "Politics", "into": "Sport"}, follow_redirects=False)
    assert merged.status_code == 303 and merged.headers["location"].endswith("?done=tag-merged")
    page = client.get(merged.headers["location"]).text
    assert "Tags merged" in page and "merged “Politics” into “Sport” (3 labels)" in page
    assert client.get(f"{API}/stats").json()["per_tag"] == {"Sport": 3, "Tech": 2}
    itself = client.post("/admin/projects/news/tags/merge", data={"csrf_token": csrf, "source": "Tech", "into": "Tech"})
    assert itself.status_code == 400 and "into itself" in itself.text
    retired = client.post("/admin/projects/news/tags/retire", data={"csrf_token": csrf, "name": "Tech"},
                          follow_redirects=False)
    assert retired.status_code == 303
    assert "retired “Tech” (2 items back in the queue)" in client.get("/admin/projects/news/tags").text
    last = client.post("/admin/projects/news/tags/retire", data={"csrf_token": csrf, "name": "Sport"})
    assert last.status_code == 409 and "last active tag" in last.text
    again = client.post("/admin/projects/news/tags", data={"csrf_token": csrf, "name": "Tech"}, follow_redirects=False)
    assert again.headers["location"].endswith("?done=tag-reactivated")
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="news").tag_names == ["Sport", "Tech"]
    assert 'data-tag="Tech" data-key="2"' in client.get("/projects/news/label").text
    for path, data in (("/admin/projects/news/tags/merge", {"source": "Tech", "into": "Sport"}),
                       ("/admin/projects/news/tags/retire", {"name": "Tech"})):
        assert client.post(path, data=data).status_code == 403  # no CSRF token
