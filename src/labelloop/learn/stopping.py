"""When to stop labelling: stable predictions between rounds, and an audit estimate to report.

Two signals, both cheap:

- **Stability.** Each model round predicts a fixed random *stop set* (the project's
  :data:`STOP_SET_SIZE` items with the largest seeded random key, labelled or not), and
  :func:`stability` compares those predictions with the previous model's by Cohen's kappa
  on the items both predicted. Kappa is undefined when both models predict one same tag for
  every item (perfect agreement, but no chance correction possible); it is then defined as
  1.0 (identical predictions), which :func:`stability` returns for any identical pair.
- **Audit estimate.** The model's accuracy on the held-out audit items
  (:func:`labelloop.learn.evaluation.audit_estimate`) with its 95 % interval.

Multi-label projects use the same rule: the kappa is over every item-tag decision of the stop
set (:func:`labelloop.learn.multilabel.set_stability`) and the audit accuracy is the share of
exactly right sets, reported with the audit's micro-F1.

:func:`advise` says stop when kappa >= :data:`KAPPA_THRESHOLD` for each of the last
:data:`STABLE_PAIRS` consecutive pairs of models *and* at least :data:`MIN_AUDIT_LABELS`
audit items are labelled (so the estimate it reports means something); otherwise "keep
labelling" and why. Stable predictions mean that more labels change the model's labels
little; the audit interval says how good those labels are.

The sentences people read use the same thresholds: :func:`describe_stability` words one kappa
("changed little" only from :data:`KAPPA_THRESHOLD`), :func:`describe_audit` shows an accuracy
only with its 95 % interval and from :data:`MIN_AUDIT_LABELS` audit items ("too few audit items
(5 of 30)" before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

__all__ = [
    "KAPPA_THRESHOLD", "MIN_AUDIT_LABELS", "STABLE_PAIRS", "STOP_SET_SIZE", "advise", "describe_audit",
    "describe_stability", "stability",
]

STOP_SET_SIZE = 1000  # items in the stop set (all of them in a smaller project)
KAPPA_THRESHOLD = 0.99  # kappa between consecutive models' stop-set predictions counted as stable
STABLE_PAIRS = 3  # consecutive pairs of models that must all be stable
MIN_AUDIT_LABELS = 30  # audit items needed before the advice reports an estimate and may say stop


def stability(previous_ids: Any, previous_tags: Any, ids: Any, tags: Any) -> dict[str, Any]:
    """Cohen's kappa between two models' predictions (``tags``) on their common item ``ids``.

    Returns ``kappa`` (None when no item is common; 1.0 for identical predictions, also when
    every prediction is one same tag) and ``compared`` (the number of common items)."""
    previous = dict(zip(np.asarray(previous_ids).tolist(), np.asarray(previous_tags, dtype=object).tolist()))
    pairs = [(previous[i], t) for i, t in zip(np.asarray(ids).tolist(), np.asarray(tags, dtype=object).tolist())
             if i in previous]
    if not pairs:
        return {"kappa": None, "compared": 0}
    before = [str(a) for a, _ in pairs]
    after = [str(b) for _, b in pairs]
    if before == after:
        return {"kappa": 1.0, "compared": len(pairs)}
    return {"kappa": float(cohen_kappa_score(before, after)), "compared": len(pairs)}


def _floor(value: float, digits: int = 3) -> float:
    """Rounded down, so that a kappa just below the threshold never prints as equal to it."""
    return float(np.floor(value * 10**digits) / 10**digits)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def advise(kappas: Sequence[float | None], audit: dict[str, Any] | None) -> dict[str, Any]:
    """``{"stop": bool, "message": str}`` from the stability kappas of the latest rounds
    (oldest first, the current round's last; None where a round had nothing to compare) and the
    current model's audit estimate (``labelled``, ``accuracy``, ``ci95``; for label sets also
    ``micro_f1`` and ``intervals``, and ``accuracy`` is the share of exactly right sets)."""
    reasons = []
    recent = list(kappas)[-STABLE_PAIRS:]
    known = [k for k in recent if k is not None]
    if len(known) < STABLE_PAIRS:
        reasons.append(
            f"predictions compared between {len(known)} of {STABLE_PAIRS} pairs of consecutive models so far"
        )
    elif min(known) < KAPPA_THRESHOLD:
        reasons.append(
            f"predictions still change between rounds (kappa {_floor(min(known)):.3f} < {KAPPA_THRESHOLD:g})"
        )
    labelled = int((audit or {}).get("labelled") or 0)
    if labelled < MIN_AUDIT_LABELS:
        reasons.append(f"only {labelled} audit items labelled ({MIN_AUDIT_LABELS} needed for an estimate)")
    if reasons:
        return {"stop": False, "message": "keep labelling: " + "; ".join(reasons)}
    assert audit is not None
    lo, hi = audit["ci95"]
    if audit.get("micro_f1") is not None:  # label sets: accuracy is the share of exactly right sets
        micro_lo, micro_hi = (audit.get("intervals") or {}).get("micro_f1") or (None, None)
        interval = "" if micro_lo is None else f" (95 % CI {micro_lo:.3f}-{micro_hi:.3f})"
        return {
            "stop": True,
            "message": f"the model's tag sets are estimated {_percent(audit['accuracy'])} % exactly right "
                       f"(95 % CI {_percent(lo)}-{_percent(hi)} %) with micro-F1 {audit['micro_f1']:.3f}{interval} "
                       f"on {labelled} audit items; labelling more changes little",
        }
    return {
        "stop": True,
        "message": f"the model's labels are estimated {_percent(audit['accuracy'])} % accurate "
                   f"(95 % CI {_percent(lo)}-{_percent(hi)} %, {labelled} audit items); "
                   "labelling more changes little",
    }


def describe_stability(kappa: float, *, since: str, compared: int) -> str:
    """One sentence on how the predictions changed since the model named ``since`` (e.g. "v3"):
    "changed little" only when ``kappa`` reaches :data:`KAPPA_THRESHOLD`, the threshold the
    advice uses; the kappa is shown rounded down, so that one just below never reads as equal."""
    shown = f"{_floor(kappa):.3f}"
    if kappa >= KAPPA_THRESHOLD:
        return (f"Predictions changed little since {since}: Cohen's kappa {shown} ≥ {KAPPA_THRESHOLD:g} "
                f"on {compared:,} fixed random items.")
    return (f"Predictions still change since {since}: Cohen's kappa {shown} < {KAPPA_THRESHOLD:g} "
            f"(stable from {KAPPA_THRESHOLD:g}) on {compared:,} fixed random items.")


def describe_audit(audit: dict[str, Any] | None) -> dict[str, Any]:
    """The audit estimate (``labelled``, ``accuracy``, ``ci95``) as people should read it:
    ``shown`` is True only with :data:`MIN_AUDIT_LABELS` labelled audit items or more and an
    interval; then ``accuracy`` and ``ci95`` are given. Otherwise ``message`` says why not
    ("too few audit items (5 of 30)"). ``labelled`` and ``needed`` always."""
    audit = audit or {}
    labelled = int(audit.get("labelled") or 0)
    view: dict[str, Any] = {"labelled": labelled, "needed": MIN_AUDIT_LABELS, "shown": False,
                            "accuracy": None, "ci95": None, "message": None}
    if labelled < MIN_AUDIT_LABELS:
        view["message"] = f"too few audit items ({labelled} of {MIN_AUDIT_LABELS})"
    elif audit.get("accuracy") is None or not audit.get("ci95"):
        view["message"] = "no 95 % interval recorded for this version"
    else:
        view.update(shown=True, accuracy=audit["accuracy"], ci95=list(audit["ci95"]))
    return view
