"""A model round's held-out quality figures: audit estimate, stop-set stability, stopping advice.

Written into the run's metrics by :func:`labelloop.orchestrator.run_round` (model rounds only):

- ``audit``: ``{"labelled", "correct", "accuracy", "ci95"}`` — the new model on the held-out
  audit items (:func:`labelloop.learn.audit_estimate`). No model ever trains on an audit item
  and they were drawn uniformly at random, never chosen by a model, so this estimates the
  accuracy of the model's labels on the unlabelled rest for every version.
- ``stop_set``: ``{"ids": [...], "tags": [...]}`` — the stop set (the project's
  :data:`~labelloop.learn.STOP_SET_SIZE` items with the smallest ``rand``) and the model's
  predicted *tag ids* for them (ids, so that renaming a tag does not read as a change).
- ``stability``: ``{"kappa", "compared", "previous_version"}`` — Cohen's kappa against the
  previous complete model run's stop-set predictions on their common items.
- ``advice``: ``{"stop", "message"}`` from :func:`labelloop.learn.advise`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelloop.learn import STABLE_PAIRS, advise, stability
from labelloop.store.runs import ModelRun

#: Previous model runs a round reads: the one to compare with, and those whose kappas complete
#: the last STABLE_PAIRS pairs.
PREVIOUS_RUNS = STABLE_PAIRS - 1


def quality_metrics(
    *, audit: dict[str, Any] | None, stop_ids: np.ndarray, stop_tag_ids: np.ndarray, previous: list[ModelRun]
) -> dict[str, Any]:
    """The metrics above, from this round's audit estimate and stop-set predictions and the
    project's previous complete model runs (newest first)."""
    stop = {"ids": [int(i) for i in stop_ids], "tags": [int(t) for t in stop_tag_ids]}
    last = previous[0] if previous else None
    before = ((last.metrics or {}).get("stop_set") if last is not None else None) or {}
    if before.get("ids"):
        stable = stability(before["ids"], before["tags"], stop["ids"], stop["tags"])
    else:
        stable = {"kappa": None, "compared": 0}
    stable["previous_version"] = None if last is None else last.version
    kappas = [((run.metrics or {}).get("stability") or {}).get("kappa") for run in reversed(previous)]
    kappas.append(stable["kappa"])
    return {"audit": audit, "stop_set": stop, "stability": stable, "advice": advise(kappas, audit)}
