"""The flags page and the notes API (admins only): comments, "unsure" flags and skip reasons.

- ``GET /admin/projects/{project}/flags``: items with open notes (``state``: open, resolved,
  all; ``kind``: unsure, comment, skip), the newest first, :data:`PAGE` at a time (``after``:
  the cursor of the next page). Each item shows its text (escaped; a long body capped, as on
  the review page), its final label, and each note: who, what, when. The admin answers by
  deciding the item's label (the review decision, :func:`labelloop.store.review.adjudicate`,
  which also resolves the item's open notes), by the codebook (a link to
  ``/admin/projects/{project}/codebook``), or marks a note resolved.
- ``POST /admin/projects/{project}/flags/{item_id}/decide`` (form ``label``; multi-label
  ``labels``, one per checked tag; ``csrf_token``): decide and resolve; back with 303.
- ``POST /admin/projects/{project}/flags/notes/{note_id}/resolve`` (form ``csrf_token``).
- ``GET /api/projects/{project}/notes?state=open&kind=`` and
  ``POST /api/projects/{project}/notes/{note_id}/resolve``: the same for scripts (403 for
  labellers, 404 for an unknown note).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import LabelloopError
from labelloop.server.admin import project_url
from labelloop.server.deps import (
    AdminUser, CsrfChecked, EngineDep, ItemIdPath, PageAdmin, ProjectDep, current_user,
)
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.server.review import capped
from labelloop.server.schemas import NotePublic, ResolvedPublic
from labelloop.store import notes as store_notes
from labelloop.store import reading, writing
from labelloop.store import review as store_review
from labelloop.store.projects import Project
from labelloop.store.schema import SKIP_REASONS
from labelloop.store.tagsets import names_of
from labelloop.store.users import User

PAGE = 25
NoteIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
States = Literal["open", "resolved", "all"]
Kinds = Literal["", "unsure", "comment", "skip"]
REASON_WORDS = {"unclear": "unclear", "off-topic": "off-topic", "needs-context": "needs context", "other": "other"}
assert set(REASON_WORDS) == set(SKIP_REASONS)
NOTICES = {"resolved": "Note marked resolved.", "already": "That note was resolved already."}

pages = APIRouter(prefix="/admin/projects/{project}/flags", route_class=HtmlRoute)
api = APIRouter(prefix="/api/projects/{project}", tags=["api"])
router = APIRouter()


def _view(project: Project, item: store_notes.FlaggedItem) -> dict[str, Any]:
    """Title, capped fields and final label of a flagged item, as the template shows them."""
    keys = [c for c in project.display_columns if c in item.display] or list(item.display)
    title = item.display[keys[0]] if len(keys) > 1 else None
    body = keys[1:] if len(keys) > 1 else keys
    if project.multi_label:
        chosen = names_of(project, item.label_mask) if item.label_mask is not None else None
        label = ", ".join(chosen) if chosen else ("none of these" if chosen is not None else None)
    else:
        chosen = None
        label = {t.id: t.name for t in project.tags}.get(item.label_tag_id) if item.label_tag_id else None
    return {"title": title, "fields": [capped(item.display[k]) for k in body], "label": label,
            "chosen": chosen or [], "conflict": item.label_source == "conflict"}


def _page(request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
          status: int = 200) -> HTMLResponse:
    params = request.query_params
    state = params.get("state", "open")
    kind = params.get("kind", "")
    after_text = params.get("after", "")
    page = None
    try:
        after = int(after_text) if after_text else None
        with reading(engine) as conn:
            page = store_notes.flagged_items(conn, project=project, state=state, kind=kind or None, after=after,
                                             limit=PAGE)
    except ValueError:
        error, status = f"invalid page cursor {after_text[:40]!r}; start again from the first page", 422
    except LabelloopError as exc:
        error, status = str(exc), 422
    filters = {"state": state, "kind": kind}
    next_url = None
    if page is not None and page.next_after is not None:
        next_url = "?" + urlencode({**filters, "after": page.next_after})
    done = params.get("decided")
    context = {
        "project": project,
        "url": project_url(project),
        "filters": filters,
        "page": page,
        "views": {i.id: _view(project, i) for i in page.items} if page else {},
        "reasons": REASON_WORDS,
        "next_url": next_url,
        "here": "?" + urlencode(filters),
        "error": error,
        "notice": (f"Decided: item {done} has your label; its notes are resolved." if done
                   else NOTICES.get(params.get("notice", ""))) if not error else None,
        "nav": "admin",
        "tab": "flags",
    }
    return render(request, "admin/flags.html", context, user=user, status=status)


def _back(project: Project, **extra: str) -> RedirectResponse:
    """Back to the flags page, with a notice."""
    return RedirectResponse(project_url(project, "flags") + "?" + urlencode(extra), status_code=303)


@pages.get("", response_class=HTMLResponse)
def flags_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Flagged and commented items and skip reasons, the newest first, each with its notes."""
    return _page(request, engine, project, user)


@pages.post("/{item_id}/decide", response_class=HTMLResponse)
def decide(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    item_id: ItemIdPath,
    label: Annotated[str | None, Form(max_length=1000)] = None,
    labels: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Decide the item's label (multi-label: its set) as the review page does, and resolve its
    open notes, in one transaction."""
    decided: dict[str, Any] = {"tags": labels or []} if project.multi_label else {"tag": label}
    try:
        with writing(engine) as conn:
            state = store_review.adjudicate(conn, project=project, item_id=item_id, user_id=user.id, **decided)
            store_notes.resolve_item(conn, project=project, item_id=item_id, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return _back(project, decided=state["external_id"][:100])


@pages.post("/notes/{note_id}/resolve", response_class=HTMLResponse)
def resolve(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
            note_id: NoteIdPath) -> Response:
    """Mark one note resolved (answered elsewhere, or nothing to do)."""
    try:
        with writing(engine) as conn:
            changed = store_notes.resolve_note(conn, project=project, note_id=note_id, user_id=user.id)
    except LabelloopError as exc:
        return _page(request, engine, project, user, error=str(exc), status=error_status(exc))
    return _back(project, notice="resolved" if changed else "already")


@api.get("/notes", response_model=list[NotePublic], dependencies=[Depends(current_user)])
def list_notes(project: ProjectDep, user: AdminUser, engine: EngineDep,
               state: Annotated[States, Query(description="open, resolved or all")] = "open",
               kind: Annotated[Kinds, Query(description="unsure, comment or skip (empty: every kind)")] = "",
               item: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="one item's notes")] = None,
               ) -> list[dict[str, Any]]:
    """The project's comments, flags and skip reasons (admins), by item and age."""
    with reading(engine) as conn:
        found = store_notes.list_notes(conn, project=project, state=state, kind=kind or None, item_id=item)
    return [{**n.public(), "item_id": n.item_id, "created_at": n.created_at, "resolved_at": n.resolved_at}
            for n in found]


@api.post("/notes/{note_id}/resolve", response_model=ResolvedPublic, dependencies=[Depends(current_user)])
def resolve_api(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked,
                note_id: NoteIdPath) -> dict[str, Any]:
    """Mark a note resolved (admins). ``resolved`` false: it was already."""
    with writing(engine) as conn:
        changed = store_notes.resolve_note(conn, project=project, note_id=note_id, user_id=user.id)
    return {"id": note_id, "resolved": changed}


router.include_router(pages)
router.include_router(api)
