"""The model-driven steered queues over HTTP (issue 13): ``likely``, ``unsure``, ``similar`` and
``search`` after a model round, on a real BBC project (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from labelloop.orchestrator import run_round
from labelloop.server import create_app
from labelloop.store import reading, writing
from labelloop.store import steerlists
from labelloop.store import users as store_users
from labelloop.store.schema import assignments, project_members, score_ranks


def labeller(bbc, name):
    user_id = bbc.user(name)
    with writing(bbc.engine) as conn:
        conn.execute(insert(project_members).values(project_id=bbc.project().id, user_id=user_id,
                                                    created_at=datetime.now(UTC)))
        return {"Authorization": f"Bearer {store_users.create_token(conn, user_id=user_id)}"}


def serve_all(client, auth, query, truth, limit=200):
    got = []
    for _ in range(limit):
        answer = client.post(f"/api/projects/bbc/next?{query}", headers=auth)
        if answer.status_code == 204:
            return got
        assert answer.status_code == 200, answer.text
        item_id = answer.json()["item"]["id"]
        got.append(item_id)
        assert client.post(f"/api/projects/bbc/items/{item_id}/labels", json={"label": truth[item_id]},
                           headers=auth).status_code == 201
    return got


def test_likely_unsure_similar_and_search_queues_follow_their_lists(bbc):
    run_round(bbc.engine, bbc.settings, project="bbc")
    project = bbc.project()
    auth = labeller(bbc, "ann")
    with reading(bbc.engine) as conn:
        likely = steerlists.open_only(conn, project_id=project.id,
                                      ids=steerlists.likely_ids(conn, project_id=project.id, tag="sports", limit=500))
        unsure = steerlists.unsure_ids(conn, project_id=project.id, tag="tech", limit=500)
        ranks = dict(conn.execute(select(score_ranks.c.item_id, score_ranks.c.rank)
                                  .where(score_ranks.c.run_id == project.current_run_id)).all())
    assert likely
    with TestClient(create_app(bbc.settings), base_url="http://127.0.0.1") as client:
        first = client.post("/api/projects/bbc/next?queue=likely&tag=sports", headers=auth).json()
        assert first["queue"] == {"name": "likely", "label": "likely sports"}
        assert first["item"]["id"] == likely[0]
        got = [first["item"]["id"]]
        assert client.post(f"/api/projects/bbc/items/{got[0]}/labels", json={"label": bbc.truth[got[0]]},
                           headers=auth).status_code == 201
        more = [client.post("/api/projects/bbc/next?queue=likely&tag=sports", headers=auth).json()["item"]["id"]]
        assert more == [likely[1]]  # the next of the list
        # Most likely sports articles really are mostly sports.
        assert sum(bbc.truth[i] == "sports" for i in likely[:10]) >= 7
        # unsure: the first open item of the list (the lease held on a likely item is given back).
        nxt = client.post("/api/projects/bbc/next?queue=unsure&tag=tech", headers=auth).json()["item"]["id"]
        open_unsure = [i for i in unsure if i != got[0]]
        assert nxt == open_unsure[0]
        # similar to an item: one of its neighbours, never the item itself.
        with reading(bbc.engine) as conn:
            neighbours = steerlists.similar_ids(conn, project_id=project.id, item_id=got[0], limit=50)
        near = client.post(f"/api/projects/bbc/next?queue=similar&item={got[0]}", headers=auth)
        assert near.status_code == 200 and near.json()["item"]["id"] in neighbours[:5]
        assert near.json()["item"]["id"] != got[0]
        # search with a model: matches in the serving order (most informative first).
        served = serve_all(client, auth, "queue=search&q=film", bbc.truth, limit=5)
        assert len(served) == 5
        assert [ranks[i] for i in served] == sorted(ranks[i] for i in served)
    with reading(bbc.engine) as conn:
        flags = conn.execute(select(assignments.c.steered, assignments.c.is_audit)).all()
    assert flags and all(s and not a for s, a in flags)
