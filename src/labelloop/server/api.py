"""The JSON API of the labelling pages (and of scripts with a bearer token). OpenAPI at /docs.

(Bearer-token ``next`` and ``labels`` calls are answered by the same parts in
:mod:`labelloop.server.fastpath`, before FastAPI's routing; these routes document them.)

Every route needs a logged-in user (401); writes from a session cookie also need the
``X-CSRF-Token`` header. The labelling writes go through the process's single writer
(:mod:`labelloop.server.dispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from labelloop.server.deps import (
    AdminUser,
    CachedProjectDep,
    CurrentUser,
    ItemIdPath,
    check_csrf,
    current_user,
    open_project,
)
from labelloop.server import steering
from labelloop.server.dispatch import Dispatcher
from labelloop.server.notes import labels as noted
from labelloop.server.gold import Gold
from labelloop.server.responses import SafeJSONResponse, next_response
from labelloop.server.sets.bodies import label_answer, label_request
from labelloop.server.schemas import (
    ErrorPublic,
    LabelCreate,
    LabelPublic,
    NextPublic,
    LeasePublic,
    ProjectPublic,
    SkipCreate,
    StatsPublic,
    UndonePublic,
    UserPublic,
)
from labelloop.store import members as store_members
from labelloop.store import queue as store_queue
from labelloop.store import reading
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.projects import Project
from labelloop.store.users import User
from labelloop.store.stats import project_stats, projects_overview


async def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "send the body as JSON (Content-Type: application/json)")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 404, 409, 413, 415, 422)
}

router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(current_user)], responses=ERRORS)


@router.get("/me", response_model=UserPublic)
async def me(user: CurrentUser) -> dict[str, Any]:
    """Who you are."""
    return {"id": user.id, "name": user.name, "role": user.role}


@router.get("/users", response_model=list[UserPublic])
async def list_users(request: Request, _admin: AdminUser) -> list[dict[str, Any]]:
    """Every user (admins only)."""

    def load() -> list[dict[str, Any]]:
        with reading(request.app.state.engine) as conn:
            return [{"id": u.id, "name": u.name, "role": u.role} for u in store_users.list_users(conn)]

    return await run_in_threadpool(load)


@router.get("/projects", response_model=list[ProjectPublic])
async def list_projects(request: Request, user: CurrentUser) -> list[dict[str, Any]]:
    """The projects you may see (a labeller: those they are a member of; an admin: all), with
    their tags and progress."""

    def load() -> list[dict[str, Any]]:
        with reading(request.app.state.engine) as conn:
            visible = set(store_members.visible_project_names(conn, user=user))
            overview = [entry for entry in projects_overview(conn) if entry["name"] in visible]
            for entry in overview:
                entry["tags"] = store_projects.get_project(conn, name=entry["name"]).tag_names
            return overview

    return await run_in_threadpool(load)


@router.get("/projects/{project}/stats", response_model=StatsPublic)
async def stats(request: Request, project: CachedProjectDep, user: CurrentUser) -> dict[str, Any]:
    """Progress: items, labelled, per tag, per labeller, yours today and in total. In a
    multi-label project an item counts once per tag of its final set."""

    def load() -> dict[str, Any]:
        with reading(request.app.state.engine) as conn:
            return project_stats(conn, project=project, user_id=user.id)

    return await run_in_threadpool(load)


@dataclass(frozen=True)
class Labelling:
    """Everything a labelling write needs, resolved by one dependency (cheaper per request)."""

    user: User
    project: Project
    lease_seconds: int
    dispatcher: Dispatcher
    gold: Gold


async def _labelling(request: Request, project: str, user: CurrentUser) -> Labelling:
    await check_csrf(request)
    proj = await open_project(request.app.state, project, user)
    state = request.app.state
    return Labelling(user, proj, store_queue.lease_seconds_for(proj, state.settings.lease_seconds), state.dispatcher,
                     state.gold)


async def _labelling_json(request: Request, project: str, user: CurrentUser) -> Labelling:
    await require_json(request)
    return await _labelling(request, project, user)


LabellingDep = Annotated[Labelling, Depends(_labelling)]
LabellingJsonDep = Annotated[Labelling, Depends(_labelling_json)]


@router.post(
    "/projects/{project}/next",
    response_model=NextPublic,
    responses={204: {"description": "Nothing is left for you to label in this project."}},
)
async def next_item(
    ctx: LabellingDep, request: Request,
    queue: Annotated[str | None, Query(description="default, search, similar, likely, unsure or random")] = None,
    q: Annotated[str | None, Query(description="queue=search: the search query")] = None,
    item: Annotated[str | None, Query(description="queue=similar: an item's id")] = None,
    tag: Annotated[str | None, Query(description="queue=likely or unsure: a tag")] = None,
) -> Any:
    """The item to label next, leased to you (the same one again while your lease lives).

    Steering (issue 13, :mod:`labelloop.server.steering`): ``queue=search&q=...``,
    ``queue=similar&item=ID``, ``queue=likely&tag=T``, ``queue=unsure&tag=T``, ``queue=random``,
    or ``queue=default``; never audit draws. 422: a missing or unknown parameter or a bad search
    query; 403: steering is off in the project (labellers). Without them: today's queue.

    With the project's ``suggestions`` setting on, the answer may carry ``suggestion``: the
    model's ``top`` tag, the ``tags`` in the order to show them, and ``confidence`` (multi-label:
    the predicted ``set`` and ``proba`` aligned with ``tags``); never on audit or overlap items."""
    if request.query_params and steering.wants_steering(request.query_params):
        return await steering.steered_next(request.app.state, project=ctx.project, user=ctx.user,
                                           lease_seconds=ctx.lease_seconds, params=request.query_params)
    lease = await ctx.gold.claim(project=ctx.project, user_id=ctx.user.id, lease_seconds=ctx.lease_seconds)
    if lease is None:
        return Response(status_code=204)
    return next_response(lease, multi_label=ctx.project.multi_label)


@router.post("/projects/{project}/items/{item_id}/labels", response_model=LabelPublic, status_code=201,
             response_model_exclude_none=True)
async def label_item(ctx: LabellingJsonDep, item_id: ItemIdPath, body: LabelCreate) -> Response:
    """Label an item leased to you: ``{"label": "A"}`` with one of the project's tags, or in a
    multi-label project ``{"labels": ["A", "B"]}`` with the tags that apply (an empty list:
    none applies). The other shape is a 422 naming the right one.

    Optional (issue 14): ``"comment"`` (at most 2,000 characters) and ``"unsure": true`` (flags the
    item to the admins); both are recorded with the label, in its transaction."""
    request = label_request(ctx.project, ctx.user.id, item_id, body)
    await noted.record_label(ctx.gold, request, body)  # a gold item: a gold answer (server/gold.py)
    return SafeJSONResponse(label_answer(item_id, body), status_code=201)


@router.post("/projects/{project}/items/{item_id}/skip", status_code=204)
async def skip_item(ctx: LabellingDep, item_id: ItemIdPath,
                    body: Annotated[SkipCreate | None, Body()] = None) -> Response:
    """Pass on an item leased to you: it goes to others, never back to you. An optional JSON
    body says why: ``{"reason": "unclear"}`` (unclear, off-topic, needs-context or other) and/or
    ``{"comment": "..."}``; without a body, a plain skip."""
    await noted.record_skip(ctx.gold, project=ctx.project, user_id=ctx.user.id, item_id=item_id, body=body)
    return Response(status_code=204)


@router.post("/projects/{project}/items/{item_id}/renew", response_model=LeasePublic)
async def renew(ctx: LabellingDep, item_id: ItemIdPath) -> dict[str, Any]:
    """Extend your lease on an item (the page calls this while it is open)."""
    expires = await ctx.gold.renew(project=ctx.project, user_id=ctx.user.id, item_id=item_id,
                                   lease_seconds=ctx.lease_seconds)
    return {"expires_at": expires}


@router.post("/projects/{project}/undo", response_model=UndonePublic)
async def undo(ctx: LabellingDep) -> Any:
    """Undo your last label or skip in the project (a stack: each undo takes the latest one
    left): the item comes back to you, leased, and ``undone`` says which it was. 404: nothing
    to undo; 409: the item you skipped went to others meanwhile (the skip is forgotten)."""
    undone = await noted.undo(ctx.gold, project=ctx.project, user_id=ctx.user.id,
                              lease_seconds=ctx.lease_seconds)  # its comments and flags go with it
    if undone.lease is None:
        raise HTTPException(409, "the item you skipped went to another labeller meanwhile and cannot come back now "
                                 "(your skip is undone: it may come back to you later)")
    return next_response(undone.lease, undone=undone.what, multi_label=ctx.project.multi_label)
