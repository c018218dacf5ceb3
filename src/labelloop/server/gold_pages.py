"""The data browser's gold form (admins only, CSRF): make an item a gold item, change its gold
answer, or make it an ordinary item again.

- ``POST /admin/projects/{project}/items/{item_id}/gold``: form fields ``csrf_token``,
  ``action`` (``mark`` or ``unmark``), and for ``mark`` the answer: ``tag`` (single-label) or
  ``tags`` (multi-label, repeated; none checked: "no tag applies"). Success: back to the item
  page (303, with a notice); a refusal: the item page again with the error (4xx).

The store does the work (:func:`labelloop.store.gold.mark_item`, ``unmark_gold``); this
process's gold cache forgets the project so that its labelling routes know at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.server.admin import project_url, render_item
from labelloop.server.deps import CsrfChecked, EngineDep, ItemIdPath, PageAdmin, ProjectDep
from labelloop.server.pages import HtmlRoute, error_status
from labelloop.store import gold as store_gold
from labelloop.store import writing

router = APIRouter(prefix="/admin", route_class=HtmlRoute)


@router.post("/projects/{project}/items/{item_id}/gold", response_class=HTMLResponse)
def gold_form(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    item_id: ItemIdPath,
    action: Annotated[str, Form(max_length=20)] = "mark",
    tag: Annotated[str, Form(max_length=200)] = "",
    tags: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Mark the item gold with the answer given (or a new answer), or unmark it."""
    try:
        with writing(engine) as conn:
            if action == "unmark":
                store_gold.unmark_gold(conn, project=project, item_id=item_id, user_id=user.id)
            elif action != "mark":
                raise InvalidInputError(f"unknown action {action!r}: mark or unmark")
            elif project.multi_label:
                store_gold.mark_item(conn, project=project, item_id=item_id, tags=list(tags or []), user_id=user.id)
            else:
                if not tag:
                    raise InvalidInputError("choose the gold answer's tag")
                store_gold.mark_item(conn, project=project, item_id=item_id, tag=tag, user_id=user.id)
    except LabelloopError as exc:
        return render_item(request, engine, project, user, item_id, error=str(exc), status=error_status(exc))
    gold = getattr(request.app.state, "gold", None)
    if gold is not None:
        gold.cache.forget(project.id)
    done = "gold-removed" if action == "unmark" else "gold-marked"
    return RedirectResponse(project_url(project, "items", str(item_id)) + "?done=" + done, status_code=303)
