"""Admin pages and their forms, through a real in-process HTTP client, on both databases."""

from __future__ import annotations

import re

from sqlalchemy import insert, select, update

from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import audit_log, model_runs, projects, utcnow

PASSWORD = "correct horse"  # as in conftest
API = "/api/projects/news"


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str, password: str = PASSWORD) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post(
        "/login", data={"username": name, "password": password, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/projects").text)


def label_all(client, csrf: str, tags: list[str]) -> None:
    for tag in tags:
        item = client.post(f"{API}/next", headers={"X-CSRF-Token": csrf}).json()["item"]
        response = client.post(f"{API}/items/{item['id']}/labels", json={"label": tag},
                               headers={"X-CSRF-Token": csrf})
        assert response.status_code == 201


ADMIN_GETS = ("/admin", "/admin/users", "/admin/projects/news/browse", "/admin/projects/news/tags",
              "/admin/projects/news/charts/balance.png", "/admin/projects/news/charts/activity.png",
              "/admin/projects/news/dashboard", "/admin/projects/news/review")


def test_labellers_get_a_403_page_on_every_admin_page(client, world):
    csrf = login(client, "ann")
    for path in ADMIN_GETS:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "text/html" in response.headers["content-type"]
        assert "Not allowed" in response.text and "admin account" in response.text
    for path in ("/admin/users", "/admin/projects/news/tags"):
        response = client.post(path, data={"csrf_token": csrf, "name": "x", "role": "admin"})
        assert response.status_code == 403
    with reading(client.app.state.engine) as conn:
        assert [u.name for u in store_users.list_users(conn)] == ["ann", "bob", "boss"]


def test_overview_counts_per_labeller_and_charts(client, world):
    label_all(client, login(client, "ann"), ["Sport", "Sport", "Tech"])
    client.cookies.clear()
    label_all(client, login(client, "bob"), ["Politics"])
    client.cookies.clear()
    login(client, "boss")
    with writing(client.app.state.engine) as conn:
        run_id = conn.execute(insert(model_runs).values(
            project_id=world.project.id, version=3, status="complete", model_name="tfidf-logreg", strategy="margin",
            metrics={"state": "model", "cv": {"folds": 5, "accuracy": 0.9, "macro_f1": 0.876}},
            created_at=utcnow())).inserted_primary_key[0]
        conn.execute(update(projects).where(projects.c.id == world.project.id).values(current_run_id=run_id))
    page = client.get("/admin")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "v3 · 0.88 serving model (macro-F1, cross-validated)" in text
    assert "4 labelled (80.0%)" in text
    assert "1 still need labels" in text
    assert "ann 3 3" in text and "bob 1 1" in text  # today, total
    assert 'src="/admin/projects/news/charts/balance.png"' in page.text
    chart = client.get("/admin/projects/news/charts/balance.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n") and len(chart.content) > 2000
    assert chart.headers["cache-control"].startswith("private, max-age=")
    again = client.get("/admin/projects/news/charts/balance.png", headers={"If-None-Match": chart.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # a new label changes the chart and so its ETag
    label_all(client, csrf_in(page.text), ["Tech"])
    changed = client.get("/admin/projects/news/charts/balance.png", headers={"If-None-Match": chart.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != chart.headers["etag"]
    activity = client.get("/admin/projects/news/charts/activity.png")
    assert activity.status_code == 200 and activity.content.startswith(b"\x89PNG")
    assert client.get("/admin/projects/nope/charts/balance.png").status_code == 404


def test_every_admin_form_refuses_a_missing_or_wrong_csrf_token(client, world, engine):
    login(client, "boss")
    ann = world.ids["ann"]
    forms = [
        ("/admin/users", {"name": "mallory", "role": "admin", "password": "password123"}),
        (f"/admin/users/{ann}/disable", {}),
        (f"/admin/users/{ann}/enable", {}),
        (f"/admin/users/{ann}/password", {}),
        (f"/admin/users/{ann}/tokens", {"label": "stolen"}),
        (f"/admin/users/{ann}/tokens/1/revoke", {}),
        ("/admin/projects/news/tags", {"name": "Evil"}),
        ("/admin/projects/news/tags/rename", {"old": "Sport", "new": "Evil"}),
        ("/admin/projects/news/tags/merge", {"source": "Sport", "into": "Tech"}),
        ("/admin/projects/news/tags/retire", {"name": "Sport"}),
        ("/admin/projects/news/review/1", {"label": "Sport"}),
    ]
    with reading(engine) as conn:
        tokens_before = store_users.list_tokens(conn, user_id=ann)
    for path, data in forms:
        for token in (None, "forged"):
            body = dict(data, **({"csrf_token": token} if token else {}))
            response = client.post(path, data=body, follow_redirects=False)
            assert response.status_code == 403, (path, token)
            assert "CSRF" in response.text
    with reading(engine) as conn:
        assert [u.name for u in store_users.list_users(conn)] == ["ann", "bob", "boss"]
        assert not store_users.get_user(conn, name="ann").disabled
        assert store_users.list_tokens(conn, user_id=ann) == tokens_before
        assert store_projects.get_project(conn, name="news").tag_names == ["Sport", "Politics", "Tech"]
        assert conn.execute(select(audit_log.c.id)).first() is None
    client.cookies.clear()
    login(client, "ann")  # her password is unchanged


def test_create_user_shows_the_generated_password_once(client, world):
    csrf = login(client, "boss")
    page = client.post("/admin/users", data={"csrf_token": csrf, "name": "carol", "role": "labeller"})
    assert page.status_code == 200
    password = re.search(r'<span class="secret" id="secret-value">([^<]+)</span>', page.text).group(1)
    assert len(password) >= 12
    assert password not in client.get("/admin/users").text  # shown once only
    duplicate = client.post("/admin/users", data={"csrf_token": csrf, "name": "carol", "role": "admin"})
    assert duplicate.status_code == 409 and "exists already" in duplicate.text
    bad_role = client.post("/admin/users", data={"csrf_token": csrf, "name": "dave", "role": "root"})
    assert bad_role.status_code == 400
    assert "unknown role" in bad_role.text
    short = client.post("/admin/users", data={"csrf_token": csrf, "name": "erin", "role": "admin", "password": "short"})
    assert short.status_code == 400 and "password too short: at least 10 characters" in short.text
    for weak, words in (("nine char", "password too short"), ("password123", "password too common: choose a longer "
                                                              "passphrase"), ("abcdefghijk", "password too easy")):
        refused = client.post("/admin/users", data={"csrf_token": csrf, "name": "erin", "role": "admin",
                                                    "password": weak})
        assert refused.status_code == 400 and words in refused.text, (weak, refused.status_code)
        assert 'value="erin"' in refused.text  # the form keeps the name, not the password
        assert weak not in refused.text.replace('value="erin"', "")
    client.cookies.clear()
    login(client, "carol", password)
    assert client.get("/api/me").json() == {"id": 4, "name": "carol", "role": "labeller"}


def test_disable_enable_and_reset_password(client, world):
    csrf = login(client, "boss")
    ann = world.ids["ann"]
    assert client.get(f"{API}/stats", headers=world.auth("ann")).status_code == 200
    done = client.post(f"/admin/users/{ann}/disable", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/users?done=disabled"
    assert client.get(f"{API}/stats", headers=world.auth("ann")).status_code == 401
    page = client.get("/admin/users?done=disabled")
    assert "Account disabled" in page.text and "badge off" in page.text
    own = client.post(f"/admin/users/{world.ids['boss']}/disable", data={"csrf_token": csrf})
    assert own.status_code == 400 and "your own account" in own.text
    client.post(f"/admin/users/{ann}/enable", data={"csrf_token": csrf})
    assert client.get(f"{API}/stats", headers=world.auth("ann")).status_code == 401  # revoked for good

    reset = client.post(f"/admin/users/{ann}/password", data={"csrf_token": csrf})
    assert reset.status_code == 200 and "Password for <strong>ann</strong>" in reset.text
    new_password = re.search(r'id="secret-value">([^<]+)<', reset.text).group(1)
    assert client.post("/admin/users/999/password", data={"csrf_token": csrf}).status_code == 404
    client.cookies.clear()
    old = client.post("/login", data={"username": "ann", "password": PASSWORD,
                                      "csrf_token": csrf_in(client.get("/login").text)})
    assert old.status_code == 401
    login(client, "ann", new_password)
    with reading(client.app.state.engine) as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions == ["user.disable", "user.enable", "user.password_reset"]


def test_api_tokens_are_shown_once_and_can_be_revoked(client, world, engine):
    csrf = login(client, "boss")
    bob = world.ids["bob"]
    page = client.post(f"/admin/users/{bob}/tokens", data={"csrf_token": csrf, "label": "laptop <b>"})
    token = re.search(r'id="secret-value">([^<]+)<', page.text).group(1)
    assert token.startswith("ll_")
    assert "laptop &lt;b&gt;" in page.text
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json()["name"] == "bob"
    with reading(engine) as conn:
        token_id = next(t["id"] for t in store_users.list_tokens(conn, user_id=bob) if t["name"] == "laptop <b>")
    wrong_owner = client.post(f"/admin/users/{world.ids['ann']}/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert wrong_owner.status_code == 404
    revoke = client.post(f"/admin/users/{bob}/tokens/{token_id}/revoke", data={"csrf_token": csrf},
                         follow_redirects=False)
    assert revoke.status_code == 303
    client.cookies.clear()
    assert client.get("/api/me", headers=headers).status_code == 401


def test_tags_add_and_rename(client, world, engine):
    label_all(client, login(client, "ann"), ["Sport", "Sport"])
    client.cookies.clear()
    csrf = login(client, "boss")
    done = client.post("/admin/projects/news/tags/rename", data={"csrf_token": csrf, "old": "Sport", "new": "Sports"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/projects/news/tags?done=tag-renamed"
    page = client.get(done.headers["location"])
    assert "Tag renamed" in page.text and "renamed “Sport” to “Sports”" in page.text
    stats = client.get(f"{API}/stats").json()
    assert stats["per_tag"] == {"Sports": 2, "Politics": 0, "Tech": 0}
    clash = client.post("/admin/projects/news/tags/rename", data={"csrf_token": csrf, "old": "Tech", "new": "Politics"})
    assert clash.status_code == 409 and "exists already" in clash.text
    added = client.post("/admin/projects/news/tags", data={"csrf_token": csrf, "name": "Health"}, follow_redirects=False)
    assert added.status_code == 303
    blank = client.post("/admin/projects/news/tags", data={"csrf_token": csrf, "name": " Health"})
    assert blank.status_code == 400 and "surrounding spaces" in blank.text
    with reading(engine) as conn:
        assert store_projects.get_project(conn, name="news").tag_names == ["Sports", "Politics", "Tech", "Health"]
    # the labelling page offers the new tag with its number key at once
    assert 'data-tag="Health" data-key="4"' in client.get("/projects/news/label").text


def test_data_browser_pages_through_every_item_once(client, world, engine, tools):
    tools.add_items(engine, world.project, 57, prefix="b")  # 62 items in all
    label_all(client, login(client, "ann"), ["Tech", "Tech", "Sport"])
    client.cookies.clear()
    login(client, "boss")
    seen, url, pages = [], "/admin/projects/news/browse?size=25", 0
    while url:
        page = client.get(url if url.startswith("/") else "/admin/projects/news/browse" + url)
        assert page.status_code == 200
        pages += 1
        seen += re.findall(r'<td class="mono small nowrap">([^<]+)<div class="muted">#(\d+)</div>', page.text)
        match = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = match.group(1).replace("&amp;", "&") if match else None
        if url:
            assert "after=" in url and "offset" not in url
    assert pages == 3
    ids = [int(i) for _, i in seen]
    assert len(ids) == 62 and ids == sorted(set(ids))
    tech = client.get("/admin/projects/news/browse", params={"tag": "Tech", "labeller": "ann"})
    assert len(re.findall(r'<td class="mono small nowrap">', tech.text)) == 2
    unlabelled = client.get("/admin/projects/news/browse", params={"labelled": "no", "ext": "b1", "size": 100})
    found = re.findall(r'<td class="mono small nowrap">([^<]+)<', unlabelled.text)
    assert found and all("b1" in f for f in found)
    bad = client.get("/admin/projects/news/browse", params={"sort": "priority", "after": "i5"})
    assert bad.status_code == 400 and "invalid page cursor" in bad.text
    assert client.get("/admin/projects/news/browse", params={"tag": "Nope"}).status_code == 400
