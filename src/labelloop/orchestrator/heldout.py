"""Held-out audit items, and a model round's quality figures: audit estimate, stop-set
stability, stopping advice.

**Which audit items are held out** (:func:`read_labels`). An audit item is drawn uniformly at
random from the items still open *at the time of the draw*. The pool then keeps shrinking as
the queue serves the items the models find hardest, so "uniform over the pool back then" is
harder than "uniform over the rest now": measured on BBC news, holding out every audit item
under-read the true accuracy of the rest by 1.4 points on average (up to 4.6; see
benchmarks/RESULTS.md, audit_coverage). So audit items stay in the pool
the model scores, and when the serving order *reaches* one (ranks it at or above the k-th
non-audit item, k being the items the queue served under that order:
:func:`labelloop.store.runs.audit_items_reached`) it is treated as if the queue had picked it:
its label joins the training set. The audit items still held out are then the ones no model
would have picked, a uniformly random sample of everything the models left alone, i.e. of
the unlabelled rest. Steered queues (issue 13) reach audit items the same way: an audit item
that ranked before the item a steered claim leased, in that queue's list, is reached as if that
queue had picked it (:mod:`labelloop.store.steerqueue`), so the items still held out are those
no queue, default or steered, would have served. The reached ids are carried from run to run in ``metrics["audit_reached"]``:
every run gets the whole set when it is made, and the switch to its successor drops its copy
(only the current run's is read), so the list is stored once, not once per version.

Written into the run's metrics by :func:`labelloop.orchestrator.run_round` (model rounds only):

- ``audit``: ``{"labelled", "correct", "accuracy", "ci95"}`` — the new model on the held-out
  audit items (:func:`labelloop.learn.audit_estimate`). No model ever trains on them and no
  model would have chosen them, so this estimates the accuracy of the model's labels on the
  unlabelled rest without bias, for every version.
- ``stop_set``: ``{"ids": [...], "tags": [...]}`` — the stop set (the project's
  :data:`~labelloop.learn.STOP_SET_SIZE` items with the largest ``rand``) and the model's
  predicted *tag ids* for them (ids, so that renaming a tag does not read as a change).
- ``stability``: ``{"kappa", "compared", "previous_version"}`` — Cohen's kappa against the
  previous complete model run's stop-set predictions on their common items.
- ``advice``: ``{"stop", "message"}`` from :func:`labelloop.learn.advise`.

Multi-label projects hold out and carry audit items the same way; their figures are described
in :mod:`labelloop.orchestrator.round_sets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection

from labelloop.learn import STABLE_PAIRS, advise, stability
from labelloop.store import runs as store_runs
from labelloop.store import steerqueue as store_steerqueue
from labelloop.store.runs import ModelRun
from labelloop.store.bulklabels import bulk_train_labels
from labelloop.store.labelsets import set_snapshot
from labelloop.store.projects import Project

#: Previous model runs a round reads: the one to compare with, and those whose kappas complete
#: the last STABLE_PAIRS pairs.
PREVIOUS_RUNS = STABLE_PAIRS - 1


@dataclass(frozen=True)
class RoundLabels:
    """What a round trains on, holds out and leaves unscored (item ids, tag ids; ascending ids)."""

    train_ids: np.ndarray
    train_tags: np.ndarray  # multi-label projects: each item's final set (bit mask)
    audit_ids: np.ndarray  # held out: audit items with a final label that no order reached
    audit_tags: np.ndarray
    closed_ids: np.ndarray  # not scored
    reached: np.ndarray  # every audit item reached so far (carried in the run's metrics)
    human_labels: int  # items with a final human label (training + audit), as round_due counts


def read_labels(conn: Connection, *, project: Project) -> RoundLabels:
    """The label snapshot (with the items whose final label is a bulk label in training, unless
    the project's ``bulk_training`` is off), with the audit items the current order reached moved into training;
    in a multi-label project, final sets (bit masks) in place of tag ids
    (:func:`labelloop.store.labelsets.set_snapshot`)."""
    project_id = project.id
    if project.multi_label:
        snap = set_snapshot(conn, project=project)
        snap["train_tags"], snap["audit_tags"] = snap["train_masks"], snap["audit_masks"]
    else:
        snap = store_runs.label_snapshot(conn, project_id=project_id)
    human_labels = int(len(snap["train_ids"]) + len(snap["audit_ids"]))
    if project.setting("bulk_training"):  # items whose final label is a bulk label train too
        bulk_ids, bulk_tags = bulk_train_labels(conn, project=project)
        snap["train_ids"] = np.concatenate([snap["train_ids"], bulk_ids])
        snap["train_tags"] = np.concatenate([snap["train_tags"], bulk_tags])
    current = store_runs.current_run(conn, project_id=project_id)
    audited = snap["audit_all_ids"]
    before = np.asarray((current.metrics or {}).get("audit_reached") or [] if current else [], dtype=np.int64)
    pending = np.setdiff1d(audited, before)
    newly = store_runs.audit_items_reached(conn, project_id=project_id, run=current, audit_ids=pending)
    steered = store_steerqueue.reached_ids(conn, project_id=project_id)  # walked past by steered queues
    reached = np.intersect1d(np.union1d(np.union1d(before, newly), steered), audited)  # an undone audit label leaves the set
    joins = np.isin(snap["audit_ids"], reached)
    train_ids = np.concatenate([snap["train_ids"], snap["audit_ids"][joins]])
    train_tags = np.concatenate([snap["train_tags"], snap["audit_tags"][joins]])
    order = np.argsort(train_ids, kind="stable")
    held = snap["audit_ids"][~joins]
    return RoundLabels(
        train_ids=train_ids[order], train_tags=train_tags[order],
        audit_ids=held, audit_tags=snap["audit_tags"][~joins],
        # Held-out items are scored like open ones: the next round must see where the order ranks them.
        closed_ids=np.setdiff1d(snap["closed_ids"], held),
        reached=reached, human_labels=human_labels,
    )


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
