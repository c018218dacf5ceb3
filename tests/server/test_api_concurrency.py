"""Many labellers at once against a real Uvicorn server on a loopback port."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store.schema import annotations, assignments, items


N_ITEMS = 2000
N_CLIENTS = 32


@pytest.mark.slow
def test_32_labellers_label_2000_items_exactly_once(engine, settings, tools):
    TAGS = tools.TAGS
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="big", labels=TAGS, seed=3)
    tools.add_items(engine, project, N_ITEMS)
    tokens, ids = tools.make_users(engine, [(f"l{i:02d}", "labeller") for i in range(N_CLIENTS)])
    tools.add_members(engine, project, list(tokens))
    served: dict[str, list[int]] = {name: [] for name in tokens}
    errors: list[str] = []
    start = threading.Barrier(N_CLIENTS)

    def labeller(name: str, base: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            start.wait()
            while True:
                response = http.post("/api/projects/big/next")
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    errors.append(f"{name} next: {response.status_code} {response.text}")
                    return
                item_id = response.json()["item"]["id"]
                served[name].append(item_id)
                tag = TAGS[item_id % len(TAGS)]
                labelled = http.post(f"/api/projects/big/items/{item_id}/labels", json={"label": tag})
                if labelled.status_code != 201:
                    errors.append(f"{name} label {item_id}: {labelled.status_code} {labelled.text}")
                    return

    with tools.LiveServer(settings) as server:
        threads = [threading.Thread(target=labeller, args=(name, server.url)) for name in tokens]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - began
    assert not errors, errors[:5]
    assert not any(thread.is_alive() for thread in threads)

    all_served = [item for items_ in served.values() for item in items_]
    assert len(all_served) == N_ITEMS and len(set(all_served)) == N_ITEMS  # nobody got an item twice
    assert sum(1 for items_ in served.values() if items_) > N_CLIENTS // 2  # the work was shared
    with reading(engine) as conn:
        per_item = Counter(conn.execute(select(annotations.c.item_id)).scalars())
        history = conn.execute(select(assignments.c.item_id, assignments.c.user_id, assignments.c.state)).all()
        state = conn.execute(select(items.c.id, items.c.n_labels, items.c.label_tag_id)).all()
    assert len(per_item) == N_ITEMS and set(per_item.values()) == {1}  # every item labelled exactly once
    # one assignment per item: no item was ever handed to a second person
    assert Counter(row.item_id for row in history) == Counter({row.id: 1 for row in state})
    assert {row.state for row in history} == {"labelled"}
    owner = {row.item_id: row.user_id for row in history}
    for name, got in served.items():
        assert all(owner[item] == ids[name] for item in got)
    assert all(row.n_labels == 1 and row.label_tag_id is not None for row in state)
    print(f"{N_ITEMS} labels by {N_CLIENTS} clients in {elapsed:.1f} s")
