"""The admin pages of a multi-label project through a real in-process HTTP client, on both
databases: the review queue shows per-tag conflicts (which tags tie, each labeller's set) and
decides a whole set by its form and by the API; the tags page renames, merges and retires on
sets; the dashboard, the overview and the charts show per-tag counts."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select, update

from labelloop.store import projects as store_projects
from labelloop.store import reading, writing
from labelloop.store.schema import audit_log, items

PASSWORD = "correct horse"  # as in conftest
ML = "/api/projects/debtags"
TAGS = ["Games", "Science", "Audio", "Video"]


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def label_sets(client, world, name: str, sets: list[list[str]]) -> list[int]:
    done = []
    for labels in sets:
        item = client.post(f"{ML}/next", headers=world.auth(name)).json()["item"]
        response = client.post(f"{ML}/items/{item['id']}/labels", json={"labels": labels}, headers=world.auth(name))
        assert response.status_code == 201, response.text
        done.append(item["id"])
    return done


@pytest.fixture
def ml(client, world, engine, tools):
    """Project debtags (multi-label, 4 items wanting two labels each): ann and bob label all
    four; they agree on the first and the last, and on the second and third tie on some tags."""
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="debtags", labels=TAGS, seed=5, multi_label=True,
                                                settings={"audit_fraction": 0.0})
    tools.add_items(engine, project, 4, target=2, prefix="d")
    tools.add_members(engine, project, ["ann", "bob"])
    order = label_sets(client, world, "ann", [["Games"], ["Games", "Audio"], ["Science", "Video"], []])
    assert label_sets(client, world, "bob", [["Games"], ["Games"], ["Video", "Audio"], []]) == order
    return order


def state(engine, item_id: int):
    with reading(engine) as conn:
        return conn.execute(select(items.c.label_mask, items.c.adjudicated_mask, items.c.label_source)
                            .where(items.c.id == item_id)).one()


def test_review_shows_per_tag_ties_and_decides_a_whole_set(client, world, engine, ml):
    assert state(engine, ml[0]) == (0b0001, None, "human")
    assert state(engine, ml[1]).label_source == "conflict"
    csrf = login(client, "boss")
    page = client.get("/admin/projects/debtags/review")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "2 items where the labellers' sets of tags differ (2 with a tie on some tag" in text
    first = page.text[page.text.index(f'id="item-{ml[1]}"'):page.text.index(f'id="item-{ml[2]}"')]
    assert "tie on 1 tag" in text_of(first) and "Tie on: Audio" in text_of(first)
    assert "ann Games Audio" in text_of(first) and "bob Games" in text_of(first)
    # the form: Games (both chose it) starts checked, Audio (a tie) unchecked and marked
    assert re.search(r'value="Games" checked', first) and not re.search(r'value="Audio" checked', first)
    assert 'class="set-choice tie voted"' in first and "1/2 · tie" in text_of(first)
    second = page.text[page.text.index(f'id="item-{ml[2]}"'):]
    assert "Tie on: Science Audio" in text_of(second) and "2/2" in text_of(second)

    refused = client.post(f"/admin/projects/debtags/review/{ml[1]}/set", data={"labels": ["Games"]})
    assert refused.status_code == 403  # no CSRF token
    unknown = client.post(f"/admin/projects/debtags/review/{ml[1]}/set", data={"labels": ["Nope"], "csrf_token": csrf})
    assert unknown.status_code == 400 and "unknown tag" in unknown.text
    done = client.post(f"/admin/projects/debtags/review/{ml[1]}/set",
                       data={"labels": ["Games", "Audio"], "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/projects/debtags/review?decided=")
    after = text_of(client.get(done.headers["location"]).text)
    assert "now has your set of tags" in after and "1 items where" in after
    assert state(engine, ml[1]) == (0b0101, 0b0101, "human")
    # nothing checked: none of these applies
    none = client.post(f"/admin/projects/debtags/review/{ml[2]}/set", data={"csrf_token": csrf},
                       follow_redirects=False)
    assert none.status_code == 303
    assert state(engine, ml[2]) == (0, 0, "human")
    assert "Nothing to review: no item has sets that disagree" in text_of(client.get("/admin/projects/debtags/review").text)
    # the single-label form does not take a set, nor the set form a single-label project's item
    wrong = client.post(f"/admin/projects/debtags/review/{ml[0]}", data={"label": "Games", "csrf_token": csrf})
    assert wrong.status_code == 400 and "multi-label" in wrong.text
    with reading(engine) as conn:
        details = conn.execute(select(audit_log.c.details).where(audit_log.c.action == "item.adjudicate")
                               .order_by(audit_log.c.id)).scalars().all()
    assert [d["tags"] for d in details] == [["Games", "Audio"], []]
    with reading(engine) as conn:
        ext = dict(conn.execute(select(items.c.id, items.c.external_id)).all())
    tags_page = text_of(client.get("/admin/projects/debtags/tags").text)
    assert f"decided item {ext[ml[1]]}: “Games, Audio”" in tags_page
    assert f"decided item {ext[ml[2]]}: “none of these”" in tags_page


def test_adjudicate_a_set_through_the_api(client, world, engine, ml):
    url = f"{ML}/items/{ml[1]}/adjudicate"
    assert client.post(url, json={"labels": ["Games"]}, headers=world.auth("ann")).status_code == 403
    wrong = client.post(url, json={"label": "Games"}, headers=world.auth("boss"))
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == "project 'debtags' is multi-label: send {\"labels\": [...]} (an empty list: none applies)"
    unknown = client.post(url, json={"labels": ["Games", "Nope"]}, headers=world.auth("boss"))
    assert unknown.status_code == 422 and "unknown tag 'Nope'" in unknown.json()["detail"]
    done = client.post(url, json={"labels": ["Video", "Games"]}, headers=world.auth("boss"))
    assert done.status_code == 200
    assert done.json() == {"item_id": ml[1], "external_id": done.json()["external_id"], "labels": ["Games", "Video"],
                           "label_source": "human"}
    assert state(engine, ml[1]) == (0b1001, 0b1001, "human")
    stats = client.get(f"{ML}/stats", headers=world.auth("boss")).json()
    assert stats["conflicts"] == 1 and stats["labelled"] == 3
    assert stats["per_tag"] == {"Games": 2, "Science": 0, "Audio": 0, "Video": 1}


def test_tags_page_renames_merges_and_retires_on_sets(client, world, engine, ml):
    csrf = login(client, "boss")
    page = client.get("/admin/projects/debtags/tags")
    assert page.status_code == 200
    renamed = client.post("/admin/projects/debtags/tags/rename", data={"csrf_token": csrf, "old": "Games", "new": "Play"},
                          follow_redirects=False)
    assert renamed.status_code == 303
    assert client.get(f"{ML}/stats").json()["per_tag"]["Play"] == 1  # the one final set with it
    merged = client.post("/admin/projects/debtags/tags/merge",
                         data={"csrf_token": csrf, "source": "Audio", "into": "Video"}, follow_redirects=False)
    assert merged.status_code == 303
    assert "merged “Audio” into “Video”" in text_of(client.get(merged.headers["location"]).text)
    # ann {Science, Video} and bob {Video, Audio->Video}: they now tie on Science only
    assert state(engine, ml[2]).label_source == "conflict"
    assert state(engine, ml[1]).label_source == "conflict"  # Audio's tie became one on Video
    retired = client.post("/admin/projects/debtags/tags/retire", data={"csrf_token": csrf, "name": "Science"},
                          follow_redirects=False)
    assert retired.status_code == 303
    assert state(engine, ml[2]) == (0b1000, None, "human")  # the tie on Science no longer counts
    stats = client.get(f"{ML}/stats").json()
    assert stats["per_tag"] == {"Play": 1, "Video": 1}
    review = text_of(client.get("/admin/projects/debtags/review").text)
    assert "Tie on: Video" in review and "Science" not in review


def test_dashboard_overview_and_charts_of_a_multi_label_project(client, world, engine, ml):
    login(client, "boss")
    for path in ("/admin", "/admin/projects/debtags/dashboard", "/admin/projects/debtags/charts/balance.png",
                 "/admin/projects/debtags/dashboard/progress.png", "/admin/projects/debtags/dashboard/quality.png",
                 "/admin/projects/debtags/dashboard/confusion.png", "/admin/projects/debtags/browse",
                 f"/admin/projects/debtags/items/{ml[1]}", "/projects", "/projects/debtags/label"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    overview = client.get("/admin").text
    card = overview[overview.index('id="p-2"'):]
    assert "2 labelled (50.0%)" in text_of(card)
    dashboard = text_of(client.get("/admin/projects/debtags/dashboard").text)
    assert "2 of 4 items labelled" in dashboard and "items per tag of their final set" in dashboard


def test_dashboard_shows_a_multi_label_run(client, world, engine, ml):
    """A multi-label run's metrics (as the orchestrator writes them: ``multi_label``, set figures
    in ``cv`` and ``audit``) on the dashboard: micro-F1 and exact sets, not an accuracy."""
    from sqlalchemy import insert

    from labelloop.store.schema import model_runs, projects, utcnow

    figures = {"micro_f1": 0.712, "macro_f1": 0.55, "subset_accuracy": 0.4, "hamming_loss": 0.125}
    metrics = {"state": "model", "multi_label": True, "tags": TAGS, "thresholds": {t: 0.4 for t in TAGS},
               "cv": {"folds": 5, "accuracy": 0.4, **figures},
               "audit": {"labelled": 60, "correct": 24, "accuracy": 0.4, "ci95": [0.285, 0.527], **figures,
                         "micro_f1": 0.69}}
    with writing(engine) as conn:
        pid = store_projects.get_project(conn, name="debtags").id
        run_id = conn.execute(insert(model_runs).values(
            project_id=pid, version=1, status="complete", model_name="tfidf-logreg", strategy="margin",
            labels_used=8, metrics=metrics, created_at=utcnow())).inserted_primary_key[0]
        conn.execute(update(projects).where(projects.c.id == pid).values(current_run_id=run_id))
    login(client, "boss")
    text = text_of(client.get("/admin/projects/debtags/dashboard").text)
    assert ("Cross-validated on the labelled items (biased) 0.712 micro-F1; macro-F1 0.550, sets exactly right "
            "40.0%, Hamming loss 0.125") in text
    assert "of tag sets exactly right; 95 % interval 28.5% – 52.7%, from 60 random audit items (24 right); " \
           "micro-F1 0.690" in text
    for chart in ("quality", "confusion", "progress"):
        response = client.get(f"/admin/projects/debtags/dashboard/{chart}.png")
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), chart
    # a single-label project's dashboard keeps its words
    single = text_of(client.get("/admin/projects/news/dashboard").text)
    assert "of label pairs agree" in single and "MASI" not in single and "micro-F1" not in single
