"""PostgreSQL: writing a run's scores refreshes the planner's statistics of the score tables, so
the queue's candidate query walks the serving order's key at once (autovacuum may be late, or off)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from labelloop.store import writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store.scores import write_scores


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_written_scores_are_known_to_the_planner(engine):
    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
        conn.execute(text("INSERT INTO items (project_id, external_id, display, text, rand, created_at, updated_at) "
                          "SELECT :p, 'e' || g, '{}', 't', g, now(), now() FROM generate_series(1, 5000) g"),
                     {"p": project.id})
        ids = np.array(conn.execute(text("SELECT id FROM items ORDER BY id")).scalars().all(), dtype=np.int64)
        run = store_runs.start_run(conn, project_id=project.id, model_name="m", strategy="s", labels_used=0)
        conn.execute(text("ANALYZE item_scores, score_ranks"))  # empty tables, as at a first round
    tuples = "SELECT reltuples FROM pg_class WHERE oid = :t ::regclass"
    with engine.connect() as conn:
        for table in ("item_scores", "score_ranks"):
            assert conn.execute(text(tuples), {"t": table}).scalar() <= 0
    write_scores(engine, run_id=run.id, item_ids=ids, priorities=np.linspace(1, 0, len(ids)))
    with engine.connect() as conn:
        for table in ("item_scores", "score_ranks"):
            assert conn.execute(text(tuples), {"t": table}).scalar() == 5000
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT item_id FROM score_ranks WHERE run_id = :r ORDER BY rank LIMIT 10"),
            {"r": run.id}).scalars())
    assert "pk_score_ranks" in plan, plan
