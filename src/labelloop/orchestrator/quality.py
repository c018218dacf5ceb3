"""Team quality: agreement between labellers and their pace, from the store through learn/.

:func:`agreement_report` reads the overlap items (items with human or imported labels from at
least two labellers; imported labels count as one labeller, ``(imported labels)``) and returns a
JSON-able dict for the admin dashboard (:func:`agreement_figures`: the same without
``per_labeller``, from the overlap items alone, for ``labelloop status`` and the confusion chart)::

    items_with_overlap   items labelled by >= 2 labellers
    pairs                pairs of labels on the same item (the base of ``percent``)
    percent              share of agreeing pairs (null without overlap)
    krippendorff_alpha   nominal alpha over the overlap items (null when undefined)
    alpha_per_tag        {tag: alpha of the tag against all others}
    cohen_kappa          {"alice / bob": kappa on the items both labelled, or null}
    kappa_items          {"alice / bob": how many items both labelled}
    confusion            {"tags": [...], "matrix": [[...]]}: label pairs between labellers
    per_labeller         [{name, labels, labels_per_hour, agreement_with_consensus,
                           agreement_with_model}], most labels first

Definitions (see :mod:`labelloop.learn.agreement` for the agreement figures):

- ``labels_per_hour`` = human labels / active time, where active time is the sum of the gaps
  between the labeller's consecutive labels in the project, each gap capped at
  :data:`ACTIVE_GAP_SECONDS` (5 minutes): a longer pause is a break, and counts as 5 minutes
  of work at most. Null with less than a minute of active time.
- ``agreement_with_consensus``: share of their overlap labels equal to the strict majority of
  the item's other labellers (ties skipped).
- ``agreement_with_model``: share of their labels made after the current model run was
  created, on items that run scored, equal to its prediction (null without a model).

Multi-label projects (:func:`labelloop.learn.agreement.set_agreement`): two labels agree when
their sets are equal; ``krippendorff_alpha`` uses the MASI distance between sets
(``alpha_metric``: ``"masi"``), ``alpha_per_tag`` is each tag's binary alpha (in or out),
``cohen_kappa`` is over item-tag decisions, ``multi_label`` is true, and ``confusion`` also has
``instead`` (one labeller gave the row's tag where the other gave the column's) and ``alone``
(one gave the tag, the other left it out without giving another). :func:`sets_summary` gives
the model's set figures for ``labelloop status``.

:func:`audit_view` and :func:`stability_text` word a model's audit estimate and stability for
people (``labelloop status``, the dashboard) with the thresholds of the stopping advice
(:mod:`labelloop.learn.stopping`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from labelloop.learn.agreement import Agreement, SetAgreement, agreement, set_agreement
from labelloop.learn.stopping import describe_audit, describe_stability
from labelloop.store import codebook as store_codebook
from labelloop.store import quality as store_quality
from labelloop.store import runs as store_runs
from labelloop.store.projects import Project
from labelloop.store.setscores import overlap_sets

ACTIVE_GAP_SECONDS = 300.0
MIN_ACTIVE_SECONDS = 60.0


def _share(compared: int, same: int) -> float | None:
    return same / compared if compared else None


def _agreement(conn: Connection, project: Project) -> Agreement | SetAgreement:
    if project.multi_label:
        return _agreement_of(project, overlap_sets(conn, project_id=project.id))
    return _agreement_of(project, store_quality.overlap_labels(conn, project_id=project.id))


def _agreement_of(project: Project, rows: list[tuple[int, str, int]]) -> Agreement | SetAgreement:
    """The figures of overlap rows ``(item id, labeller, tag id or mask)``."""
    if project.multi_label:
        bits = project.tag_bits
        return set_agreement([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                             tags=list(bits), bits=list(bits.values()))
    names = {t.id: t.name for t in project.tags}
    return agreement(
        [r[0] for r in rows], [r[1] for r in rows], [names.get(r[2], f"#{r[2]}") for r in rows],
        tag_order=project.tag_names,
    )


def _figures(figures: Agreement | SetAgreement) -> dict[str, Any]:
    pairs = {f"{a} / {b}": value for (a, b), value in figures.cohen_kappa.items()}
    if isinstance(figures, SetAgreement):
        report = _figures_common(figures, pairs)
        report["confusion"].update(instead=figures.instead.tolist(), alone=figures.alone.tolist())
        return {**report, "multi_label": True, "alpha_metric": figures.alpha_metric}
    return _figures_common(figures, pairs)


def _figures_common(figures: Agreement | SetAgreement, pairs: dict[str, Any]) -> dict[str, Any]:
    return {
        "items_with_overlap": figures.items_with_overlap,
        "pairs": figures.pairs,
        "percent": figures.percent,
        "krippendorff_alpha": figures.krippendorff_alpha,
        "alpha_per_tag": {str(tag): alpha for tag, alpha in figures.alpha_per_tag.items()},
        "cohen_kappa": {pair: kappa for pair, (_, kappa) in pairs.items()},
        "kappa_items": {pair: n for pair, (n, _) in pairs.items()},
        "confusion": {"tags": [str(t) for t in figures.tags], "matrix": figures.confusion.tolist()},
    }


def agreement_figures(conn: Connection, *, project: Project) -> dict[str, Any]:
    """The agreement figures of ``project`` (every key of :func:`agreement_report` but
    ``per_labeller``), from the overlap labels alone: no pass over every label for the pace,
    no model agreement."""
    return _figures(_agreement(conn, project))


def agreement_report(conn: Connection, *, project: Project) -> dict[str, Any]:
    """Agreement figures and the per-labeller table of ``project`` (see the module docstring)."""
    figures = _agreement(conn, project)
    activity = store_quality.labeller_activity(conn, project_id=project.id, cap_seconds=ACTIVE_GAP_SECONDS)
    run = store_runs.current_run(conn, project_id=project.id)
    model: dict[str, tuple[int, int]] = {}
    if run is not None and run.has_model:
        model = store_quality.model_agreement(conn, project_id=project.id, run_id=run.id, since=run.created_at)
    per_labeller = []
    for name, act in sorted(activity.items(), key=lambda kv: (-kv[1]["labels"], kv[0])):
        hours = act["active_seconds"] / 3600.0
        per_labeller.append({
            "name": name,
            "labels": act["labels"],
            "labels_per_hour": act["labels"] / hours if act["active_seconds"] >= MIN_ACTIVE_SECONDS else None,
            "agreement_with_consensus": figures.consensus_share(name),
            "agreement_with_model": _share(*model.get(name, (0, 0))),
        })
    return {**_figures(figures), "per_labeller": per_labeller}


def agreement_by_version(conn: Connection, *, project: Project) -> list[dict[str, Any]]:
    """Agreement per codebook version (issue 14): did a new definition help people agree? Per
    version that labels were made under (``version`` None: before any codebook), oldest first:
    ``labels`` (human and imported), ``items_with_overlap``, ``pairs``, ``percent`` and
    ``krippendorff_alpha`` over the items labelled by two or more people *under that version*
    (an item whose labels span versions counts in each version where it has two labellers)."""
    counts = store_codebook.labels_by_version(conn, project_id=project.id)
    groups: dict[int, list[tuple[int, str, int]]] = {v: [] for v in counts}
    for version, item, name, value in store_codebook.overlap_by_version(conn, project=project):
        groups.setdefault(version, []).append((item, name, value))
    out = []
    for version in sorted(groups):
        rows = groups[version]
        figures = _agreement_of(project, rows) if rows else None
        out.append({
            "version": version or None,
            "labels": counts.get(version, 0),
            "items_with_overlap": figures.items_with_overlap if figures else 0,
            "pairs": figures.pairs if figures else 0,
            "percent": figures.percent if figures else None,
            "krippendorff_alpha": figures.krippendorff_alpha if figures else None,
        })
    return out


def status_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The part of :func:`agreement_figures` (or :func:`agreement_report`) that ``labelloop
    status --json`` shows (multi-label projects: also ``alpha_per_tag`` and ``alpha_metric``)."""
    keys = ["items_with_overlap", "percent", "krippendorff_alpha", "cohen_kappa"]
    if report.get("multi_label"):
        keys += ["alpha_metric", "alpha_per_tag"]
    return {k: report[k] for k in keys}


def sets_summary(conn: Connection, *, project: Project) -> dict[str, Any] | None:
    """A multi-label project's model figures for ``labelloop status`` (None without a model):
    CV ``micro_f1``, ``macro_f1``, ``subset_accuracy``, ``hamming_loss`` with ``ci95``, each
    tag's ``threshold`` and CV precision/recall/F1/support in ``per_tag``, and ``audit`` (the
    same four with their 95 % ``intervals`` on the held-out audit items, or None before any)."""
    run = store_runs.current_run(conn, project_id=project.id)
    metrics = (run.metrics or {}) if run is not None and run.has_model else {}
    if not metrics.get("multi_label"):
        return None
    cv = metrics.get("cv") or {}
    thresholds = metrics.get("thresholds") or {}
    per_tag = {tag: {"threshold": thresholds.get(tag), **(cv.get("per_tag") or {}).get(tag, {})}
               for tag in metrics.get("tags") or []}
    audit = metrics.get("audit") or {}
    figures = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")
    return {
        "version": run.version if run is not None else None,
        **{name: cv.get(name) for name in figures}, "ci95": cv.get("ci95"), "per_tag": per_tag,
        "audit": {"labelled": audit.get("labelled", 0), **{name: audit.get(name) for name in figures},
                  "intervals": audit.get("intervals")} if audit.get("labelled") else None,
    }


def audit_view(audit: dict[str, Any] | None) -> dict[str, Any]:
    """A run's audit estimate (``labelled``, ``accuracy``, ``ci95``) for people: an accuracy
    only with its interval and enough audit items, else why not (see
    :func:`labelloop.learn.stopping.describe_audit`), and ``line``, the sentence of
    ``labelloop status``."""
    view = describe_audit(audit)
    micro = (audit or {}).get("micro_f1")
    if view["shown"] and micro is not None:  # label sets: exactly right sets, and micro-F1
        lo, hi = view["ci95"]
        micro_ci = ((audit or {}).get("intervals") or {}).get("micro_f1")
        micro_text = f"micro-F1 {micro:.3f}" + (f" (95 % CI {micro_ci[0]:.3f}-{micro_ci[1]:.3f})" if micro_ci else "")
        view["line"] = (f"{view['accuracy']:.1%} of tag sets exactly right (95 % CI {lo:.1%}-{hi:.1%}), {micro_text}, "
                        f"on {view['labelled']:,} random audit items the model never trained on; unlike CV, it is "
                        "unbiased")
    elif view["shown"]:
        lo, hi = view["ci95"]
        view["line"] = (f"{view['accuracy']:.1%} accurate (95 % CI {lo:.1%}-{hi:.1%}) on {view['labelled']:,} random "
                        "audit items the model never trained on; unlike CV, it is unbiased")
    else:
        view["line"] = f"none yet, {view['message']}"
    return view


def stability_text(stability: dict[str, Any] | None) -> str | None:
    """The sentence on a run's ``stability`` metrics (``kappa``, ``compared``,
    ``previous_version``), worded from the kappa; None without a kappa."""
    stability = stability if isinstance(stability, dict) else {}
    kappa = store_runs.metric_number(stability.get("kappa"))
    if kappa is None:
        return None
    previous = stability.get("previous_version")
    compared = store_runs.metric_number(stability.get("compared"))
    return describe_stability(kappa, since=f"v{previous}" if previous is not None else "the previous version",
                              compared=int(compared or 0))
