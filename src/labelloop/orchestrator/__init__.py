"""The orchestrator: the model in the loop, the only place where ``store`` meets ``learn``.

- :func:`run_round` — one round for a project (snapshot, cached features, fit, CV, model file,
  scores written as a new version, atomic switch), with per-phase timings.
- :func:`compute_round` — its learn side alone, on any feature matrix, no database (simulations).
- :func:`orchestrate` — ``labelloop orchestrate PROJECT``: lock the project, retrain when due.
- :func:`run_forever` — ``labelloop serve --orchestrate``: every project, in a background thread.
- :func:`request_retrain` — an admin's "retrain now".

Modules: ``compute`` (pure ML side), ``features`` (on-disk feature cache), ``round``,
``lock`` (one orchestrator per project), ``loop``, ``modelfiles``, ``quality`` (agreement
between labellers, for ``status`` and the admin dashboard).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from labelloop.orchestrator.compute import RoundOutput, compute_round
from labelloop.orchestrator.features import FeatureCache, InMemoryFeatures
from labelloop.orchestrator.lock import ProjectLock
from labelloop.orchestrator.loop import orchestrate, run_forever, run_pass
from labelloop.orchestrator.round import PHASES, RoundHooks, RoundResult, recover, run_round
from labelloop.store import writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs


def request_retrain(engine: Engine, *, project: str, now: datetime | None = None) -> datetime:
    """Ask for a round of ``project`` at the orchestrator's next check; returns the request time."""
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        return store_runs.request_retrain(conn, project_id=proj.id, now=now)


__all__ = [
    "PHASES",
    "FeatureCache",
    "InMemoryFeatures",
    "ProjectLock",
    "RoundHooks",
    "RoundOutput",
    "RoundResult",
    "compute_round",
    "orchestrate",
    "recover",
    "request_retrain",
    "run_forever",
    "run_pass",
    "run_round",
]
