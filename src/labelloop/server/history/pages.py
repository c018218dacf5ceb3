"""The "My history" page: ``GET /projects/{project}/history`` (members; reachable from the
labelling page by its link or the key ``y``, which also leads back).

Your last :data:`labelloop.store.history.HISTORY_LIMIT` labels, newest first: a snippet of each
item, your label, when, and, while the label is yours (:mod:`labelloop.store.history`), a change
control: the tag buttons (single-label: one tap changes it) or the tags as checkboxes with Save
(multi-label; none checked: none applies). Plain forms, no script needed:

- ``POST /projects/{project}/history/{item_id}`` (form: ``label``, or ``labels`` (one per checked
  tag) with ``set=1``; ``csrf_token``): change the label; back to the page at that row with 303.
  A refused change re-renders the page with the error (404 / 409 / 400).

The labelling page's lease is not touched: going back there serves the same item again.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from labelloop.errors import LabelloopError
from labelloop.server.deps import CsrfChecked, EngineDep, ItemIdPath, PageUser, ProjectDep
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.store import history as store_history
from labelloop.store import reading
from labelloop.store.projects import Project
from labelloop.store.schema import utcnow
from labelloop.store.users import User

router = APIRouter(prefix="/projects/{project}/history", route_class=HtmlRoute)


def history_url(project: Project) -> str:
    return "/projects/" + quote(project.name, safe="") + "/history"


def _notice(entries: list[store_history.MyLabel], changed: str | None) -> str | None:
    if not changed or not changed.isascii() or not changed.isdigit() or len(changed) > 19:
        return None
    for e in entries:
        if e.item_id == int(changed):
            value = e.label if e.labels is None else (", ".join(e.labels) or "none of these")
            return f"Your label is now “{value}”."
    return None


def _page(request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
          status: int = 200) -> HTMLResponse:
    with reading(engine) as conn:
        entries = store_history.my_labels(conn, project=project, user_id=user.id)
    now = utcnow()
    context = {
        "project": project, "entries": entries, "tags": project.tag_names, "multi": project.multi_label,
        "show_ids": bool(project.setting("show_item_ids")), "limit": store_history.HISTORY_LIMIT,
        "ages": {e.item_id: (now - e.labelled_at).total_seconds() for e in entries},
        "action": history_url(project), "label_url": "/projects/" + quote(project.name, safe="") + "/label",
        "error": error, "notice": None if error else _notice(entries, request.query_params.get("changed")),
        "nav": "projects",
    }
    return render(request, "history.html", context, user=user, status=status)


@router.get("", response_class=HTMLResponse)
def history_page(request: Request, project: ProjectDep, user: PageUser, engine: EngineDep) -> HTMLResponse:
    """Your last labels in the project, each with a change control while it is yours."""
    return _page(request, engine, project, user)


@router.post("/{item_id}", response_class=HTMLResponse)
async def change_form(
    request: Request, project: ProjectDep, user: PageUser, engine: EngineDep, _csrf: CsrfChecked,
    item_id: ItemIdPath,
    label: Annotated[str | None, Form(max_length=200)] = None,
    labels: Annotated[list[str] | None, Form()] = None,
    set_: Annotated[str, Form(alias="set", max_length=1)] = "",
) -> Response:
    """Change your label on ``item_id`` (a tag button, or the checked tags with ``set=1``)."""
    if project.multi_label and set_ == "1":
        value: dict[str, Any] = {"tags": list(labels or [])}
    elif project.multi_label:
        value = {"tags": None, "tag": label}  # the store words the refusal of the wrong shape
    else:
        value = {"tag": label, "tags": labels}

    def change(conn: Any) -> store_history.Changed:
        return store_history.change_label(conn, project=project, user_id=user.id, item_id=item_id, **value)

    try:
        await request.app.state.dispatcher.run(change)
    except LabelloopError as exc:
        return await _rerender(request, engine, project, user, str(exc), error_status(exc))
    return RedirectResponse(f"{history_url(project)}?changed={item_id}#row-{item_id}", status_code=303)


async def _rerender(request: Request, engine: Any, project: Project, user: User, error: str,
                    status: int) -> HTMLResponse:
    return await run_in_threadpool(_page, request, engine, project, user, error=error, status=status)
