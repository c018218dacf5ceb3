"""The codebook's admin page and forms (admins only; CSRF on every form):

- ``GET /admin/projects/{project}/codebook``: per active tag its definition in a text area
  (Markdown), the rendered preview, the pinned examples each with an Unpin button, and the
  versions so far.
- ``POST /admin/projects/{project}/codebook`` (fields ``tag``, ``definition``): save one
  definition; back with 303 (``#tag-N``).
- ``POST /admin/projects/{project}/codebook/pin`` and ``.../unpin`` (fields ``tag``,
  ``item_id``, ``back``): pin or unpin an example, from this page, the data browser's item page
  or the review page; ``back`` (``codebook``, ``item`` or ``review``) says where to return.
A refused form re-renders the codebook page with the error (4xx).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.server.admin import project_url
from labelloop.server.codebook.view import codebook_view
from labelloop.server.deps import CsrfChecked, EngineDep, PageAdmin, ProjectDep
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.store import reading, writing
from labelloop.store import codebook as store_codebook
from labelloop.store.projects import Project
from labelloop.store.users import User

router = APIRouter(prefix="/admin/projects/{project}/codebook", route_class=HtmlRoute)
HISTORY = 30  # versions listed on the page
NOTICES = {"saved": "Definition saved: new labels record the new codebook version.",
           "same": "Nothing changed: the definition is the same.",
           "pinned": "Example pinned.", "unpinned": "Example unpinned."}


def _page(request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
          status: int = 200, draft: dict[str, str] | None = None) -> HTMLResponse:
    with reading(engine) as conn:
        book = store_codebook.get_codebook(conn, project=project)
        versions = store_codebook.history(conn, project=project)[:HISTORY]
    context = {
        "project": project, "url": project_url(project), "book": codebook_view(book, project=project, user=user),
        "versions": versions, "draft": draft or {}, "error": error,
        "notice": None if error else NOTICES.get(request.query_params.get("done", "")),
        "max_chars": store_codebook.MAX_DEFINITION, "nav": "admin", "tab": "codebook",
    }
    return render(request, "admin/codebook.html", context, user=user, status=status)


@router.get("", response_class=HTMLResponse)
def codebook_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Edit each tag's definition, see and unpin its examples, read the versions so far."""
    return _page(request, engine, project, user)


def _anchor(project: Project, tag: str) -> str:
    names = project.tag_names
    return f"#tag-{names.index(tag) + 1}" if tag in names else ""


@router.post("", response_class=HTMLResponse)
def save_definition(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    tag: Annotated[str, Form(max_length=200)],
    definition: Annotated[str, Form(max_length=4 * store_codebook.MAX_DEFINITION)] = "",
) -> Response:
    """Save one tag's definition (a change raises the codebook version)."""
    try:
        with writing(engine) as conn:
            done = store_codebook.set_definition(conn, project=project, tag=tag, definition=definition,
                                                 user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc),
                     draft={tag: definition})
    return RedirectResponse(project_url(project, "codebook") + "?" + urlencode(
        {"done": "saved" if done["changed"] else "same"}) + _anchor(project, tag), status_code=303)


def _back(project: Project, back: str, item_id: int, done: str) -> RedirectResponse:
    if back == "item":
        return RedirectResponse(project_url(project, f"items/{item_id}") + "?" + urlencode({"done": done}),
                                status_code=303)
    if back == "review":
        return RedirectResponse(project_url(project, "review") + f"#item-{item_id}", status_code=303)
    return RedirectResponse(project_url(project, "codebook") + "?" + urlencode({"done": done}), status_code=303)


def _item_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and 0 < len(value) <= 18 and int(value) > 0):
        raise InvalidInputError(f"not an item id: {value[:20]!r}; reload the page")
    return int(value)


@router.post("/pin", response_class=HTMLResponse)
def pin_form(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    tag: Annotated[str, Form(max_length=200)], item_id: Annotated[str, Form(max_length=20)],
    back: Annotated[str, Form(max_length=20)] = "codebook",
) -> Response:
    """Pin an item as an example of a tag; back to where the form was."""
    try:
        item = _item_id(item_id)
        with writing(engine) as conn:
            store_codebook.pin_example(conn, project=project, tag=tag, item_id=item, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return _back(project, back, item, "pinned")


@router.post("/unpin", response_class=HTMLResponse)
def unpin_form(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    tag: Annotated[str, Form(max_length=200)], item_id: Annotated[str, Form(max_length=20)],
    back: Annotated[str, Form(max_length=20)] = "codebook",
) -> Response:
    """Unpin an example; back to where the form was."""
    try:
        item = _item_id(item_id)
        with writing(engine) as conn:
            store_codebook.unpin_example(conn, project=project, tag=tag, item_id=item, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return _back(project, back, item, "unpinned")
