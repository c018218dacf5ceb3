"""What a round does differently on a multi-label project (label sets as bit masks).

:func:`labelloop.orchestrator.run_round` reads the final sets (masks) with
:func:`labelloop.store.labelsets.set_snapshot`, turns them into a 0/1 matrix over the
project's **active** tags in display order (:func:`targets`; retired bits drop out), and
:func:`~labelloop.orchestrator.compute_round` fits one classifier per tag with thresholds chosen
on cross-validation. What it records:

- run metrics (:func:`set_metrics`): ``multi_label`` true; ``tags``, the tag names in the order
  of every ``proba`` row (and ``bits``, their bits); ``thresholds`` ``{tag: t}``; ``cv`` with
  ``micro_f1``, ``macro_f1``, ``subset_accuracy`` (also as ``accuracy``: the accuracy of whole
  sets, as scikit-learn's ``accuracy_score`` defines it for label sets), ``hamming_loss``,
  ``per_tag`` precision/recall/F1/support and ``ci95`` (95 % intervals of the four);
  the same four at the top level; ``labels`` ``{tag: training sets with it}`` and
  ``empty_sets`` (sets "none of these applies");
- ``audit`` (:func:`audit_metrics`): the audit sample's ``accuracy`` (= subset accuracy) and
  ``ci95`` (its Wilson interval), as every reader of a run's audit expects, plus
  ``micro_f1``, ``macro_f1``, ``hamming_loss``, ``intervals`` (95 % for all four) and ``per_tag``;
- ``stop_set`` ``{"ids", "masks"}``: the stop set's predicted sets as bit masks (bits, so a
  renamed tag is no change); ``stability``: Cohen's kappa over every item-tag decision of the
  stop set against the previous model (:func:`~labelloop.learn.multilabel.set_stability`, on
  the active tags), the signal of the stopping advice;
- score rows (:func:`~labelloop.store.setscores.write_set_scores`): ``predicted_mask`` (the tags
  at or above their thresholds), ``proba`` and ``confidence`` = the certainty of the least
  certain tag: per tag 0 at its threshold and 1 at probability 0 or 1 (the complement of the
  ``max_uncertainty`` score), so a confident set is one where every tag is clearly in or out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelloop.errors import InvalidInputError
from labelloop.learn import advise
from labelloop.learn.multilabel import set_stability
from labelloop.orchestrator.compute import RoundOutput
from labelloop.orchestrator.compute_sets import DEFAULT_SET_STRATEGY, SET_STRATEGY_NAMES
from labelloop.store.labelsets import mask_matrix
from labelloop.store.projects import Project
from labelloop.store.runs import ModelRun

__all__ = ["audit_metrics", "masks_of", "set_metrics", "set_quality_metrics", "strategy_of", "targets"]

SET_FIGURES = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")


def strategy_of(project: Project, override: str | None) -> str:
    """The set strategy of a round: ``override``, else the project's ``strategy`` setting when it
    names a set strategy, else :data:`DEFAULT_SET_STRATEGY` (a project that never chose one
    carries the single-label default). A single-label name chosen explicitly is an error."""
    name = override or project.settings.get("strategy") or DEFAULT_SET_STRATEGY
    if name not in SET_STRATEGY_NAMES:
        raise InvalidInputError(
            f"project {project.name!r} is multi-label: its query strategy must be one of "
            f"{', '.join(SET_STRATEGY_NAMES)}, not {name!r}"
        )
    return name


def tag_order(project: Project) -> tuple[list[str], np.ndarray]:
    """The active tags in display order and their bits: the columns of every set matrix."""
    bits = project.tag_bits
    return list(bits), np.array(list(bits.values()), dtype=np.int64)


def targets(masks: Any, bits: np.ndarray) -> np.ndarray:
    """The (n, k) 0/1 matrix of ``masks`` over the tags of ``bits``."""
    return mask_matrix(np.asarray(masks, dtype=np.int64).reshape(-1), bits)


def masks_of(Y: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """The bit mask of each row of a 0/1 (or boolean) matrix over the tags of ``bits``: as
    :func:`labelloop.store.labelsets.matrix_masks`, but one column at a time (a million rows
    never hold an int64 copy of the matrix)."""
    Y = np.asarray(Y)
    masks = np.zeros(Y.shape[0], dtype=np.int64)
    for j, bit in enumerate(np.asarray(bits, dtype=np.int64).tolist()):
        masks |= Y[:, j].astype(np.int64) << bit
    return masks


def set_metrics(out: RoundOutput, Y: np.ndarray, *, tags: list[str], bits: np.ndarray) -> dict[str, Any]:
    """The multi-label keys of a run's metrics (see the module documentation)."""
    Y = np.asarray(Y, dtype=np.int8).reshape(-1, len(tags))
    metrics: dict[str, Any] = {
        "multi_label": True,
        "tags": list(tags),
        "bits": [int(b) for b in bits],
        "labels": {tag: int(c) for tag, c in zip(tags, Y.sum(axis=0))},
        "empty_sets": int((Y.sum(axis=1) == 0).sum()),
        "cv": None,
    }
    if out.thresholds is not None:
        metrics["thresholds"] = {tag: float(t) for tag, t in zip(tags, out.thresholds)}
    if out.cv is not None:
        cv = {k: out.cv[k] for k in (*SET_FIGURES, "folds", "n_labels", "ci95")}
        cv["per_tag"] = _by_name(out.cv["per_tag"], tags)
        cv["accuracy"] = cv["subset_accuracy"]
        cv["labels"] = [str(t) for t in tags]
        metrics["cv"] = cv
        metrics.update({k: cv[k] for k in ("accuracy", *SET_FIGURES)})
    return metrics


def _by_name(per_tag: dict[Any, Any], tags: list[str]) -> dict[str, Any]:
    """Per-tag figures keyed by tag name (compute_round keys them by column)."""
    return dict(zip(tags, per_tag.values(), strict=True))


def audit_metrics(audit: dict[str, Any] | None, tags: list[str]) -> dict[str, Any] | None:
    """A multi-label audit (:func:`~labelloop.learn.multilabel.audit_sets`) in the shape every
    reader of a run's ``audit`` knows (``accuracy``, ``ci95`` [low, high]), the set figures
    added (see the module documentation)."""
    if audit is None:
        return None
    intervals = audit.get("ci95") or {}
    return {
        "labelled": audit["labelled"], "correct": audit.get("correct", 0),
        "accuracy": audit.get("subset_accuracy"), "ci95": intervals.get("subset_accuracy"),
        **{k: audit.get(k) for k in SET_FIGURES},
        "intervals": intervals, "per_tag": _by_name(audit.get("per_tag") or {}, tags) if audit.get("per_tag") else {},
    }


def set_quality_metrics(*, audit: dict[str, Any] | None, stop_ids: np.ndarray, stop_predicted: np.ndarray | None,
                        tags: list[str], bits: np.ndarray, previous: list[ModelRun]) -> dict[str, Any]:
    """``audit``, ``stop_set``, ``stability`` and ``advice`` of a multi-label model round
    (``previous``: the project's last complete model runs, newest first)."""
    Y = np.zeros((len(stop_ids), len(bits)), np.int8) if stop_predicted is None else stop_predicted
    stop = {"ids": [int(i) for i in stop_ids], "masks": [int(m) for m in masks_of(Y, bits)]}
    last = previous[0] if previous else None
    before = ((last.metrics or {}).get("stop_set") if last is not None else None) or {}
    if before.get("ids") and "masks" in before:
        stable = set_stability(np.asarray(before["ids"], dtype=np.int64), targets(before["masks"], bits),
                               np.asarray(stop["ids"], dtype=np.int64), targets(stop["masks"], bits))
    else:
        stable = {"kappa": None, "compared": 0}
    stable["previous_version"] = None if last is None else last.version
    kappas = [((run.metrics or {}).get("stability") or {}).get("kappa") for run in reversed(previous)]
    kappas.append(stable["kappa"])
    audit = audit_metrics(audit, tags)
    return {"audit": audit, "stop_set": stop, "stability": stable, "advice": advise(kappas, audit)}
