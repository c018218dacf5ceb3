"""`labelloop status` shows the agreement between labellers (both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from labelloop.cli import main
from labelloop.store import labelling
from labelloop.store import open_engine, writing
from labelloop.store import projects as store_projects
from labelloop.store import queue
from labelloop.store import users as store_users
from labelloop.store.schema import items


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_status_json_and_table_show_agreement(db_url: str, tmp_path: Path):
    assert run("init", "p", "--labels", "Yes,No", "--db", db_url).exit_code == 0
    csv = tmp_path / "p.csv"
    csv.write_text("id,text\n" + "".join(f"x{i},text {i}\n" for i in range(4)), encoding="utf-8")
    assert run("import", "p", csv, "--id-column", "id", "--text-columns", "text", "--db", db_url).exit_code == 0
    empty = json.loads(run("status", "p", "--json", "--db", db_url).stdout)["agreement"]
    assert empty == {"items_with_overlap": 0, "percent": None, "krippendorff_alpha": None, "cohen_kappa": {}}
    assert "agreement" not in run("status", "p", "--db", db_url).stdout

    engine = open_engine(db_url)
    with writing(engine) as conn:
        conn.execute(update(items).values(target_labels=2))  # every item wants two labellers
        users = [store_users.create_user(conn, name=n, role="labeller", password="a long password").id
                 for n in ("ann", "bob")]
    # ann: Yes Yes No No; bob: Yes No No No (in each one's queue order)
    given: dict[int, dict[str, str]] = {}
    for user, name, answers in ((users[0], "ann", "YYNN"), (users[1], "bob", None)):
        for k in range(4):
            with writing(engine) as conn:
                proj = store_projects.get_project(conn, name="p")
                lease = queue.next_item(conn, project=proj, user_id=user, lease_seconds=600)
                if answers is not None:
                    tag = "Yes" if answers[k] == "Y" else "No"
                else:  # bob agrees with ann on every item but her first "Yes"
                    first_yes = min(i for i, t in given.items() if t["ann"] == "Yes")
                    tag = "No" if lease.item_id == first_yes else given[lease.item_id]["ann"]
                labelling.label_item(conn, project=proj, user_id=user, item_id=lease.item_id, tag=tag)
                given.setdefault(lease.item_id, {})[name] = tag
    engine.dispose()

    agreement = json.loads(run("status", "p", "--json", "--db", db_url).stdout)["agreement"]
    assert agreement["items_with_overlap"] == 4
    assert agreement["percent"] == pytest.approx(3 / 4)
    # ann Yes Yes No No vs bob No Yes No No: p_o = 3/4, p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2
    assert agreement["cohen_kappa"] == {"ann / bob": pytest.approx(0.5)}
    assert agreement["krippendorff_alpha"] == pytest.approx(1 - (2 / 8) / (2 * 3 * 5 / (8 * 7)), rel=1e-6)
    table = run("status", "p", "--db", db_url).stdout
    assert "agreement: 4 items labelled by several people, 75.0% of label pairs agree" in table


def test_status_shows_no_audit_accuracy_from_too_few_audit_items(db_url: str):
    """5 of 5 audit items right is no "100.0 % accurate": under 30, status says too few."""
    from sqlalchemy import insert

    from labelloop.store.schema import model_runs, projects, utcnow

    assert run("init", "p", "--labels", "Yes,No", "--db", db_url).exit_code == 0
    engine = open_engine(db_url)
    audits = ({"labelled": 5, "correct": 5, "accuracy": 1.0, "ci95": [0.566, 1.0]},
              {"labelled": 40, "correct": 36, "accuracy": 0.9, "ci95": [0.769, 0.96]})
    shown = []
    for version, audit in enumerate(audits, start=1):
        with writing(engine) as conn:
            run_id = conn.execute(insert(model_runs).values(
                project_id=store_projects.get_project(conn, name="p").id, version=version, status="complete",
                model_name="tfidf-logreg", strategy="margin", labels_used=40, created_at=utcnow(),
                metrics={"state": "model", "cv": {"folds": 3, "accuracy": 0.8, "macro_f1": 0.7}, "audit": audit,
                         "advice": {"stop": False, "message": "keep labelling: more audit items"}},
            )).inserted_primary_key[0]
            conn.execute(update(projects).values(current_run_id=run_id))
        shown.append(run("status", "p", "--db", db_url).stdout)
    engine.dispose()
    assert "audit estimate: none yet, too few audit items (5 of 30)" in shown[0]
    assert "100.0%" not in shown[0]
    assert "audit estimate: 90.0% accurate (95 % CI 76.9%-96.0%) on 40 random audit items" in shown[1]
    status = json.loads(run("status", "p", "--json", "--db", db_url).stdout)
    assert status["audit"] == {"labelled": 40, "accuracy": 0.9, "ci95": [0.769, 0.96]}  # the raw figures for scripts
