"""Team-quality figures from a real database (orchestrator/quality.py over store/quality.py),
the review queue and adjudication (store/review.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.io.export import export_rows, plan_export
from labelloop.orchestrator.quality import agreement_figures, agreement_report, status_summary
from labelloop.store import browse, reading, writing
from labelloop.store import scores as store_scores
from labelloop.store import projects as store_projects
from labelloop.store import quality as store_quality
from labelloop.store import review
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.items import rand_key
from labelloop.store.labels import refresh_items
from labelloop.store.runs import label_snapshot
from labelloop.store.schema import annotations, items, model_runs, projects

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

# The hand-computed fixture of tests/learn/test_agreement.py: i1 all A; i2 alice A, bob B;
# i3 alice B, bob B, carol A; i4 bob C, carol C; i5 alice alone.
FIXTURE = [
    ("i1", "alice", "A"), ("i1", "bob", "A"), ("i1", "carol", "A"),
    ("i2", "alice", "A"), ("i2", "bob", "B"),
    ("i3", "alice", "B"), ("i3", "bob", "B"), ("i3", "carol", "A"),
    ("i4", "bob", "C"), ("i4", "carol", "C"),
    ("i5", "alice", "A"),
]


class Team:
    def __init__(self, engine):
        self.engine = engine
        with writing(engine) as conn:
            self.project = store_projects.create_project(conn, name="p", labels=["A", "B", "C"], seed=2)
            self.users = {n: store_users.create_user(conn, name=n, role="labeller", password="a long password").id
                          for n in ("alice", "bob", "carol", "dan")}
            self.admin = store_users.create_user(conn, name="boss", role="admin", password="a long password").id
            conn.execute(insert(items), [
                {"project_id": self.project.id, "external_id": f"i{i}",
                 "display": {"title": f"<b>title {i}</b>", "body": f"body {i}"}, "text": f"text {i}",
                 "rand": rand_key(2, f"i{i}"), "target_labels": 3, "created_at": T0, "updated_at": T0}
                for i in range(1, 9)
            ])
            self.ids = {r.external_id: r.id for r in conn.execute(select(items.c.id, items.c.external_id))}
        self.clock = T0

    def label(self, item, who, tag, *, at=None, source="human"):
        self.clock = at or self.clock + timedelta(seconds=30)
        with writing(self.engine) as conn:
            proj = store_projects.get_project(conn, name="p")
            conn.execute(insert(annotations).values(
                project_id=proj.id, item_id=self.ids[item], user_id=self.users.get(who), tag_id=proj.tag_id(tag),
                source=source, created_at=self.clock, updated_at=self.clock))
            refresh_items(conn, item_ids=[self.ids[item]])

    def fresh(self):
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name="p")

    def report(self):
        with reading(self.engine) as conn:
            return agreement_report(conn, project=self.fresh())


@pytest.fixture
def team(engine):
    team = Team(engine)
    for item, who, tag in FIXTURE:
        team.label(item, who, tag)
    return team


def test_report_matches_the_hand_computed_values(team):
    report = team.report()
    assert report["items_with_overlap"] == 4 and report["pairs"] == 8
    assert report["percent"] == pytest.approx(5 / 8)
    assert report["krippendorff_alpha"] == pytest.approx(13 / 31)
    assert report["alpha_per_tag"] == {"A": pytest.approx(0.28), "B": pytest.approx(1 / 7), "C": pytest.approx(1.0)}
    assert report["cohen_kappa"] == {"alice / bob": pytest.approx(0.4), "alice / carol": pytest.approx(0.0),
                                     "bob / carol": pytest.approx(0.5)}
    assert report["kappa_items"] == {"alice / bob": 3, "alice / carol": 2, "bob / carol": 3}
    assert report["confusion"] == {"tags": ["A", "B", "C"], "matrix": [[3, 3, 0], [3, 1, 0], [0, 0, 1]]}
    people = {p["name"]: p for p in report["per_labeller"]}
    assert [p["name"] for p in report["per_labeller"]] == ["alice", "bob", "carol"]  # most labels first
    assert people["alice"]["agreement_with_consensus"] == pytest.approx(0.5)
    assert people["bob"]["agreement_with_consensus"] == pytest.approx(2 / 3)
    assert people["alice"]["agreement_with_model"] is None  # no model yet
    assert status_summary(report) == {k: report[k] for k in
                                      ("items_with_overlap", "percent", "krippendorff_alpha", "cohen_kappa")}
    with reading(team.engine) as conn:
        figures = agreement_figures(conn, project=team.fresh())
    assert figures == {k: v for k, v in report.items() if k != "per_labeller"}


def test_imported_labels_count_as_one_labeller_and_retired_tags_are_left_out(team):
    team.label("i6", None, "B", source="import")
    team.label("i6", "dan", "B")
    report = team.report()
    assert report["items_with_overlap"] == 5
    assert report["cohen_kappa"]["(imported labels) / dan"] is None  # one shared item
    with writing(team.engine) as conn:
        store_tags.retire_tag(conn, project=team.fresh(), name="C", user_id=None)
    report = team.report()
    assert report["items_with_overlap"] == 4  # i4 had only C labels
    assert report["confusion"]["tags"] == ["A", "B"]


def test_labels_per_hour_cap_pauses_at_five_minutes(team):
    start = T0 + timedelta(days=1)
    # dan: 4 labels, gaps of 60 s, 60 s and a 3-hour break (counted as 5 minutes)
    for item, offset in (("i5", 0), ("i6", 60), ("i7", 120), ("i8", 120 + 3 * 3600)):
        team.label(item, "dan", "A", at=start + timedelta(seconds=offset))
    with reading(team.engine) as conn:
        activity = store_quality.labeller_activity(conn, project_id=team.project.id, cap_seconds=300)
    assert activity["dan"] == {"labels": 4, "active_seconds": pytest.approx(60 + 60 + 300, abs=0.01)}
    # alice labelled 1st, 4th, 6th and 11th of the fixture, 30 s apart: gaps of 90, 60 and 150 s
    assert activity["alice"] == {"labels": 4, "active_seconds": pytest.approx(300, abs=0.01)}
    dan = next(p for p in team.report()["per_labeller"] if p["name"] == "dan")
    assert dan["labels_per_hour"] == pytest.approx(4 / (420 / 3600), rel=1e-4)


def test_agreement_with_the_model_counts_labels_after_the_run(team):
    proj = team.fresh()
    run_at = team.clock + timedelta(minutes=1)
    with writing(team.engine) as conn:
        run_id = conn.execute(insert(model_runs).values(
            project_id=proj.id, version=1, status="complete", model_name="m", strategy="margin",
            metrics={"state": "model"}, created_at=run_at)).inserted_primary_key[0]
        conn.execute(update(projects).where(projects.c.id == proj.id).values(current_run_id=run_id))
        store_scores.insert_scores(conn, run_id=run_id, item_ids=[team.ids[f"i{i}"] for i in (5, 6, 7, 8)],
                                   priorities=[1.0] * 4, predicted_tag_ids=[proj.tag_id("A")] * 4,
                                   confidences=[0.9] * 4)
    team.label("i6", "dan", "A", at=run_at + timedelta(seconds=5))
    team.label("i7", "dan", "B", at=run_at + timedelta(seconds=10))
    team.label("i8", "dan", "A", at=run_at + timedelta(seconds=15))
    team.label("i6", "carol", "A", at=run_at + timedelta(seconds=20))
    people = {p["name"]: p for p in team.report()["per_labeller"]}
    assert people["dan"]["agreement_with_model"] == pytest.approx(2 / 3)
    assert people["carol"]["agreement_with_model"] == pytest.approx(1.0)
    assert people["alice"]["agreement_with_model"] is None  # i5 was labelled before the run


def test_label_progress_is_cumulative_per_day(team):
    team.label("i6", "dan", "A", at=T0 + timedelta(days=2, hours=1))
    with reading(team.engine) as conn:
        progress = store_quality.label_progress(conn, project_id=team.project.id, now=T0 + timedelta(days=3))
    assert list(progress) == ["2030-01-01", "2030-01-02", "2030-01-03", "2030-01-04"]
    assert list(progress.values()) == [11, 11, 12, 12]
    with reading(team.engine) as conn:
        assert store_quality.label_progress(conn, project_id=team.project.id, max_days=2,
                                            now=T0 + timedelta(days=3)) == {"2030-01-03": 12, "2030-01-04": 12}


def test_review_queue_lists_disagreements_ties_first_and_adjudication_resolves_them(team):
    with reading(team.engine) as conn:
        page = review.review_queue(conn, project=team.fresh())
    # i2 is a tie (A, B); i3 has a majority B over a dissenting A; i1 and i4 agree
    assert [r.external_id for r in page.items] == ["i2", "i3"]
    assert (page.total, page.conflicts) == (2, 1)
    assert page.items[0].labels == [("alice", "A"), ("bob", "B")] and page.items[0].label is None
    assert page.items[1].label == "B" and page.items[1].display["title"] == "<b>title 3</b>"
    with reading(team.engine) as conn:
        assert label_snapshot(conn, project_id=team.project.id)["train_ids"].tolist().count(team.ids["i2"]) == 0
    with writing(team.engine) as conn:
        state = review.adjudicate(conn, project=team.fresh(), item_id=team.ids["i2"], tag="B", user_id=team.admin)
    assert state["label"] == "B"
    with reading(team.engine) as conn:
        row = conn.execute(select(items.c.label_tag_id, items.c.label_source, items.c.adjudicated_tag_id)
                           .where(items.c.id == team.ids["i2"])).one()
        proj = team.fresh()
        assert (row.label_tag_id, row.label_source, row.adjudicated_tag_id) == (proj.tag_id("B"), "human",
                                                                                proj.tag_id("B"))
        assert [r.external_id for r in review.review_queue(conn, project=proj).items] == ["i3"]
        # the item wanted 3 labellers and has 2: decided, it leaves the queue
        assert conn.execute(select(items.c.n_labels, items.c.target_labels)
                            .where(items.c.id == team.ids["i2"])).one() == (2, 2)
        # training uses the decision ...
        snapshot = label_snapshot(conn, project_id=proj.id)
        trained = dict(zip(snapshot["train_ids"].tolist(), snapshot["train_tags"].tolist()))
        assert trained[team.ids["i2"]] == proj.tag_id("B")
        # ... and so does export
        plan = plan_export(conn, project=proj)
        rows = [row for chunk in export_rows(conn, plan) for row in chunk]
        entry = browse.audit_entries(conn, project_id=proj.id)[0]
    assert ("i2", "B", "human") in rows and ("i3", "B", "human") in rows
    assert entry["action"] == "item.adjudicate" and entry["user"] == "boss"
    assert entry["details"] == {"item_id": team.ids["i2"], "external_id": "i2", "tag": "B", "previous": "conflict"}
    # the decision is final: a later label does not change it
    team.label("i2", "carol", "A")
    with reading(team.engine) as conn:
        assert conn.execute(select(items.c.label_tag_id).where(items.c.id == team.ids["i2"])).scalar_one() \
            == proj.tag_id("B")


def test_adjudicate_refuses_unknown_tags_and_items(team):
    with writing(team.engine) as conn:
        with pytest.raises(InvalidInputError, match="unknown tag 'Z'"):
            review.adjudicate(conn, project=team.fresh(), item_id=team.ids["i2"], tag="Z", user_id=team.admin)
        with pytest.raises(NotFoundError, match="no item 999999"):
            review.adjudicate(conn, project=team.fresh(), item_id=999999, tag="A", user_id=team.admin)
    with reading(team.engine) as conn:
        assert conn.execute(select(items.c.adjudicated_tag_id).where(items.c.adjudicated_tag_id.is_not(None))).first() \
            is None
