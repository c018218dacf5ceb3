"""The bulk labelling API (admins only; CSRF as every write; 403 for labellers, 404 for a
project the user may not see):

- ``POST /api/projects/{project}/bulk`` ``{"tag": "A", "item_ids": [1, 2, 3]}`` (multi-label:
  optional ``"action": "add" | "remove"``, default ``add``): apply the tag as one bulk
  operation; answers 201 ``{"bulk_id", "tag", "action", "items", "changed", "human"}``. 422 for
  an unknown or retired tag, no ids, more than :data:`labelloop.store.bulklabels.MAX_ITEMS`,
  ids that are not items of the project, ``remove`` in a single-label project.
- ``DELETE /api/projects/{project}/bulk/{bulk_id}``: undo it as a whole; answers
  ``{"bulk_id", "items", "changed"}``; 404 for an unknown id, 409 if it was undone already.
- ``GET /api/projects/{project}/bulk``: the project's bulk operations, newest first.

Item ids are the ``id`` the API returns (``next``, the data browser's ``#id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictInt

from labelloop.server.api import ERRORS, require_json
from labelloop.server.deps import AdminUser, CsrfChecked, EngineDep, ProjectDep, RowIdPath, current_user
from labelloop.store import reading, writing
from labelloop.store import bulklabels as store_bulk

router = APIRouter(prefix="/api/projects/{project}/bulk", tags=["api"])


class BulkCreate(BaseModel):
    tag: str = Field(max_length=200, description="The tag to apply (or, with action remove, to take out).")
    item_ids: list[StrictInt] = Field(description=f"Item ids, at most {store_bulk.MAX_ITEMS:,}.")
    action: Literal["add", "remove"] = Field("add", description="Multi-label projects: add the tag to the "
                                             "items' sets, or remove it. Single-label: add only.")


class BulkPublic(BaseModel):
    bulk_id: int
    tag: str
    action: str
    items: int = Field(description="Items listed.")
    changed: int = Field(description="Items whose final label changed.")
    human: int = Field(description="Items that keep a human label (it wins over the bulk label).")


class BulkUndonePublic(BaseModel):
    bulk_id: int
    items: int
    changed: int


class BulkOpPublic(BaseModel):
    bulk_id: int
    tag: str
    action: str
    items: int
    user: str | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


@router.post("", status_code=201, response_model=BulkPublic, responses=ERRORS,
             dependencies=[Depends(current_user), Depends(require_json)])  # the login first: 401 before 415
def apply_bulk(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked,
               body: BulkCreate) -> dict[str, Any]:
    """Apply a tag to many items at once (admins). The labels have source ``bulk``: never audit
    items, never in agreement, used for training unless the project's ``bulk_training`` is
    off; a human label on an item wins over them."""
    with writing(engine) as conn:
        return store_bulk.apply_bulk(conn, project=project, tag=body.tag, item_ids=body.item_ids,
                                     action=body.action, user_id=user.id)


@router.delete("/{bulk_id}", response_model=BulkUndonePublic, responses=ERRORS)
def undo_bulk(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked,
              bulk_id: RowIdPath) -> dict[str, Any]:
    """Undo a bulk operation as a whole: its items get back the label they would have without it."""
    with writing(engine) as conn:
        return store_bulk.undo_bulk(conn, project=project, bulk_id=bulk_id, user_id=user.id)


@router.get("", response_model=list[BulkOpPublic], responses=ERRORS)
def list_bulk(project: ProjectDep, user: AdminUser, engine: EngineDep) -> list[dict[str, Any]]:
    """The project's bulk operations, newest first (at most 1,000; undone ones too)."""
    with reading(engine) as conn:
        ops = store_bulk.list_bulk(conn, project=project, limit=1000)
    return [{"bulk_id": o.id, "tag": o.tag, "action": o.action, "items": o.n_items, "user": o.user,
             "created_at": o.created_at, "undone_at": o.undone_at, "undone_by": o.undone_by} for o in ops]
