"""Labeller-facing HTML pages: the project list and the labelling page.

The labelling page is a server-rendered shell; ``static/label.js`` drives it through the JSON
API (``/api/projects/{project}/...``) with the session cookie and the ``X-CSRF-Token`` header.
All user text reaches the page through Jinja2 autoescaping or ``textContent`` in the script,
never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError

from labelloop.errors import AlreadyExistsError, ConflictError, LabelloopError, NotFoundError
from labelloop.server.deps import EngineDep, PageUser, ProjectDep, SettingsDep, csrf_token
from labelloop.server.logins import TooManyLogins
from labelloop.server.responses import unstorable_message
from labelloop.store import reading
from labelloop.store.browse import label_totals_of_user
from labelloop.store.members import visible_project_names
from labelloop.store.queue import lease_seconds_for
from labelloop.store.stats import project_stats, projects_overview
from labelloop.store.users import User

ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


class HtmlRoute(APIRoute):
    """A route of an HTML page: errors come back as the error page, not as JSON.

    The login redirect (``LoginRequired``) is left to the app's handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail), headers=exc.headers)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'/'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()
                )
                return error_page(request, 400, f"invalid form or query: {problems}")
            except LabelloopError as exc:
                return error_page(request, error_status(exc), str(exc))
            except DataError as exc:  # the database refused a value (NUL in text, number out of range)
                return error_page(request, 400, unstorable_message(exc))

        return run


def error_status(exc: LabelloopError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (AlreadyExistsError, ConflictError)):
        return 409
    if isinstance(exc, TooManyLogins):
        return 503
    return 400


def error_page(request: Request, status: int, message: str, *, headers: dict[str, str] | None = None) -> Response:
    title = ERROR_TITLES.get(status, "Error")
    response = render(
        request, "error.html", {"title": title, "message": message, "status": status},
        user=getattr(request.state, "user", None), status=status,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


router = APIRouter(route_class=HtmlRoute)


def render(
    request: Request, name: str, context: dict[str, Any], *, user: User | None, status: int = 200
) -> HTMLResponse:
    """Render a template with the user, the CSRF token and no caching of the (private) page."""
    ctx = {"user": user, "csrf": csrf_token(request), **context}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/projects", response_class=HTMLResponse)
def project_list(request: Request, user: PageUser, engine: EngineDep) -> HTMLResponse:
    """The projects the user may see (a labeller: those they are a member of; an admin: all),
    with their progress and the user's own number of labels."""
    with reading(engine) as conn:
        visible = set(visible_project_names(conn, user=user))
        overview = [p for p in projects_overview(conn) if p["name"] in visible]
        mine = label_totals_of_user(conn, user_id=user.id)
    for p in overview:
        p["mine"] = mine.get(p["name"], 0)
    return render(request, "projects.html", {"projects": overview, "nav": "projects"}, user=user)


@router.get("/projects/{project}/label", response_class=HTMLResponse)
def label_page(
    request: Request, project: ProjectDep, user: PageUser, engine: EngineDep, settings: SettingsDep
) -> HTMLResponse:
    """The labelling page: one item at a time, tag buttons with number keys, progress. In a
    multi-label project the keys toggle tags, Enter submits the set and 0 submits "none of these"."""
    with reading(engine) as conn:
        stats = project_stats(conn, project=project, user_id=user.id)
    lease = lease_seconds_for(project, settings.lease_seconds)
    config = {
        "project": project.name,
        "api": "/api/projects/" + quote(project.name, safe=""),
        "columns": list(project.display_columns),
        "tags": project.tag_names,
        "csrf": csrf_token(request),
        "lease_seconds": lease,
        "show_ids": bool(project.setting("show_item_ids")),  # off: the page never shows external ids
        "multi_label": project.multi_label,  # number keys toggle tags, Enter submits, 0: none of these
        # The queue picker (issue 13): hidden for labellers when the project's steering is off.
        "steering": bool(project.setting("steering")) or user.is_admin,
        "stats": {k: stats[k] for k in ("items", "labelled", "yours_today", "yours_total")},
    }
    pct = 100.0 * stats["labelled"] / stats["items"] if stats["items"] else 0.0
    return render(
        request,
        "label.html",
        {"project": project, "tags": project.tag_names, "config": config, "stats": stats, "pct": pct,
         "nav": "projects", "history_url": "/projects/" + quote(project.name, safe="") + "/history"},
        user=user,
    )
