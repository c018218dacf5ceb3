"""The codebook API (CSRF as every write; 404 for a project the user may not see):

- ``GET /api/projects/{project}/codebook`` (members): ``{"version", "tags": [{"tag",
  "definition" (Markdown source), "html" (sanitised), "version" (the one that last changed it,
  null: never defined), "updated_at", "updated_by", "examples": [{"item_id", "external_id",
  "text"}]}]}``, active tags in display order.
- ``PUT /api/projects/{project}/codebook/{tag}`` (admins) ``{"definition": "..."}``: set the
  tag's definition; a change raises the codebook version. Answers ``{"tag", "version",
  "changed", "html"}``; 422 for an unknown or retired tag or a bad definition.
- ``POST`` / ``DELETE /api/projects/{project}/codebook/{tag}/examples/{item_id}`` (admins): pin
  (201; 200 if it was pinned already) or unpin (200; 404 if it was not pinned) an example.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from labelloop.server.api import ERRORS, require_json
from labelloop.server.codebook.markdown import render
from labelloop.server.codebook.view import codebook_view
from labelloop.server.deps import AdminUser, CsrfChecked, CurrentUser, EngineDep, ItemIdPath, ProjectDep, current_user
from labelloop.store import reading, writing
from labelloop.store import codebook as store_codebook

router = APIRouter(prefix="/api/projects/{project}/codebook", tags=["api"])


class DefinitionBody(BaseModel):
    definition: str = Field(description=f"Markdown source, at most {store_codebook.MAX_DEFINITION:,} characters; "
                                        "\"\" clears the definition. Raw HTML is shown as text.")


@router.get("", responses=ERRORS)
def get_codebook(project: ProjectDep, user: CurrentUser, engine: EngineDep) -> dict[str, Any]:
    """The project's codebook: per active tag its definition (source and sanitised HTML) and
    pinned examples, and the codebook version new labels record."""
    with reading(engine) as conn:
        book = store_codebook.get_codebook(conn, project=project)
    return codebook_view(book, project=project, user=user)


@router.put("/{tag:path}", responses=ERRORS, dependencies=[Depends(current_user), Depends(require_json)])
def put_definition(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked, tag: str,
                   body: DefinitionBody) -> dict[str, Any]:
    """Set a tag's definition (admins); a change raises the codebook version by one."""
    with writing(engine) as conn:
        done = store_codebook.set_definition(conn, project=project, tag=tag, definition=body.definition,
                                             user_id=user.id)
    return {**done, "html": render(store_codebook.check_definition(body.definition))}


@router.post("/{tag:path}/examples/{item_id}", responses=ERRORS)
def pin(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked, tag: str,
        item_id: ItemIdPath, response: Response) -> dict[str, Any]:
    """Pin an item as an example of the tag (admins); 201 when new, 200 when it was pinned already."""
    with writing(engine) as conn:
        new = store_codebook.pin_example(conn, project=project, tag=tag, item_id=item_id, user_id=user.id)
    response.status_code = 201 if new else 200
    return {"tag": tag, "item_id": item_id, "pinned": True}


@router.delete("/{tag:path}/examples/{item_id}", responses=ERRORS)
def unpin(project: ProjectDep, user: AdminUser, engine: EngineDep, _csrf: CsrfChecked, tag: str,
          item_id: ItemIdPath) -> dict[str, Any]:
    """Unpin an example (admins); 404 when it was not pinned."""
    with writing(engine) as conn:
        store_codebook.unpin_example(conn, project=project, tag=tag, item_id=item_id, user_id=user.id)
    return {"tag": tag, "item_id": item_id, "pinned": False}
