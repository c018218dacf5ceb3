"""The model's admin pages and the "retrain now" request (admins only).

- ``GET /admin/projects/{project}/models``: the serving version, whether an orchestrator is
  working on the project (:func:`orchestrator_state`), the "retrain now" button, the history of versions (labels used, CV
  accuracy and macro-F1) with a learning-curve chart, and the head of the queue with why each
  item is there (priority, the strategy's score and its rank, predicted tag, confidence).
- ``GET /admin/projects/{project}/models/learning-curve.png``: CV score against labels (PNG).
- ``POST /admin/projects/{project}/models/retrain``: the button (form field ``csrf_token``).
- ``POST /api/projects/{project}/retrain``: the same for scripts (JSON, 202).

A retrain request only sets ``projects.retrain_requested_at``; the orchestrator (``labelloop
orchestrate`` or ``serve --orchestrate``) starts a round at its next check. Everything here
reads the store: the server never imports the learning code.

Whether an orchestrator works on the project: every orchestrator records each check of a
project (``orchestrator_heartbeats``, :mod:`labelloop.store.heartbeats`). One counts as working
when its last check is *fresh*: within :data:`FRESH_CHECKS` check intervals
(``LABELLOOP_ORCHESTRATE_INTERVAL`` of this server: 3 x 30 s = 90 s by default, at least
:data:`MIN_FRESH_SECONDS`), or while it holds the project's lock (a round in progress;
``orchestrate PROJECT`` holds it throughout) or another project's (busy with a round there,
it comes back after). Otherwise the page says "none".
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.server.deps import AdminUser, CsrfChecked, EngineDep, PageAdmin, ProjectDep, SettingsDep
from labelloop.server.formats import ago
from labelloop.server.pages import HtmlRoute, render
from labelloop.store import heartbeats as store_heartbeats
from labelloop.store import reading, writing
from labelloop.store import runs as store_runs
from labelloop.store import scores as store_scores
from labelloop.store.projects import Project
from labelloop.store.schema import utcnow

PREVIEW_ITEMS = 20
HISTORY_RUNS = 50
FRESH_CHECKS = 3  # an orchestrator's last check is fresh within this many check intervals
MIN_FRESH_SECONDS = 30.0
LOCK_FRESH_SECONDS = 60.0  # a lock row whose heartbeat (every 10 s) is this recent is held

pages = APIRouter(prefix="/admin/projects/{project}/models", route_class=HtmlRoute)
api = APIRouter(prefix="/api/projects/{project}")
router = APIRouter()


def models_url(project: Project) -> str:
    return "/admin/projects/" + quote(project.name, safe="") + "/models"


def fresh_seconds(interval: float) -> float:
    """How recent an orchestrator's last check must be to count as working."""
    return max(FRESH_CHECKS * interval, MIN_FRESH_SECONDS)


def _where(mode: str | None, holder: str, project: Project) -> str:
    host = holder.partition(":")[0]
    if mode == "server":
        return "in the server"
    if mode == "all":
        return f"orchestrate --all on {host}"
    if mode == "project":
        return f"orchestrate {project.name} on {host}"
    return f"holder {holder}"  # a lock without a recorded check yet


def orchestrator_state(conn: Any, project: Project, now: datetime, *, fresh: float) -> dict[str, Any] | None:
    """Whether an orchestrator works on ``project`` (see the module docstring), in a sentence
    (``text``) and in fields; None when no orchestrator ever checked it or holds its lock."""
    check = store_heartbeats.last_check(conn, project_id=project.id)
    lock = store_runs.lock_holder(conn, project_id=project.id)
    holding = lock is not None and (now - lock[1]).total_seconds() <= LOCK_FRESH_SECONDS
    if check is None and not holding:
        return None
    age = None if check is None else max(0.0, (now - check.checked_at).total_seconds())
    checked_fresh = age is not None and age <= fresh
    busy_elsewhere = (check is not None and not checked_fresh and not holding and store_heartbeats.holds_a_lock(
        conn, holder=check.holder, since=now - timedelta(seconds=LOCK_FRESH_SECONDS)))
    # Name the orchestrator of a fresh check, else the one holding the lock (a round in progress).
    holder = lock[0] if lock is not None and holding and not checked_fresh else check.holder  # type: ignore[union-attr]
    mode = check.mode if check is not None and check.holder == holder else None
    where = _where(mode, holder, project)
    last = "never checked it" if age is None else f"last check {ago(age)} ago"
    if checked_fresh:
        text = f"checked {ago(age)} ago ({where})"
    elif holding:
        text = f"working on this project now ({where}); {last}"
    elif busy_elsewhere:
        text = f"checked {ago(age)} ago ({where}); busy with a round of another project, back after it"
    else:
        text = f"none ({last}, {where})"
    return {
        "alive": checked_fresh or holding or busy_elsewhere,
        "text": text,
        "mode": mode,
        "holder": holder,
        "checked_at": None if check is None else check.checked_at.isoformat(),
        "seconds_ago": None if age is None else round(age, 1),
        "holds_lock": holding,
        "fresh_seconds": fresh,
    }


def _why(entry: dict[str, Any] | None, run: store_runs.ModelRun) -> str:
    if not run.has_model:
        return "cold start: typical item of a cluster"
    if entry is None:
        return "further down the order"
    candidates = (run.metrics or {}).get("candidates", 1000)
    if entry["score_rank"] > candidates:
        return "exploration: a random pick"
    return f"#{entry['score_rank']} most informative by {run.strategy}"


def _preview(conn: Any, project: Project, run: store_runs.ModelRun | None) -> list[dict[str, Any]]:
    if run is None:
        return []
    rows = store_scores.queue_preview(conn, project=project, run_id=run.id, limit=PREVIEW_ITEMS)
    top = {e["item_id"]: e for e in (run.metrics or {}).get("top", [])}
    for position, row in enumerate(rows, start=1):
        entry = top.get(row["item_id"])
        row["position"] = position
        row["score"] = None if entry is None else entry["score"]
        row["score_rank"] = None if entry is None else entry["score_rank"]
        row["why"] = _why(entry, run)
        shown = row["display"]  # JSONB does not keep key order: use the project's column order
        first = project.display_columns[0] if project.display_columns else next(iter(shown), None)
        row["title"] = str(shown.get(first, "") if first is not None else "")[:140]
    return rows


@pages.get("", response_class=HTMLResponse)
def models_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep,
                settings: SettingsDep) -> HTMLResponse:
    """Serving version, orchestrator, retrain button, history with learning curve, queue head."""
    now = utcnow()
    fresh = fresh_seconds(settings.orchestrate_interval)
    with reading(engine) as conn:
        current = store_runs.current_run(conn, project_id=project.id)
        history = store_runs.list_runs(conn, project_id=project.id, limit=HISTORY_RUNS)
        context = {
            "project": project,
            "url": "/admin/projects/" + quote(project.name, safe=""),
            "models_url": models_url(project),
            "current": current,
            "history": history,
            "pending": store_runs.retrain_pending(conn, project_id=project.id),
            "orchestrator": orchestrator_state(conn, project, now, fresh=fresh),
            "fresh_seconds": fresh,
            "fresh_checks": FRESH_CHECKS,
            "check_interval": settings.orchestrate_interval,
            "labels_now": store_runs.count_human_labels(conn, project_id=project.id),
            "preview": _preview(conn, project, current),
            "has_curve": any(r.status == "complete" and r.cv for r in history),
            "first_key": _first_figure(project)[0],
            "first_figure": _first_figure(project)[1],
            "notice": "Retrain requested: the orchestrator starts a round at its next check."
            if request.query_params.get("done") == "retrain" else None,
            "nav": "admin",
            "tab": "models",
        }
    return render(request, "models.html", context, user=user)


def _first_figure(project: Project) -> tuple[str, str]:
    """The run's headline CV figure (key in ``cv``, its name): accuracy, or micro-F1 on sets
    (a set's exact-match accuracy is shown beside it, not instead of it)."""
    return ("micro_f1", "micro-F1") if project.multi_label else ("accuracy", "accuracy")


@pages.get("/learning-curve.png", response_class=Response)
def learning_curve(project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """CV accuracy (micro-F1 on sets) and macro-F1 of each complete version against the labels
    it used (PNG)."""
    with reading(engine) as conn:
        runs = [r for r in store_runs.list_runs(conn, project_id=project.id) if r.status == "complete" and r.cv]
    runs.sort(key=lambda r: (r.labels_used, r.version))
    key, name = _first_figure(project)
    png = learning_curve_png(
        [r.labels_used for r in runs], [r.cv[key] for r in runs], [r.cv["macro_f1"] for r in runs], first=name
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=30"})


def learning_curve_png(labels: list[int], accuracy: list[float], macro_f1: list[float], *,
                       first: str = "accuracy") -> bytes:
    """A small line chart (matplotlib Agg, no pyplot state: safe in worker threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if labels:
        ax.plot(labels, accuracy, marker="o", color="#2f6fde", label=first)
        ax.plot(labels, macro_f1, marker="s", color="#e8833a", label="macro-F1")
        ax.legend(loc="lower right", frameon=False, fontsize=9)
    else:
        ax.text(0.5, 0.5, "no cross-validated version yet", ha="center", va="center", color="#7b8794",
                transform=ax.transAxes)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("human labels used", fontsize=9, color="#52606d")
    ax.xaxis.get_major_locator().set_params(integer=True)  # label counts: 40, not 40.0
    ax.set_ylabel("CV score", fontsize=9, color="#52606d")
    ax.grid(True, color="#e4e7eb", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors="#52606d")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white", metadata={"Software": None})
    fig.clear()
    return buf.getvalue()


def _request(engine: Any, project: Project) -> datetime:
    with writing(engine) as conn:
        return store_runs.request_retrain(conn, project_id=project.id)


@pages.post("/retrain", response_class=HTMLResponse)
def retrain_form(project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked) -> Response:
    """The "retrain now" button: record the request, then back to the page (303)."""
    _request(engine, project)
    return RedirectResponse(models_url(project) + "?done=retrain", status_code=303)


@api.post("/retrain", status_code=202)
def retrain_api(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked,
                settings: SettingsDep) -> dict[str, Any]:
    """Ask for a round now. Returns when it was requested and whether an orchestrator works on
    the project (as on the model page); without one nothing happens until one runs."""
    requested = _request(engine, project)
    with reading(engine) as conn:
        state = orchestrator_state(conn, project, utcnow(), fresh=fresh_seconds(settings.orchestrate_interval))
    alive = state is not None and state["alive"]
    return {
        "project": project.name,
        "requested_at": requested.isoformat(),
        "orchestrator": state,
        "message": "a round starts at the orchestrator's next check" if alive else
        "no orchestrator is running for this project: start `labelloop orchestrate` or `labelloop serve --orchestrate`",
    }


router.include_router(pages)
router.include_router(api)
