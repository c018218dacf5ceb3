"""Fault tests on PostgreSQL (issue 7): real `labelloop serve --workers 2` and
`labelloop orchestrate` processes under the load of 16 simulated labellers, killed with SIGKILL
and restarted.

1. The orchestrator is killed twice in the middle of a round and restarted: the labellers see
   no error, no item is ever held by two labellers at once, every acknowledged label is in the
   database, each interrupted round is recovered (marked failed; the version serving before it
   keeps serving) and a new round completes after the restarts.
2. The web server (every process of it, as a container kill would) is killed mid-load and
   restarted: every acknowledged label survives, and the leases that labellers who never come
   back held through the dead server expire (project lease 5 s) and their items are served to
   the others.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from deploy_helpers import (
    Labeller,
    bad_answers,
    free_port,
    join_labellers,
    make_team,
    missing_acks,
    overlapping_leases,
    run_labellers,
    start_orchestrator,
    start_server,
    wait_for,
)
from sqlalchemy import Engine, select

from labelloop.store import reading
from labelloop.store.schema import annotations, assignments, model_runs, projects

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]

LOAD_SECONDS = 30


def runs(engine: Engine, project_id: int) -> dict[int, tuple[str, str | None]]:
    """run id -> (status, error)"""
    with reading(engine) as conn:
        rows = conn.execute(select(model_runs.c.id, model_runs.c.status, model_runs.c.error)
                            .where(model_runs.c.project_id == project_id)).all()
    return {r.id: (r.status, r.error) for r in rows}


def current_run_id(engine: Engine, project_id: int) -> int | None:
    with reading(engine) as conn:
        return conn.execute(select(projects.c.current_run_id).where(projects.c.id == project_id)).scalar_one()


def test_orchestrator_killed_twice_mid_round_under_load(engine, db_url, tmp_path):
    team = make_team(engine, n_items=20_000, n_labellers=16)
    pid = team.project.id
    server, url = start_server(db_url, tmp_path / "serve.log")
    models = tmp_path / "models"
    args = ("--interval", "0.5", "--min-new-labels", "30")
    orchestrators = [start_orchestrator(db_url, tmp_path / "orchestrate-1.log", models, *args)]
    stop = threading.Event()
    labellers = [Labeller(url, token, uid, stop) for token, uid in zip(team.tokens, team.user_ids, strict=True)]
    killed: list[tuple[int, int | None]] = []  # (the run in progress, the version serving then)
    started = time.monotonic()
    try:
        run_labellers(labellers)
        # a first version serves, so that the kills below strike while a previous version serves
        wait_for(lambda: current_run_id(engine, pid), timeout=120, what="a first complete round")
        for n in (2, 3):
            seen = set(runs(engine, pid))
            running = wait_for(
                lambda seen=seen: [i for i, (s, _) in runs(engine, pid).items() if s == "running" and i not in seen],
                timeout=120, every=0.05, what="a round in progress",
            )[0]
            serving = current_run_id(engine, pid)
            assert serving is not None and serving < running
            orchestrators[-1].kill()
            killed.append((running, serving))
            assert runs(engine, pid)[running][0] == "running"  # died mid-round: nothing switched
            assert current_run_id(engine, pid) == serving
            orchestrators.append(start_orchestrator(db_url, tmp_path / f"orchestrate-{n}.log", models, *args))
            # the restarted orchestrator recovers the interrupted run before anything else
            wait_for(lambda running=running: runs(engine, pid)[running][0] == "failed", timeout=60,
                     what=f"run {running} to be recovered")
            now_serving = current_run_id(engine, pid)
            assert now_serving == serving or now_serving > running  # the old version, or a newer one
        last_restart = max(runs(engine, pid))
        time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
        stop.set()
        join_labellers(labellers)
        # a round started after the second restart completes and serves
        completed = wait_for(
            lambda: [i for i, (s, _) in runs(engine, pid).items() if s == "complete" and i > last_restart],
            timeout=120, what="a complete round after the restarts",
        )
        wait_for(lambda: current_run_id(engine, pid) >= min(completed), timeout=10, what="the switch")
    finally:
        stop.set()
        for proc in orchestrators:
            proc.terminate()
        server.terminate()
        for proc in [*orchestrators, server]:
            try:
                proc.wait(60)
            finally:
                proc.kill()
    assert all(lb.errors == [] and lb.unanswered == 0 for lb in labellers), [lb.errors[:3] for lb in labellers]
    assert bad_answers(labellers, {200, 201, 204}) == []
    acked = sum(len(lb.acked) for lb in labellers)
    assert acked >= 16 * 10, acked  # every labeller really worked
    assert missing_acks(engine, pid, labellers) == []
    assert overlapping_leases(engine, pid) == []
    final = runs(engine, pid)
    for running, _serving in killed:
        assert final[running][0] == "failed" and "interrupted" in final[running][1]
    assert "running" not in {s for s, _ in final.values()}
    assert orchestrators[-1].proc.returncode == 0  # SIGTERM: a clean stop
    logs = [proc.output() for proc in orchestrators]
    assert all("marked interrupted run(s)" in log for log in logs[1:]) and "Traceback" not in "".join(logs)


def test_web_server_killed_mid_load_labels_survive_and_dead_leases_come_back(engine, db_url, tmp_path):
    team = make_team(engine, n_items=20_000, n_labellers=16, settings={"lease_seconds": 5})
    pid = team.project.id
    port = free_port()
    server, url = start_server(db_url, tmp_path / "serve-1.log", port=port)
    stop, gone = threading.Event(), threading.Event()
    pairs = list(zip(team.tokens, team.user_ids, strict=True))
    stayers = [Labeller(url, token, uid, stop) for token, uid in pairs[:8]]
    leavers = [Labeller(url, token, uid, gone, until_down=True) for token, uid in pairs[8:]]  # never come back
    everyone = stayers + leavers
    servers = [server]
    try:
        run_labellers(everyone)
        wait_for(lambda: sum(len(lb.acked) for lb in everyone) >= 300, timeout=120, what="300 labels")
        server.kill()  # SIGKILL to the parent and both workers
        join_labellers(leavers)
        killed_at = datetime.now(UTC)
        with reading(engine) as conn:
            orphans = dict(conn.execute(
                select(assignments.c.item_id, assignments.c.user_id).where(
                    assignments.c.project_id == pid, assignments.c.state == "leased",
                    assignments.c.user_id.in_([lb.user_id for lb in leavers]), assignments.c.expires_at > killed_at,
                )
            ).all())
        assert orphans, "the labellers who left held no lease when the server died"
        server, _ = start_server(db_url, tmp_path / "serve-2.log", port=port)
        servers.append(server)
        stayer_ids = [lb.user_id for lb in stayers]

        def orphans_labelled_by_stayers() -> bool:
            with reading(engine) as conn:
                done = set(conn.execute(select(annotations.c.item_id).where(
                    annotations.c.item_id.in_(list(orphans)), annotations.c.user_id.in_(stayer_ids))).scalars())
            return done == set(orphans)

        wait_for(orphans_labelled_by_stayers, timeout=120, every=0.5, what="the dead leases' items to come back")
        stop.set()
        join_labellers(stayers)
    finally:
        stop.set()
        gone.set()
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(60)
            finally:
                proc.kill()
    assert missing_acks(engine, pid, everyone) == []
    assert overlapping_leases(engine, pid) == []
    # the answers that came (those in flight at the kill got none) are complete and valid
    assert bad_answers(everyone, {200, 201, 204, 409}) == []
    with reading(engine) as conn:
        stale = conn.execute(select(assignments.c.item_id, assignments.c.state, assignments.c.expires_at).where(
            assignments.c.item_id.in_(list(orphans)), assignments.c.user_id.in_(list(orphans.values())))).all()
    assert {r.item_id for r in stale} == set(orphans)
    assert all(r.state == "leased" and r.expires_at < datetime.now(UTC) for r in stale)  # expired, never labelled
    assert sum(len(lb.acked) for lb in stayers) > sum(len(lb.acked) for lb in leavers) >= 1
