"""A stop (SIGTERM) that arrives while the features are built, before the round has a run, is
an abandoned round like any other: logged as such, nothing written, no traceback."""

from __future__ import annotations

import logging
import threading

from labelloop.orchestrator import orchestrate
from labelloop.orchestrator.features import FeatureCache
from labelloop.store import reading
from labelloop.store import runs as store_runs


def test_stop_during_the_features_abandons_the_round_cleanly(bbc, monkeypatch, caplog):
    stop = threading.Event()
    build = FeatureCache.ensure

    def ensure_then_sigterm(self, *args, **kwargs):
        result = build(self, *args, **kwargs)
        stop.set()  # as the SIGTERM handler of `labelloop orchestrate` would, mid-phase
        return result

    monkeypatch.setattr(FeatureCache, "ensure", ensure_then_sigterm)
    caplog.set_level(logging.INFO, logger="labelloop.orchestrator")
    results = orchestrate(bbc.engine, bbc.settings, project="bbc", interval=0.1, stop=stop)
    assert [(r.status, r.message) for r in results] == [("abandoned", "stop requested")]
    messages = [r.getMessage() for r in caplog.records if r.name == "labelloop.orchestrator"]
    assert "bbc: round abandoned (stop requested); version unchanged" in messages
    assert not [r for r in caplog.records if r.exc_info]
    with reading(bbc.engine) as conn:
        assert store_runs.list_runs(conn, project_id=bbc.project().id) == []
        assert store_runs.lock_holder(conn, project_id=bbc.project().id) is None
