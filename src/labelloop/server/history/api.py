"""The My history API (members of the project; a non-member gets the project's 404):

- ``GET /api/projects/{project}/history?limit=50``: your own last labels (1..200), newest first,
  each with a snippet of the item, your label, when, its changes and whether you may still change
  it (``changeable``, else ``reason``).
- ``PUT /api/projects/{project}/items/{item_id}/labels`` with the body of ``POST`` (``{"label":
  ...}`` or ``{"labels": [...]}``, checked by :func:`labelloop.server.sets.bodies.label_request`):
  change your label on the item; answers 200 with the label now, ``changed`` (false when it was
  that already: nothing written) and the item's final label. 409 with one line when the label is
  not yours to change (none of yours on the item, or an admin decided the item), 404 for an item
  that is not the project's, 422 for the wrong shape or an unknown tag. Needs no lease and takes
  none. Cookie sessions send ``X-CSRF-Token``, as for every write.

The change runs on the process's writer (:mod:`labelloop.server.dispatch`), like the labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from labelloop.server.api import ERRORS, require_json
from labelloop.server.deps import CsrfChecked, CurrentUser, EngineDep, ItemIdPath, ProjectDep, current_user
from labelloop.server.schemas import LabelCreate
from labelloop.server.sets.bodies import label_request
from labelloop.store import history as store_history
from labelloop.store import reading

router = APIRouter(prefix="/api/projects/{project}", tags=["api"], responses=ERRORS)


class MyLabelPublic(BaseModel):
    item_id: int
    external_id: str | None = Field(description="Present when the project shows item ids (show_item_ids).")
    snippet: str = Field(description=f"The item's text, at most {store_history.SNIPPET_CHARS} characters.")
    label: str | None = Field(None, description="Single-label projects: your label.")
    labels: list[str] | None = Field(None, description="Multi-label projects: your set (empty: none applies).")
    labelled_at: datetime
    changed_at: datetime | None = Field(description="Your last change of this label, if any.")
    changes: int
    final: str | None = Field(description="The item's final label now (multi-label: its set, comma-separated).")
    final_source: str | None = Field(description="'human', 'conflict', 'bulk' or null.")
    changeable: bool = Field(description="Whether the label is still yours to change.")
    reason: str | None = Field(description="Why not, when it is not.")


class ChangedPublic(BaseModel):
    item_id: int
    label: str | None = None
    labels: list[str] | None = None
    changed: bool = Field(description="False when the label was that already (nothing written).")
    final: str | None
    final_source: str | None


@router.get("/history", response_model=list[MyLabelPublic])
def my_history(project: ProjectDep, user: CurrentUser, engine: EngineDep,
               limit: Annotated[int, Query(ge=1, le=store_history.MAX_HISTORY)] = store_history.HISTORY_LIMIT,
               ) -> list[dict[str, Any]]:
    """Your last labels in the project, newest first, and whether each may still be changed."""
    with reading(engine) as conn:
        entries = store_history.my_labels(conn, project=project, user_id=user.id, limit=limit)
    show_ids = bool(project.setting("show_item_ids"))
    out = []
    for e in entries:
        row = {k: getattr(e, k) for k in MyLabelPublic.model_fields}
        row["external_id"] = e.external_id if show_ids else None
        out.append(row)
    return out


@router.put("/items/{item_id}/labels", response_model=ChangedPublic, response_model_exclude_unset=True,
            dependencies=[Depends(current_user), Depends(require_json)])  # the login first: 401 before 415
async def change_label(request: Request, project: ProjectDep, user: CurrentUser, _csrf: CsrfChecked,
                       item_id: ItemIdPath, body: LabelCreate) -> dict[str, Any]:
    """Change your own label on an item while it is yours (see the page "My history"): same body
    as POST. No lease needed; your lease on the item you are labelling stays as it is."""
    wanted = label_request(project, user.id, item_id, body)

    def change(conn: Any) -> store_history.Changed:
        return store_history.change_label(conn, project=project, user_id=user.id, item_id=item_id,
                                          tag=wanted.tag, tags=wanted.tags)

    done = await request.app.state.dispatcher.run(change)
    value = {"label": done.label} if done.labels is None else {"labels": done.labels}
    return {"item_id": done.item_id, **value, "changed": done.changed, "final": done.final,
            "final_source": done.final_source}
