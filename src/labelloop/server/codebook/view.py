"""The codebook as pages and the API show it: each definition's source and sanitised HTML.

External ids of examples are shown to admins, and to labellers only where the project shows
item ids (``show_item_ids``): they may give answers away.
"""

from __future__ import annotations

from typing import Any

from labelloop.server.codebook.markdown import render
from labelloop.store.codebook import Codebook
from labelloop.store.projects import Project
from labelloop.store.users import User


def codebook_view(book: Codebook, *, project: Project, user: User) -> dict[str, Any]:
    ids = user.is_admin or bool(project.setting("show_item_ids"))
    return {
        "version": book.version,
        "tags": [
            {
                "tag": e.tag,
                "definition": e.definition,
                "html": render(e.definition),
                "version": e.version,
                "updated_at": e.updated_at,
                "updated_by": e.updated_by,
                "examples": [{"item_id": x.item_id, "external_id": x.external_id if ids else None, "text": x.text}
                             for x in e.examples],
            }
            for e in book.entries
        ],
    }
