"""Admin HTML pages and their form POSTs (admins only: labellers get 403).

- ``GET /admin``: every project's progress, labels per labeller, model runs and charts.
- ``GET /admin/projects/{project}/charts/{balance,activity}.png``: server-rendered charts.
- ``GET /admin/projects/{project}/browse``: the data browser (search, filters, keyset pages;
  each field cut at :data:`SHOWN_CHARS` characters).
- ``GET /admin/projects/{project}/items/{item_id}``: one item in full, with its labels.
- ``GET|POST /admin/projects/{project}/tags``: add (or reactivate), rename, merge and retire
  tags (audit-logged; each requests a retrain).
- ``/admin/users``: see :mod:`labelloop.server.admin_users`.

Every POST needs the session's CSRF token (form field ``csrf_token``); a successful POST
redirects back (303) with a short notice code, a failed one re-renders the page with the error.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from labelloop.errors import LabelloopError, SearchSyntaxError
from labelloop.server import admin_users, charts
from labelloop.server.deps import CsrfChecked, EngineDep, ItemIdPath, PageAdmin, ProjectDep
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.store import browse, reading, search, search_syntax, writing
from labelloop.store import notes as store_notes
from labelloop.store import gold as store_gold
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store import tags as store_tags
from labelloop.store import users as store_users
from labelloop.store.bulklabels import bulk_ids_of
from labelloop.store.history import label_changes
from labelloop.store.codebook import pinned_tags
from labelloop.store.labels import label_counts, labelled_items
from labelloop.store.projects import Project
from labelloop.store.stats import project_stats
from labelloop.store.tagsets import names_of
from labelloop.store.users import User

router = APIRouter(prefix="/admin", route_class=HtmlRoute)
router.include_router(admin_users.router)

CHART_MAX_AGE = 30  # seconds a browser may reuse a chart before asking again (ETag: 304)
PAGE_SIZES = (25, 50, 100, 200)
SHOWN_CHARS = 2000  # the data browser cuts each field there ("…"); the item page shows it all
NOTICES = {
    "tag-added": "Tag added.",
    "tag-reactivated": "Tag reactivated; its earlier labels count again.",
    "tag-renamed": "Tag renamed; its labels follow it.",
    "tag-merged": "Tags merged: every label moved, the first tag is retired.",
    "tag-retired": "Tag retired: labellers no longer see it; its labels are kept but no longer count.",
    "gold-marked": "Gold answer saved: the item is a gold item.",
    "gold-removed": "The item is no longer a gold item; its gold answers were deleted.",
    "pinned": "Pinned as an example.",
    "unpinned": "Unpinned.",
}


def project_url(project: Project, *rest: str) -> str:
    return "/admin/projects/" + quote(project.name, safe="") + "".join("/" + r for r in rest)


# ---- overview -----------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
def overview(request: Request, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Every project: items, progress, labels per labeller (today and in total), latest model."""
    cards = []
    with reading(engine) as conn:
        for name in store_projects.list_project_names(conn):
            project = store_projects.get_project(conn, name=name)
            stats = project_stats(conn, project=project)
            cards.append(
                {
                    "project": project,
                    "stats": stats,
                    "labellers": browse.labeller_counts(conn, project_id=project.id),
                    "run": store_runs.current_run(conn, project_id=project.id),
                    "url": project_url(project),
                }
            )
    return render(request, "admin/overview.html", {"cards": cards, "nav": "admin"}, user=user)


def png_response(request: Request, png: bytes) -> Response:
    """PNG bytes with a short private cache and an ETag (304 when the browser has them)."""
    etag = '"' + hashlib.sha256(png).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"private, max-age={CHART_MAX_AGE}", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


@router.get("/projects/{project}/charts/balance.png", response_class=Response)
def balance_chart(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """Final labels per tag (PNG); multi-label: items per tag of their final set, with shares of
    the labelled items."""
    with reading(engine) as conn:
        counts = label_counts(conn, project_id=project.id)
        labelled = labelled_items(conn, project_id=project.id, multi_label=True) if project.multi_label else None
    per_tag = {t.name: counts.get(t.id, 0) for t in project.tags if not t.retired or counts.get(t.id)}
    if labelled is not None:
        return png_response(request, charts.balance_png(per_tag, title="Items per tag", labelled=labelled))
    return png_response(request, charts.balance_png(per_tag))


@router.get("/projects/{project}/charts/activity.png", response_class=Response)
def activity_chart(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> Response:
    """Human labels per day over the last 30 days (PNG)."""
    with reading(engine) as conn:
        per_day = browse.labels_per_day(conn, project_id=project.id, days=30)
    return png_response(request, charts.activity_png(per_day))


# ---- data browser ---------------------------------------------------------------------------
@router.get("/projects/{project}/browse", response_class=HTMLResponse)
def browse_page(
    request: Request,
    project: ProjectDep,
    user: PageAdmin,
    engine: EngineDep,
    q: str = "",
    ext: str = "",
    tag: str = "",
    source: str = "",
    labelled: str = "",
    labeller: str = "",
    notes: str = "",
    sort: str = "id",
    after: str = "",
    size: int = 50,
    page: int = 1,
) -> HTMLResponse:
    """Items matching the filters, one keyset page at a time ("next" carries the cursor)."""
    filters = {"q": q.strip(), "ext": ext.strip(), "tag": tag, "source": source, "labelled": labelled, "labeller": labeller,
               "notes": notes, "sort": sort, "size": size if size in PAGE_SIZES else 50}
    error = None
    status = 200
    result = None
    matches = None  # (count, exact) of a full-text search
    node = None
    with reading(engine) as conn:
        names = [u.name for u in store_users.list_users(conn)]
        try:
            if filters["q"]:
                node = search_syntax.parse(filters["q"])
                matches = search.count_matches(conn, project_id=project.id, query=filters["q"])
            result = browse.browse_items(
                conn,
                project=project,
                search=filters["ext"],
                text_query=filters["q"],
                tag=tag or None,
                source=source or None,
                labelled={"yes": True, "no": False}.get(labelled),
                labeller=labeller or None,
                notes=notes or None,
                sort=sort,
                after=after or None,
                limit=filters["size"],
            )
        except SearchSyntaxError as exc:
            error, status, node = str(exc), 422, None
        except LabelloopError as exc:
            error, status = str(exc), 400
        bulk_ids = bulk_ids_of(conn, item_ids=[r.id for r in result.rows if r.label_source == "bulk"]) if result else {}
    query = {k: v for k, v in filters.items() if v not in ("", None)}
    next_url = None
    if result is not None and result.next_cursor:
        next_url = "?" + urlencode({**query, "after": result.next_cursor, "page": max(page, 1) + 1})
    context = {
        "project": project,
        "url": project_url(project),
        "filters": filters,
        "rows": result.rows if result else [],
        "bulk_ids": bulk_ids,
        "next_url": next_url,
        "first_url": "?" + urlencode(query) if after else None,
        "page": max(page, 1),
        "error": error,
        "matches": matches,
        "highlight": lambda text: search_syntax.highlight_segments(text, node),
        "users": names,
        "sources": browse.SOURCES,
        "sorts": list(browse.SORTS),
        "page_sizes": PAGE_SIZES,
        "columns": list(project.display_columns),
        "cap": SHOWN_CHARS,
        "nav": "admin",
        "tab": "browse",
    }
    return render(request, "admin/browse.html", context, user=user, status=status)


@router.get("/projects/{project}/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep,
              item_id: ItemIdPath) -> HTMLResponse:
    """One item in full (every field, escaped) with its labels, final label and prediction,
    and the form that makes it a gold item (:mod:`labelloop.server.gold_pages`)."""
    return render_item(request, engine, project, user, item_id)


def render_item(request: Request, engine: Any, project: Project, user: User, item_id: int, *,
                error: str | None = None, status: int = 200) -> HTMLResponse:
    with reading(engine) as conn:
        row = browse.browse_item(conn, project=project, item_id=item_id)
        bulk_ids = bulk_ids_of(conn, item_ids=[row.id]) if row.label_source == "bulk" else {}
        gold = store_gold.gold_answer_of(conn, project=project, item_id=item_id)
        changes = label_changes(conn, project=project, item_id=row.id)  # labellers' changes (My history)
        pinned = pinned_tags(conn, project=project, item_id=row.id)
        item_notes = store_notes.list_notes(conn, project=project, state="all", item_id=row.id)
    keys = [c for c in project.display_columns if c in row.display] + [
        k for k in row.display if k not in project.display_columns]
    gold_names = None if gold is None else (names_of(project, gold) if project.multi_label
                                            else [project.tag_name(gold)])
    context = {"project": project, "url": project_url(project), "row": row, "keys": keys, "nav": "admin",
               "tab": "browse", "bulk_ids": bulk_ids, "gold": gold_names, "changes": changes, "pinned": pinned,
               "notes": item_notes,
               "error": error,
               "notice": NOTICES.get(request.query_params.get("done", ""))}
    return render(request, "admin/item.html", context, user=user, status=status)


# ---- tags -----------------------------------------------------------------------------------
def _tags_page(
    request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
    status: int = 200, form: dict[str, str] | None = None,
) -> HTMLResponse:
    with reading(engine) as conn:
        project = store_projects.get_project(conn, name=project.name)
        counts = label_counts(conn, project_id=project.id)
        log = browse.audit_entries(conn, project_id=project.id, limit=30)
    context = {
        "project": project,
        "url": project_url(project),
        "tags": [(t, counts.get(t.id, 0)) for t in project.tags],
        "log": log,
        "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "form": form or {},
        "nav": "admin",
        "tab": "tags",
    }
    return render(request, "admin/tags.html", context, user=user, status=status)


@router.get("/projects/{project}/tags", response_class=HTMLResponse)
def tags_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """The project's tags with their label counts, the add and rename forms, the audit log."""
    return _tags_page(request, engine, project, user)


def _tag_change(request: Request, engine: Any, project: Project, user: User, change: Any, done: Any,
                form: dict[str, str]) -> Response:
    """Run one tag change in a transaction; back to the tags page (303), or the page with the error."""
    try:
        with writing(engine) as conn:
            outcome = change(conn)
    except LabelloopError as exc:
        return _tags_page(request, engine, project, user, error=str(exc), status=error_status(exc), form=form)
    cache = getattr(request.app.state, "project_cache", None)
    if cache is not None:
        cache.clear()  # the labelling routes see the new tags at once in this process
    notice = done(outcome) if callable(done) else done
    return RedirectResponse(project_url(project, "tags") + "?done=" + notice, status_code=303)


@router.post("/projects/{project}/tags", response_class=HTMLResponse)
def add_tag(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Append a tag at the end of the project's order (or reactivate a retired one)."""
    return _tag_change(
        request, engine, project, user,
        lambda conn: store_tags.add_tag(conn, project=project, name=name, user_id=user.id),
        lambda outcome: "tag-" + outcome, {"name": name},  # tag-added or tag-reactivated
    )


@router.post("/projects/{project}/tags/rename", response_class=HTMLResponse)
def rename_tag(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    old: Annotated[str, Form(max_length=1000)],
    new: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Rename a tag in place (labels refer to its id, so they follow)."""
    return _tag_change(
        request, engine, project, user,
        lambda conn: store_tags.rename_tag(conn, project=project, old=old, new=new, user_id=user.id),
        "tag-renamed", {"old": old, "new": new},
    )


@router.post("/projects/{project}/tags/merge", response_class=HTMLResponse)
def merge_tags(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    source: Annotated[str, Form(max_length=1000)],
    into: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Move every label of ``source`` to ``into``, then retire ``source``."""
    return _tag_change(
        request, engine, project, user,
        lambda conn: store_tags.merge_tags(conn, project=project, source=source, into=into, user_id=user.id),
        "tag-merged", {"source": source, "into": into},
    )


@router.post("/projects/{project}/tags/retire", response_class=HTMLResponse)
def retire_tag(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Stop offering a tag; its labels stay for history but no longer count."""
    return _tag_change(
        request, engine, project, user,
        lambda conn: store_tags.retire_tag(conn, project=project, name=name, user_id=user.id),
        "tag-retired", {"retire": name},
    )
