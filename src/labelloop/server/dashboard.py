"""The project dashboard (admins only): progress, balance, model quality, agreement, labellers,
their accuracy on gold items (with a warning naming the labellers flagged below the project's
``gold_min_accuracy``).

- ``GET /admin/projects/{project}/dashboard``: the page.
- ``GET /admin/projects/{project}/dashboard/{progress,quality,confusion}.png``: its charts
  (matplotlib, server-rendered; the label balance is ``/charts/balance.png`` of the overview).

The model's figures come from the metrics of its runs, written by the orchestrator:
``cv`` (cross-validation on the labelled items), ``audit`` (accuracy on the held-out random
audit items, which no model trains on, with a 95 % interval), ``stability`` and
``advice`` (whether labelling more is worth it). Runs made before these existed lack them;
every key is read defensively (the audit and the advice by :func:`labelloop.store.runs.run_quality`,
as for ``labelloop status``). Agreement figures are computed on request by
:func:`labelloop.orchestrator.quality.agreement_report` (the page) and ``agreement_figures``
(the confusion chart: the overlap items alone), imported on first use so that a web worker
loads scikit-learn only when an admin opens the dashboard.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from labelloop.server import charts
from labelloop.server.admin import png_response, project_url
from labelloop.server.deps import EngineDep, PageAdmin, ProjectDep
from labelloop.server.pages import HtmlRoute, render
from labelloop.store import quality as store_quality
from labelloop.store import reading
from labelloop.store import review as store_review
from labelloop.store import runs as store_runs
from labelloop.store.projects import Project
from labelloop.store.runs import metric_number
from labelloop.store.stats import project_stats

CV_VERSUS_AUDIT = (
    "Cross-validation is computed on the labelled items, which active learning chose because the model was "
    "unsure of them, so it under-reads (or over-reads) the accuracy on the rest; the audit estimate uses items "
    "drawn at random and never trained on, so it is an unbiased estimate of the accuracy of the model's labels."
)
HISTORY_RUNS = 200

router = APIRouter(prefix="/admin/projects/{project}/dashboard", route_class=HtmlRoute)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def model_view(run: store_runs.ModelRun | None) -> dict[str, Any]:
    """What the dashboard says about the serving model (every key optional in old runs). The
    audit estimate and the stability sentence are worded with the stopping advice's thresholds
    (:func:`labelloop.orchestrator.quality.audit_view`, ``stability_text``). A multi-label run
    (``metrics["multi_label"]``) adds ``sets``: its CV micro- and macro-F1, exact sets and
    Hamming loss, and the audit's micro-F1 (:func:`set_figures`)."""
    if run is None or not run.has_model:
        return {"run": run, "cv": None, "audit": None, "stability": None, "advice": "no model yet", "stop": False}
    from labelloop.orchestrator.quality import audit_view, stability_text  # scikit-learn: on first use

    metrics = _dict(run.metrics)
    cv = _dict(metrics.get("cv"))
    quality = store_runs.run_quality(run)  # audit and advice
    advice = quality["advice"]
    audit = quality["audit"]
    return {
        "run": run,
        "cv": {"accuracy": metric_number(cv.get("accuracy")), "macro_f1": metric_number(cv.get("macro_f1")),
               "folds": cv.get("folds")} if cv else None,
        "audit": None if audit is None else {**audit_view(audit), "correct": audit["correct"]},
        "stability": stability_text(metrics.get("stability")),
        "advice": advice["message"] if advice else "no stopping advice for this version (it predates the audit)",
        "stop": bool(advice and advice["stop"]),
        "sets": set_figures(metrics) if metrics.get("multi_label") else None,
    }


def set_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """A multi-label run's figures, read defensively: ``cv`` and ``audit`` each with
    ``micro_f1``, ``macro_f1``, ``subset_accuracy`` (sets exactly right) and ``hamming_loss``."""
    names = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")
    cv, audit = _dict(metrics.get("cv")), _dict(metrics.get("audit"))
    return {"cv": {n: metric_number(cv.get(n)) for n in names},
            "audit": {n: metric_number(audit.get(n)) for n in names}}


def _agreement(conn: Any, project: Project, *, full: bool = True) -> dict[str, Any]:
    """``agreement_report``, or with ``full=False`` the lighter ``agreement_figures`` (no
    per-labeller table)."""
    from labelloop.orchestrator.quality import agreement_figures, agreement_report  # scikit-learn: on first use

    return (agreement_report if full else agreement_figures)(conn, project=project)


def _gold(conn: Any, project: Project) -> dict[str, Any]:
    """Each labeller's accuracy on gold items (:func:`labelloop.orchestrator.gold.gold_report`)."""
    from labelloop.orchestrator.gold import gold_report

    return gold_report(conn, project=project)


def _by_version(conn: Any, project: Project) -> list[dict[str, Any]]:
    """Agreement per codebook version (empty for a project that never had a codebook)."""
    from labelloop.orchestrator.quality import agreement_by_version  # scikit-learn: on first use

    rows = agreement_by_version(conn, project=project)
    return rows if any(r["version"] is not None for r in rows) else []


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Progress, label balance, model quality (CV beside the audit estimate), stopping advice,
    agreement between labellers and the per-labeller table."""
    with reading(engine) as conn:
        stats = project_stats(conn, project=project)
        report = _agreement(conn, project)
        model = model_view(store_runs.current_run(conn, project_id=project.id))
        to_review = store_review.review_queue(conn, project=project, limit=1)
        gold = _gold(conn, project)
        by_version = _by_version(conn, project)
    kappas = [(pair, kappa, report["kappa_items"].get(pair, 0)) for pair, kappa in report["cohen_kappa"].items()]
    context = {
        "project": project,
        "url": project_url(project),
        "stats": stats,
        "report": report,
        "kappas": kappas,
        "model": model,
        "explanation": CV_VERSUS_AUDIT,
        "to_review": to_review.total,
        "gold": gold,
        "by_version": by_version,
        "nav": "admin",
        "tab": "dashboard",
    }
    return render(request, "admin/dashboard.html", context, user=user)


@router.get("/progress.png", response_class=Response)
def progress_chart(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """Cumulative human labels per UTC day since the first label (PNG)."""
    with reading(engine) as conn:
        progress = store_quality.label_progress(conn, project_id=project.id)
    return png_response(request, charts.progress_png(progress))


@router.get("/quality.png", response_class=Response)
def quality_chart(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """Learning curve: CV accuracy and macro-F1 and the audit accuracy with its 95 % band (PNG)."""
    with reading(engine) as conn:
        runs = store_runs.list_runs(conn, project_id=project.id, limit=HISTORY_RUNS)
    points = []
    for run in runs:
        if run.status != "complete" or not run.has_model:
            continue
        cv = _dict(run.cv)
        audit = store_runs.run_quality(run)["audit"] or {}
        interval = audit.get("ci95")
        points.append({
            "labels": run.labels_used,
            # multi-label: the CV micro-F1 (the audit's accuracy is then the share of exact sets)
            "cv_accuracy": metric_number(cv.get("micro_f1" if project.multi_label else "accuracy")),
            "cv_macro_f1": metric_number(cv.get("macro_f1")),
            "audit_accuracy": audit.get("accuracy"),
            "audit_low": interval[0] if interval else None,
            "audit_high": interval[1] if interval else None,
        })
    return png_response(request, charts.quality_curve_png(points, sets=project.multi_label))


@router.get("/confusion.png", response_class=Response)
def confusion_chart(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """Heat map of label pairs between labellers on the same items (PNG); multi-label: of the
    tags one labeller gave *instead of* another's (``confusion["instead"]``)."""
    with reading(engine) as conn:
        confusion = _agreement(conn, project, full=False)["confusion"]
    if project.multi_label and confusion.get("instead") is not None:
        return png_response(request, charts.confusion_png(confusion["tags"], confusion["instead"],
                                                          title="Which tags labellers give instead of each other",
                                                          empty="no tag given instead of another yet"))
    return png_response(request, charts.confusion_png(confusion["tags"], confusion["matrix"]))
