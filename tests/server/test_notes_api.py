"""Comments, flags and skip reasons over HTTP (issue 14), on both databases: the label and skip
fields on the bearer fast path and the cookie route alike, their validation, membership, undo,
and the admins' notes API (labellers cannot resolve)."""

from __future__ import annotations

import re

from sqlalchemy import select

from labelloop.store import reading
from labelloop.store.schema import annotations, assignments, item_notes

API = "/api/projects/news"


def _log_in(client, name: str) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": name, "password": "correct horse", "csrf_token": csrf, "next": "/"})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def notes_rows(engine):
    with reading(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(item_notes.c.item_id, item_notes.c.user_id, item_notes.c.kind, item_notes.c.reason,
                   item_notes.c.text, item_notes.c.resolved_by).order_by(item_notes.c.id))]


def take(client, headers) -> int:
    response = client.post(f"{API}/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["item"]["id"]


def test_label_comment_and_flag_on_both_paths(client, world, engine):
    csrf = _log_in(client, "bob")
    paths = {"bearer": world.auth("ann"), "session": {"X-CSRF-Token": csrf}}
    for via, headers in paths.items():
        item = take(client, headers)
        response = client.post(f"{API}/items/{item}/labels", headers=headers,
                               json={"label": "Sport", "comment": f"  via {via} <b>x</b> ", "unsure": True})
        assert response.status_code == 201, response.text
        assert response.json() == {"item_id": item, "label": "Sport", "comment": f"via {via} <b>x</b>",
                                   "unsure": True}
    item = take(client, world.auth("ann"))
    plain = client.post(f"{API}/items/{item}/labels", headers=world.auth("ann"), json={"label": "Tech"})
    assert plain.json() == {"item_id": item, "label": "Tech"}  # nothing added to a plain answer
    rows = notes_rows(engine)
    assert [(r[1], r[2], r[4]) for r in rows] == [(world.ids["ann"], "unsure", "via bearer <b>x</b>"),
                                                  (world.ids["bob"], "unsure", "via session <b>x</b>")]
    with reading(engine) as conn:
        assert conn.execute(select(annotations.c.item_id).where(annotations.c.item_id == rows[0][0])).all()


def test_bad_fields_are_422_on_both_paths_and_record_nothing(client, world, engine):
    csrf = _log_in(client, "bob")
    for headers in (world.auth("ann"), {"X-CSRF-Token": csrf}):
        item = take(client, headers)
        for body, words in [
            ({"label": "Sport", "comment": "x" * 2001}, "at most 2000 characters"),
            ({"label": "Sport", "unsure": "yes"}, "valid boolean"),
            ({"label": "Sport", "comment": 5}, "valid string"),
            ({"label": "Sport", "comment": "a\u0000b"}, "NUL character"),
            ({"label": "Sport", "mood": "meh"}, "Extra inputs"),
        ]:
            response = client.post(f"{API}/items/{item}/labels", headers=headers, json=body)
            assert response.status_code == 422, (body, response.text)
            assert words in response.text, (body, response.text)
        bad_skip = client.post(f"{API}/items/{item}/skip", headers=headers, json={"reason": "bored"})
        assert bad_skip.status_code == 422
        assert "'unclear', 'off-topic', 'needs-context' or 'other'" in bad_skip.text
        # still leased, unlabelled, unskipped: the refusals wrote nothing
        assert client.post(f"{API}/items/{item}/labels", headers=headers, json={"label": "Sport"}).status_code == 201
    assert notes_rows(engine) == []


def test_skip_with_a_reason_and_plain_skip(client, world, engine):
    first = take(client, world.auth("ann"))
    assert client.post(f"{API}/items/{first}/skip", headers=world.auth("ann"),
                       json={"reason": "needs-context", "comment": "which match?"}).status_code == 204
    second = take(client, world.auth("ann"))
    assert second != first
    assert client.post(f"{API}/items/{second}/skip", headers=world.auth("ann")).status_code == 204  # no body
    third = take(client, world.auth("ann"))
    assert client.post(f"{API}/items/{third}/skip", headers=world.auth("ann"), json={}).status_code == 204
    assert notes_rows(engine) == [(first, world.ids["ann"], "skip", "needs-context", "which match?", None)]
    with reading(engine) as conn:
        skipped = conn.execute(select(assignments.c.item_id).where(assignments.c.state == "skipped")
                               .order_by(assignments.c.item_id)).scalars().all()
    assert skipped == sorted([first, second, third])


def test_a_refused_label_writes_no_note_and_non_members_get_404(client, world, engine, tools):
    item = take(client, world.auth("ann"))
    # bob holds no lease on ann's item: 409, and no note
    refused = client.post(f"{API}/items/{item}/labels", headers=world.auth("bob"),
                          json={"label": "Sport", "comment": "sneaky"})
    assert refused.status_code == 409
    tokens, _ids = tools.make_users(engine, [("eve", "labeller")])
    eve = {"Authorization": f"Bearer {tokens['eve']}"}
    for path, body in ((f"items/{item}/labels", {"label": "Sport", "comment": "hi"}),
                       (f"items/{item}/skip", {"reason": "other"}), ("notes", None)):
        response = client.request("GET" if body is None else "POST", f"{API}/{path}", headers=eve, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"].startswith("no project named 'news' is open to you")
    assert notes_rows(engine) == []


def test_undo_takes_the_notes_of_the_undone_label_along(client, world, engine):
    item = take(client, world.auth("ann"))
    client.post(f"{API}/items/{item}/labels", headers=world.auth("ann"), json={"label": "Sport", "unsure": True})
    assert len(notes_rows(engine)) == 1
    undone = client.post(f"{API}/undo", headers=world.auth("ann"))
    assert undone.status_code == 200 and undone.json()["item"]["id"] == item
    assert notes_rows(engine) == []
    client.post(f"{API}/items/{item}/labels", headers=world.auth("ann"), json={"label": "Tech", "comment": "sure now"})
    assert [(r[2], r[4]) for r in notes_rows(engine)] == [("comment", "sure now")]


def test_admins_list_and_resolve_notes_labellers_cannot(client, world, engine):
    item = take(client, world.auth("ann"))
    client.post(f"{API}/items/{item}/labels", headers=world.auth("ann"),
                json={"label": "Sport", "comment": "is this sport?", "unsure": True})
    listed = client.get(f"{API}/notes", headers=world.auth("boss"))
    assert listed.status_code == 200
    [note] = listed.json()
    assert {k: note[k] for k in ("item_id", "user", "kind", "reason", "text", "resolved_by")} == {
        "item_id": item, "user": "ann", "kind": "unsure", "reason": None, "text": "is this sport?",
        "resolved_by": None}
    for who in ("ann", "bob"):
        assert client.get(f"{API}/notes", headers=world.auth(who)).status_code == 403
        denied = client.post(f"{API}/notes/{note['id']}/resolve", headers=world.auth(who))
        assert denied.status_code == 403, denied.text
    assert notes_rows(engine)[0][5] is None
    done = client.post(f"{API}/notes/{note['id']}/resolve", headers=world.auth("boss"))
    assert done.status_code == 200 and done.json() == {"id": note["id"], "resolved": True}
    again = client.post(f"{API}/notes/{note['id']}/resolve", headers=world.auth("boss"))
    assert again.json() == {"id": note["id"], "resolved": False}
    assert client.post(f"{API}/notes/999999/resolve", headers=world.auth("boss")).status_code == 404
    assert client.get(f"{API}/notes", headers=world.auth("boss")).json() == []
    resolved = client.get(f"{API}/notes?state=resolved", headers=world.auth("boss")).json()
    assert resolved[0]["resolved_by"] == "boss"
    assert client.get(f"{API}/notes?state=nope", headers=world.auth("boss")).status_code == 422


def test_notes_on_gold_items_keep_the_gold_answer_apart(client, world, engine):
    """On a gold item a label with a comment is still a gold answer, never a label; the note is
    kept; a skip with a reason is a gold skip; undo forgets the note with the answer."""
    from sqlalchemy import func

    from labelloop.store import gold as store_gold
    from labelloop.store import projects as store_projects
    from labelloop.store import writing
    from labelloop.store.configure import configure_project
    from labelloop.store.schema import gold_answers, items

    with writing(engine) as conn:
        project = store_projects.get_project(conn, name="news")
        ids = list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)).scalars())
        store_gold.mark_gold(conn, project=project, values=dict.fromkeys(ids, project.tag_id("Tech")), user_id=None)
        configure_project(conn, project=project, values={"gold_fraction": 0.5})

    def take_gold() -> int:  # every item is gold: a draw that is not a gold draw finds nothing (204)
        for _ in range(60):
            response = client.post(f"{API}/next", headers=world.auth("ann"))
            if response.status_code == 200:
                return response.json()["item"]["id"]
        raise AssertionError("no gold item served in 60 draws")

    first = take_gold()
    answer = client.post(f"{API}/items/{first}/labels", headers=world.auth("ann"),
                         json={"label": "Sport", "comment": "looks like tech", "unsure": True})
    assert answer.status_code == 201, answer.text
    second = take_gold()
    assert client.post(f"{API}/items/{second}/skip", headers=world.auth("ann"),
                       json={"reason": "unclear"}).status_code == 204
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(annotations)).scalar_one() == 0  # never a label
        assert conn.execute(select(func.count()).select_from(gold_answers)).scalar_one() >= 1
    assert [(r[0], r[2], r[3], r[4]) for r in notes_rows(engine)] == [
        (first, "unsure", None, "looks like tech"), (second, "skip", "unclear", None)]
    assert client.post(f"{API}/undo", headers=world.auth("ann")).status_code == 200  # the skip
    assert [r[0] for r in notes_rows(engine)] == [first]
