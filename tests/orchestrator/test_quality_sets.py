"""Agreement and `labelloop status` on a multi-label project (both databases): MASI alpha,
per-tag alpha, the confusion view of sets, and the model's set figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from labelloop.cli import main
from labelloop.learn.agreement import set_agreement
from labelloop.orchestrator import run_round
from labelloop.orchestrator.quality import agreement_report, sets_summary
from labelloop.store import reading, writing
from labelloop.store.schema import items

from sets_helpers import SET_TAGS, make_debian, set_label


@pytest.fixture
def deb(engine, settings):
    return make_debian(engine, settings)


def two_labellers(deb, n=12):
    """ann gives the true set of ``n`` unlabelled items; bob the same, except that on every 3rd
    he puts x11 instead of graphical (or adds audio); returns the long table."""
    project = deb.project()
    ann, bob = deb.user("ann"), deb.user("bob")
    chosen = sorted(set(deb.truth) - deb.labelled)[:n]
    rows = []
    for k, item_id in enumerate(chosen):
        truth = deb.truth[item_id]
        mine = list(truth)
        if k % 3 == 0:
            mine = [t for t in truth if t != "interface::graphical"] + ["interface::x11"] if "interface::graphical" in truth \
                else [*truth, "works-with::audio"]
        with writing(deb.engine) as conn:
            conn.execute(update(items).where(items.c.id == item_id).values(target_labels=2))
        for user, name, tags in ((ann, "ann", truth), (bob, "bob", mine)):
            set_label(deb.engine, project_id=project.id, item_id=item_id, mask=deb.mask(tags), user_id=user)
            rows.append((item_id, name, deb.mask(tags)))
    return rows


def test_agreement_report_on_sets(deb):
    rows = two_labellers(deb)
    project = deb.project()
    with reading(deb.engine) as conn:
        report = agreement_report(conn, project=project)
    bits = project.tag_bits
    expected = set_agreement(*map(list, zip(*rows)), tags=list(bits), bits=list(bits.values()))
    assert report["multi_label"] is True and report["alpha_metric"] == "masi"
    assert report["items_with_overlap"] == 12 and report["pairs"] == 12 and report["percent"] == pytest.approx(8 / 12)
    assert report["krippendorff_alpha"] == pytest.approx(expected.krippendorff_alpha)
    assert 0 < report["krippendorff_alpha"] < 1
    assert set(report["alpha_per_tag"]) == set(SET_TAGS)
    confusion = report["confusion"]
    assert confusion["tags"] == SET_TAGS and confusion["matrix"] == expected.confusion.tolist()
    x11, graphical = SET_TAGS.index("interface::x11"), SET_TAGS.index("interface::graphical")
    swaps = confusion["instead"][x11][graphical]
    assert swaps == confusion["instead"][graphical][x11] and swaps == expected.instead[x11][graphical]
    assert confusion["alone"] == expected.alone.tolist()
    assert {p["name"] for p in report["per_labeller"]} >= {"ann", "bob"}


def test_status_shows_the_multi_label_figures(deb, db_url):
    two_labellers(deb)
    empty = json.loads(CliRunner().invoke(main, ["status", "deb", "--json", "--db", db_url],
                                          catch_exceptions=False).stdout)
    assert empty["sets"] is None and empty["agreement"]["alpha_metric"] == "masi"
    run_round(deb.engine, deb.settings, project="deb")
    status = json.loads(CliRunner().invoke(main, ["status", "deb", "--json", "--db", db_url],
                                           catch_exceptions=False).stdout)
    with reading(deb.engine) as conn:
        sets = sets_summary(conn, project=deb.project())
    assert status["sets"] == json.loads(json.dumps(sets))
    assert sets["micro_f1"] is not None and set(sets["ci95"]) == {"micro_f1", "macro_f1", "subset_accuracy",
                                                                    "hamming_loss"}
    assert list(sets["per_tag"]) == SET_TAGS and {"threshold", "f1", "precision", "recall"} <= set(
        sets["per_tag"]["use::gameplaying"])
    agreement = status["agreement"]
    assert set(agreement) >= {"krippendorff_alpha", "alpha_per_tag", "alpha_metric", "percent"}
    assert list(agreement["alpha_per_tag"]) == SET_TAGS
    table = CliRunner().invoke(main, ["status", "deb", "--db", db_url], catch_exceptions=False).stdout
    assert f"CV micro-F1 {sets['micro_f1']:.3f}, macro-F1 {sets['macro_f1']:.3f}" in table
    assert "of sets exactly right" in table and "Krippendorff's alpha (MASI distance between sets)" in table
    assert "use::gameplaying" in table and "threshold" in table


def test_the_audit_line_of_label_sets():
    from labelloop.orchestrator.quality import audit_view

    audit = {"labelled": 40, "accuracy": 0.5, "ci95": [0.34, 0.66], "micro_f1": 0.8,
             "intervals": {"micro_f1": [0.75, 0.85]}}
    assert audit_view(audit)["line"] == (
        "50.0% of tag sets exactly right (95 % CI 34.0%-66.0%), micro-F1 0.800 (95 % CI 0.750-0.850), on 40 random "
        "audit items the model never trained on; unlike CV, it is unbiased")
    assert audit_view({**audit, "labelled": 5})["line"] == "none yet, too few audit items (5 of 30)"
