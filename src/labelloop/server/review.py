"""The review queue (admins only): items whose labellers disagree, and the admin's decision.

- ``GET /admin/projects/{project}/review``: the next items to review (ties first), each with
  its title and body (escaped, line breaks kept; a long body shows its first
  :data:`PREVIEW_CHARS` characters or :data:`PREVIEW_LINES` lines and a "show all" control, a
  ``<details>`` element: no script), every labeller's tag, the model's guess, and a form to decide.
- ``POST /admin/projects/{project}/review/{item_id}``: the form (fields ``label``,
  ``csrf_token``); back to the queue with 303.
- ``POST /admin/projects/{project}/review/{item_id}/set``: a multi-label item's decision, its
  whole set (fields ``labels``, one per checked tag, none: "none applies"; ``csrf_token``). A
  multi-label item shows each labeller's set, the votes per tag and the tags they tie on
  (:func:`labelloop.server.sets.review.set_view`).
- ``POST /api/projects/{project}/items/{item_id}/adjudicate`` ``{"label": ...}`` (multi-label:
  ``{"labels": [...]}``): the same for scripts (JSON; 403 for labellers, 404 unknown item, 422
  unknown tag or the wrong shape for the project).

The decision is final (:func:`labelloop.store.review.adjudicate`): export and training use it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import LabelloopError
from labelloop.server.admin import project_url
from labelloop.server.api import require_json
from labelloop.server.codebook.view import codebook_view
from labelloop.server.deps import AdminUser, CsrfChecked, EngineDep, ItemIdPath, PageAdmin, ProjectDep, current_user
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.server.schemas import AdjudicatePublic, LabelCreate
from labelloop.server.sets.bodies import decision
from labelloop.server.sets.review import set_view
from labelloop.store import reading, writing
from labelloop.store import codebook as store_codebook
from labelloop.store import review as store_review
from labelloop.store.projects import Project
from labelloop.store.users import User

PAGE = 25
PREVIEW_CHARS = 800
PREVIEW_LINES = 10

pages = APIRouter(prefix="/admin/projects/{project}/review", route_class=HtmlRoute)
api = APIRouter(prefix="/api/projects/{project}", tags=["api"])
router = APIRouter()


def capped(value: Any) -> dict[str, Any]:
    """A field's ``text`` and, when it is long, a ``preview`` (at most :data:`PREVIEW_CHARS`
    characters and :data:`PREVIEW_LINES` lines, cut at a space) and its ``length``."""
    text = "" if value is None else str(value)
    preview = "\n".join(text.split("\n")[:PREVIEW_LINES])
    if len(preview) > PREVIEW_CHARS:
        preview = preview[:PREVIEW_CHARS]
        space = max(preview.rfind(" "), preview.rfind("\n"))
        preview = preview[:space] if space > PREVIEW_CHARS // 2 else preview
    if preview == text:
        return {"text": text, "preview": None, "length": len(text)}
    return {"text": text, "preview": preview.rstrip() + " …", "length": len(text)}


def _shown(project: Project, item: store_review.ReviewItem) -> dict[str, Any]:
    """The item's title (the first display column, when there are several) and its other fields."""
    keys = [c for c in project.display_columns if c in item.display] or list(item.display)
    title = item.display[keys[0]] if len(keys) > 1 else None
    return {"title": title, "fields": [capped(item.display[k]) for k in (keys[1:] if len(keys) > 1 else keys)]}


def _page(request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
          status: int = 200) -> HTMLResponse:
    with reading(engine) as conn:
        queue = store_review.review_queue(conn, project=project, limit=PAGE)
        book = store_codebook.get_codebook(conn, project=project)  # shown above the queue, and pin forms
    decided = request.query_params.get("decided")
    yours = "set of tags" if project.multi_label else "label"
    context = {
        "project": project,
        "url": project_url(project),
        "queue": queue,
        "shown": {r.id: _shown(project, r) for r in queue.items},
        "sets": {r.id: set_view(project, r) for r in queue.items} if project.multi_label else {},
        "codebook": codebook_view(book, project=project, user=user),
        "error": error,
        "notice": f"Decided: item {decided} now has your {yours}." if decided and not error else None,
        "nav": "admin",
        "tab": "review",
    }
    return render(request, "admin/review.html", context, user=user, status=status)


@pages.get("", response_class=HTMLResponse)
def review_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Items whose labellers disagree, ties first, each with a form to decide its label."""
    return _page(request, engine, project, user)


@pages.post("/{item_id}", response_class=HTMLResponse)
def decide(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    item_id: ItemIdPath,
    label: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Record the admin's label for the item; back to the queue."""
    try:
        with writing(engine) as conn:
            state = store_review.adjudicate(conn, project=project, item_id=item_id, tag=label, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return RedirectResponse(project_url(project, "review") + "?" + urlencode({"decided": state["external_id"][:100]}),
                            status_code=303)


@pages.post("/{item_id}/set", response_class=HTMLResponse)
def decide_set(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    item_id: ItemIdPath,
    labels: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Record the admin's set for a multi-label item (the checked tags; none: none applies)."""
    try:
        with writing(engine) as conn:
            state = store_review.adjudicate(conn, project=project, item_id=item_id, tags=labels or [],
                                            user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return RedirectResponse(project_url(project, "review") + "?" + urlencode({"decided": state["external_id"][:100]}),
                            status_code=303)


@api.post("/items/{item_id}/adjudicate", response_model=AdjudicatePublic, response_model_exclude_none=True,
          dependencies=[Depends(current_user), Depends(require_json)])  # the login first: 401 before 415
def adjudicate(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked, item_id: ItemIdPath,
               body: LabelCreate) -> dict[str, Any]:
    """Decide an item's final label (admins): ``{"label": "A"}``, or in a multi-label project its
    whole set, ``{"labels": ["A", "B"]}`` (an empty list: none applies). The decision wins over
    every label on the item."""
    decided = decision(project, body)  # the wrong shape for the project: 422
    with writing(engine) as conn:
        return store_review.adjudicate(conn, project=project, item_id=item_id, user_id=user.id, **decided)


router.include_router(pages)
router.include_router(api)
