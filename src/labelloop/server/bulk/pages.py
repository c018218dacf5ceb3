"""The bulk labelling page (admins only): ``GET /admin/projects/{project}/bulk``.

Pick the items from a search (``q``), a ``likely`` list (``tag``), a ``similar`` list
(``item``) or a list of ids (``ids``) (:mod:`.sources`); the page previews them (text, current
label and its source), each with a checkbox (all checked; "select all" toggles them, a small
script, ``static/bulk.js``); choose a tag (multi-label: add or remove it) and apply. Below, the
project's past bulk operations, each with an Undo button.

- ``POST /admin/projects/{project}/bulk`` (form: ``tag``, ``item_ids`` (one per checked item),
  ``action``, ``csrf_token`` and the source fields to return to): apply; back with 303.
- ``POST /admin/projects/{project}/bulk/{bulk_id}/undo``: undo; back with 303.
A refused request re-renders the page with the error (4xx).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.server.admin import project_url
from labelloop.server.bulk.sources import LIMITS, Found, find
from labelloop.server.deps import CsrfChecked, EngineDep, PageAdmin, ProjectDep, RowIdPath
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.store import browse, reading, writing
from labelloop.store import bulklabels as store_bulk
from labelloop.store.projects import Project
from labelloop.store.users import User

router = APIRouter(prefix="/admin/projects/{project}/bulk", route_class=HtmlRoute)
SHOWN_CHARS = 300  # each previewed item shows this much of its text


def _source(q: str, tag: str, item: str, ids: str, limit: int) -> dict[str, Any]:
    return {"q": q.strip()[:1000], "tag": tag[:200], "item": item.strip()[:20], "ids": ids.strip()[:20000],
            "limit": limit if limit in LIMITS else LIMITS[0]}


def _snippet(project: Project, display: dict[str, Any]) -> tuple[str | None, str]:
    keys = [c for c in project.display_columns if c in display] or list(display)
    title = str(display[keys[0]]) if len(keys) > 1 and display[keys[0]] is not None else None
    body = " · ".join(str(display[k]) for k in (keys[1:] if len(keys) > 1 else keys) if display[k] is not None)
    return title, body[:SHOWN_CHARS] + ("…" if len(body) > SHOWN_CHARS else "")


def _page(request: Request, engine: Any, project: Project, user: User, source: dict[str, Any], *,
          error: str | None = None, applied: int | None = None, undone: int | None = None,
          status: int = 200) -> HTMLResponse:
    found, rows = Found(None, []), []
    with reading(engine) as conn:
        if error is None:
            try:
                item = None
                if source["item"]:
                    if not source["item"].isdigit():
                        raise InvalidInputError(f"not an item id: {source['item']!r}")
                    item = int(source["item"])
                found = find(conn, project=project, q=source["q"], tag=source["tag"], item=item, ids=source["ids"],
                             limit=source["limit"])
                rows = store_bulk.preview_items(conn, project=project, item_ids=found.ids)
            except LabelloopError as exc:
                error, status = str(exc), error_status(exc)
        ops = store_bulk.list_bulk(conn, project=project, limit=50)
        log = [e for e in browse.audit_entries(conn, project_id=project.id, limit=50)
               if str(e.get("action", "")).startswith("bulk.")][:20]
    context = {
        "project": project, "url": project_url(project), "source": source, "limits": LIMITS,
        "found": found, "rows": rows, "shown": {r.id: _snippet(project, r.display) for r in rows},
        "ops": ops, "log": log, "error": error, "notice": _notice(ops, applied, undone), "max_items": store_bulk.MAX_ITEMS,
        "back": urlencode({k: v for k, v in source.items() if v not in ("", None)}),
        "nav": "admin", "tab": "bulk",
    }
    return render(request, "admin/bulk.html", context, user=user, status=status)


@router.get("", response_class=HTMLResponse)
def bulk_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, q: str = "",
              tag: str = "", item: str = "", ids: str = "", limit: int = LIMITS[0]) -> HTMLResponse:
    """Preview the items of a search, a likely or similar list, or given ids; apply a tag."""
    return _page(request, engine, project, user, _source(q, tag, item, ids, limit),
                 applied=_int(request.query_params.get("applied")), undone=_int(request.query_params.get("undone")))


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 10 else None


def _notice(ops: list[store_bulk.BulkOp], applied: int | None, undone: int | None) -> str | None:
    for op in ops:
        if op.id == applied:
            verb = "removed from" if op.action == "remove" else "applied to"
            return f"Bulk operation #{op.id}: “{op.tag}” {verb} {op.n_items:,} items. A human label on an item wins."
        if op.id == undone:
            return f"Bulk operation #{op.id} undone: its {op.n_items:,} items are back as they were without it."
    return None


def _back(project: Project, source: dict[str, Any], **done: int) -> RedirectResponse:
    query = {k: v for k, v in source.items() if v not in ("", None)}
    return RedirectResponse(project_url(project, "bulk") + "?" + urlencode({**query, **done}), status_code=303)


@router.post("", response_class=HTMLResponse)
def apply_form(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    tag: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=20)] = "add",
    item_ids: Annotated[list[str] | None, Form()] = None,
    q: Annotated[str, Form(max_length=1000)] = "", list_tag: Annotated[str, Form(max_length=200)] = "",
    item: Annotated[str, Form(max_length=20)] = "", ids: Annotated[str, Form(max_length=20000)] = "",
    limit: Annotated[int, Form()] = LIMITS[0],
) -> Response:
    """Apply ``tag`` to the checked items as one bulk operation."""
    source = _source(q, list_tag, item, ids, limit)
    try:
        chosen = [int(i) for i in item_ids or [] if i.isascii() and i.isdigit() and len(i) <= 18]
        if item_ids and len(chosen) != len(item_ids):
            raise InvalidInputError("the form sent something that is not an item id; reload the page")
        if not chosen:
            raise InvalidInputError("no item is checked: check the items to label, or use \"select all\"")
        with writing(engine) as conn:
            done = store_bulk.apply_bulk(conn, project=project, tag=tag, item_ids=chosen, action=action,
                                         user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, source, error=str(exc), status=error_status(exc))
    return _back(project, source, applied=done["bulk_id"])


@router.post("/{bulk_id}/undo", response_class=HTMLResponse)
def undo_form(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    bulk_id: RowIdPath,
    q: Annotated[str, Form(max_length=1000)] = "", list_tag: Annotated[str, Form(max_length=200)] = "",
    item: Annotated[str, Form(max_length=20)] = "", ids: Annotated[str, Form(max_length=20000)] = "",
    limit: Annotated[int, Form()] = LIMITS[0],
) -> Response:
    """Undo bulk operation ``bulk_id`` as a whole."""
    source = _source(q, list_tag, item, ids, limit)
    try:
        with writing(engine) as conn:
            store_bulk.undo_bulk(conn, project=project, bulk_id=bulk_id, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, source, error=str(exc), status=error_status(exc))
    return _back(project, source, undone=bulk_id)
