"""The one adapter between the simulation and the round code a live project runs.

:func:`play_round` is the only place where the simulation trains a model and asks for a
serving order. It calls the orchestrator's pure round function
(:func:`labelloop.orchestrator.compute_round`, what ``run_round`` runs between its database
snapshot and its write-back), so a simulated round *is* a live round: same fit, same CV,
same scores, same cold-start order, same diversity and exploration, same seeding scheme
(``[seed, round]`` like ``[project seed, run version]``).

One gap: a live project always diversifies the head of the queue, and ``compute_round`` has
no switch to turn that off. For configurations without diversity (the bare strategies and
the superintendent baseline) the round's own scores are re-ranked by
:func:`labelloop.learn.queue_order` with ``diversity=False`` and the configuration's
exploration; everything else (fit, CV, scores) is still the orchestrator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labelloop.learn import queue_order
from labelloop.orchestrator import compute_round
from labelloop.orchestrator.steering import steer_order
from labelloop.simulate.presets import QuerySettings

__all__ = ["RoundOutcome", "play_round"]


@dataclass(frozen=True)
class RoundOutcome:
    """What one round gives: the fitted classifier (None before 2 tags are labelled), the
    unlabelled pool rows in serving order (what ``/next`` hands out, first first) and the
    cross-validation metrics on the labelled rows (None if not asked for or not possible)."""

    classifier: Any | None
    order: np.ndarray
    cv: dict[str, Any] | None


def play_round(
    X: Any,
    labelled: np.ndarray,
    tags: np.ndarray,
    *,
    model: str,
    query: QuerySettings,
    class_weight: Any,
    seed: int,
    step: int,
    with_cv: bool,
    tag_names: Any = None,
) -> RoundOutcome:
    """Round ``step`` of the run ``seed``: train on pool rows ``labelled`` (tagged ``tags``) and
    order every other row of ``X``; with no labelled rows, the cold-start order. A steered
    configuration (``likely:TAG``, ``unsure:TAG``) orders the pool by the round's list of TAG
    (:func:`labelloop.orchestrator.steering.steer_order`, what a live round stores);
    ``tag_names``: a multi-label run's tags in the order of the columns of ``tags``."""
    out = compute_round(
        X,
        np.asarray(labelled, dtype=np.int64),
        np.asarray(tags, dtype=object),
        model=model,
        strategy=query.strategy,
        exploration=query.exploration,
        class_weight=class_weight,
        seed=[seed, step],
        evaluate=with_cv,
    )
    if query.steer is not None and query.tag is not None:
        rows = steer_order(out, query.steer, query.tag, limit=len(out.pool_rows),
                           columns=None if tag_names is None else list(tag_names))
        if rows is not None:
            return RoundOutcome(out.classifier, out.pool_rows[rows], out.cv)
    if out.state == "model" and not query.diversity:
        order = queue_order(
            out.scores, exploration=query.exploration, diversity=False, rng=np.random.default_rng([seed, step, 1])
        )
    else:
        order = np.argsort(-out.priorities, kind="stable")
    return RoundOutcome(out.classifier if out.state == "model" else None, out.pool_rows[order], out.cv)
