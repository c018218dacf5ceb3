"""Model suggestions (issue 14): the serving model's prediction for a served item, recorded on the
labeller's assignment, and what the dashboard says about them.

The project setting ``suggestions`` is ``off`` (the default), ``order`` (the labelling page orders
the tag buttons by the model's probability) or ``preselect`` (the model's tag, or set, is marked
and Enter accepts it). While it is on, every serve of an item (the server's ``next``, its steered
queues and undo) calls :func:`record_suggestion` in the claim's own write transaction: it reads
the current run's ``item_scores`` row of the item and writes the prediction on the assignment
(``predicted_tag_id`` / ``predicted_mask``) with ``suggest_mode``, the mode it was shown in, or
null when it was *withheld*: audit items (so the audit estimate stays unbiased), overlap items
(``target_labels > 1``: agreement between labellers stays independent of the model) and gold
items (the caller says so). Withheld predictions are still recorded: they are the "not shown"
half of the anchoring check (:func:`suggestion_figures`). While the setting is off nothing here
runs: a plain ``next`` gains no query.

A label's record is its assignment (one row per item and labeller, as the annotation): a label
was made under a suggestion iff its assignment's ``suggest_mode`` is not null, and the suggestion
was ``predicted_tag_id`` (single-label) or ``predicted_mask`` (multi-label). The record is the
last serve's: an item served again (a renewed lease, an undo) is recorded again.

What is shown:

- single-label: ``top`` (the predicted tag) and ``tags``, the active tags with ``top`` first and
  the others in display order (single-label runs store the top tag's probability,
  ``confidence``, not every tag's), and ``confidence``;
- multi-label: ``set`` (the predicted set, display order), ``tags`` (every active tag by the
  model's probability, highest first; ties in display order), ``proba`` (aligned with ``tags``)
  and ``top`` (``tags[0]``). A run's ``proba`` are in the order of its ``metrics["bits"]``,
  read once per run and process (:data:`RUN_BITS`).

A tag retired since the round is never suggested (a single-label prediction of one is withheld).
A tag merge does not move recorded predictions (a label moved to the merged tag then no longer
equals its prediction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, case, func, select

from labelloop.store import rawsql as raw
from labelloop.store.projects import Project
from labelloop.store.schema import annotations, assignments, model_runs

SHOWN_MODES = ("order", "preselect")
WITHHELD = ("audit", "overlap", "gold")

# (database URL, run id) -> the run's metrics["bits"]: the order of its proba columns.
RUN_BITS: dict[tuple[str, int], list[int]] = {}
_RUN_BITS_MAX = 64

_SCORE = """
SELECT i.target_labels, s.predicted_tag_id, s.predicted_mask, s.confidence, s.proba
FROM items i LEFT JOIN item_scores s ON s.run_id = :run AND s.item_id = i.id
WHERE i.id = :item"""

# Only a change is written. A renewed lease (the page's next while the label is in flight, a
# steered queue's own item) has its record already; updating its row again in the transaction
# that renewed it would fire PostgreSQL's foreign-key check on items (a row version made by the
# current transaction is always checked), a KEY SHARE lock on the item, which the concurrent label
# of that item holds FOR UPDATE while it waits for this very assignment row: a deadlock. (A renewal
# whose prediction changed, a new run in between, can still meet it: rare, and the writer retries.)
_RECORD = """
UPDATE assignments SET predicted_tag_id = :tag, predicted_mask = :mask, suggest_mode = :mode
WHERE item_id = :item AND user_id = :user AND state = 'leased'
 AND (predicted_tag_id {ne} :tag OR predicted_mask {ne} :mask OR suggest_mode {ne} :mode)"""


@dataclass(frozen=True)
class Suggestion:
    """The suggestion shown with an item (names, for the API answer)."""

    mode: str
    top: str | None
    tags: list[str]
    confidence: float | None = None
    set: list[str] | None = None  # multi-label: the predicted set
    proba: list[float] = field(default_factory=list)  # multi-label: aligned with ``tags``

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "top": self.top, "tags": self.tags}
        if self.set is not None:
            out["set"] = self.set
            out["proba"] = self.proba
        elif self.confidence is not None:
            out["confidence"] = round(self.confidence, 4)
        return out


def suggestion_mode(project: Project) -> str:
    """The project's ``suggestions`` setting: ``off``, ``order`` or ``preselect``."""
    mode = project.setting("suggestions")
    return mode if mode in SHOWN_MODES else "off"


def record_suggestion(
    conn: Connection, *, project: Project, user_id: int, item_id: int, mode: str, withheld: str | None = None,
) -> Suggestion | None:
    """Record the current run's prediction for ``item_id`` on the user's live lease and return the
    suggestion to show, or None (nothing to show: no model, no prediction for the item, or it is
    withheld: ``withheld`` given by the caller, ``"audit"`` or ``"gold"``, or an overlap item).
    ``mode`` ``order`` or ``preselect``; call only while the setting is on. Two short statements
    on the caller's write connection (the claim's transaction)."""
    run_id = project.current_run_id
    if run_id is None or mode not in SHOWN_MODES:
        return None
    row = raw.one(conn, _SCORE, {"run": run_id, "item": item_id})
    if row is None:
        return None
    target, tag_id, mask, confidence, proba = row
    if tag_id is None and mask is None:  # not scored by this run (labelled before it, or imported since)
        return None
    active = {t.id: t.name for t in project.tags if not t.retired}
    if mask is not None:
        mask = int(mask) & sum(1 << b for b in project.tag_bits.values())
    if withheld is None and int(target) > 1:
        withheld = "overlap"
    if withheld is None and tag_id is not None and tag_id not in active:
        withheld = "retired"
    shown = None if withheld is not None else mode
    record = _RECORD.format(ne="IS NOT" if raw.is_sqlite(conn) else "IS DISTINCT FROM")
    raw.run(conn, record, {"tag": tag_id, "mask": mask, "mode": shown, "item": item_id, "user": user_id})
    if shown is None:
        return None
    if tag_id is not None:
        top = active[tag_id]
        return Suggestion(mode, top, [top, *(n for n in project.tag_names if n != top)],
                          None if confidence is None else float(confidence))
    return _set_suggestion(conn, project, run_id, mode, int(mask), proba)


def _set_suggestion(conn: Connection, project: Project, run_id: int, mode: str, mask: int,
                    proba: bytes | None) -> Suggestion:
    bits = project.tag_bits  # active tags in display order -> bit
    chosen = [name for name, bit in bits.items() if mask >> bit & 1]
    by_bit: dict[int, float] = {}
    run_bits = _run_bits(conn, run_id) if proba is not None else []
    if proba is not None and len(proba) == 4 * len(run_bits):
        by_bit = dict(zip(run_bits, np.frombuffer(proba, dtype="<f4").tolist(), strict=True))
    names = list(bits)
    ordered = sorted(names, key=lambda n: (-by_bit.get(bits[n], -1.0), names.index(n)))
    return Suggestion(mode, ordered[0] if ordered else None, ordered, set=chosen,
                      proba=[round(by_bit.get(bits[n], 0.0), 4) for n in ordered])


def _run_bits(conn: Connection, run_id: int) -> list[int]:
    """The run's ``metrics["bits"]`` (cached: a run's metrics never change their bits)."""
    key = (str(conn.engine.url), run_id)
    bits = RUN_BITS.get(key)
    if bits is None:
        metrics = conn.execute(select(model_runs.c.metrics).where(model_runs.c.id == run_id)).scalar()
        bits = [int(b) for b in (metrics or {}).get("bits") or []]
        if len(RUN_BITS) >= _RUN_BITS_MAX:
            RUN_BITS.clear()
        RUN_BITS[key] = bits
    return bits


def interval95(hits: int, n: int) -> list[float] | None:
    """The Wilson score interval (95 %) of a share ``hits / n``; None when n = 0."""
    if n <= 0:
        return None
    z = 1.959963984540054
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _share(hits: int, n: int) -> dict[str, Any]:
    return {"n": n, "agree": hits, "share": hits / n if n else None, "ci95": interval95(hits, n)}


def suggestion_figures(conn: Connection, *, project: Project) -> dict[str, Any]:
    """The dashboard's figures over the project's human labels whose serve recorded a prediction
    (made while suggestions were on):

    - ``shown``: labels made with a suggestion shown, ``accepted`` of them equal to it (the
      suggested tag; multi-label the suggested set exactly), per mode in ``by_mode``;
    - ``anchoring``: agreement of labels with the model's prediction where it was shown
      (``shown``) and where it was withheld (``not_shown``: audit, overlap and gold items),
      each ``{n, agree, share, ci95}`` (Wilson 95 %). Withheld items are a different sample
      (random audit draws and overlap items, not the model's priority order), so a gap is a
      hint of anchoring to weigh, not a measurement of it."""
    a, s = annotations, assignments
    agree = case(
        ((a.c.tag_id.is_not(None)) & (a.c.tag_id == s.c.predicted_tag_id), 1),
        ((a.c.tag_mask.is_not(None)) & (a.c.tag_mask == s.c.predicted_mask), 1),
        else_=0,
    )
    rows = conn.execute(
        select(s.c.suggest_mode, agree.label("agree"), func.count().label("n"))
        .select_from(a.join(s, (s.c.item_id == a.c.item_id) & (s.c.user_id == a.c.user_id)))
        .where(a.c.project_id == project.id, a.c.source == "human",
               (s.c.predicted_tag_id.is_not(None)) | (s.c.predicted_mask.is_not(None)))
        .group_by(s.c.suggest_mode, agree)
    ).all()
    counts: dict[tuple[str | None, int], int] = {(r.suggest_mode, int(r.agree)): int(r.n) for r in rows}
    by_mode = {}
    for mode in SHOWN_MODES:
        n = counts.get((mode, 0), 0) + counts.get((mode, 1), 0)
        by_mode[mode] = _share(counts.get((mode, 1), 0), n)
    shown_n = sum(m["n"] for m in by_mode.values())
    shown_hits = sum(m["agree"] for m in by_mode.values())
    hidden_n = counts.get((None, 0), 0) + counts.get((None, 1), 0)
    return {
        "mode": suggestion_mode(project),
        "recorded": shown_n + hidden_n,
        "shown": shown_n,
        "accepted": shown_hits,
        "accepted_share": shown_hits / shown_n if shown_n else None,
        "by_mode": by_mode,
        "anchoring": {"shown": _share(shown_hits, shown_n), "not_shown": _share(counts.get((None, 1), 0), hidden_n)},
    }
