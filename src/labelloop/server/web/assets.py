"""The API viewer and the favicon.

``GET /docs`` is Swagger UI, behind the login like every page: its script and stylesheet come
from the installed ``fastapi-offline`` package (Swagger UI 5, which reads the OpenAPI 3.1
document FastAPI writes; ``swagger-ui-bundle``'s Swagger UI 4.15 cannot), served under
``/static/swagger-ui/`` (only the two files the page uses), and ``static/docs.js`` starts it,
so the viewer works offline and behind a firewall and needs no inline script (see
:mod:`labelloop.server.web.headers`).
``GET /favicon.ico`` answers for browsers that ask for it without reading the page's links.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from labelloop.server.deps import PageUser
from labelloop.server.pages import render

STATIC = Path(__file__).resolve().parents[1] / "static"
SWAGGER_UI_DIR = files("fastapi_offline") / "static"
SWAGGER_UI_URL = "/static/swagger-ui"
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})

router = APIRouter(include_in_schema=False)


class _SwaggerAssets(StaticFiles):
    """The package's folder of viewer files, limited to the two the page loads."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in SWAGGER_UI_FILES:
            raise HTTPException(404, "Not Found")
        return await super().get_response(path, scope)


def mount_assets(app: FastAPI) -> None:
    """Mount Swagger UI's files; call before ``/static`` is mounted (the first match wins)."""
    app.mount(SWAGGER_UI_URL, _SwaggerAssets(directory=str(SWAGGER_UI_DIR)), name="swagger-ui")


@router.get("/docs")
def docs(request: Request, user: PageUser) -> HTMLResponse:
    """Swagger UI for the JSON API (its "Try it out" sends the session's CSRF token)."""
    return render(request, "docs.html", {"assets": SWAGGER_UI_URL}, user=user)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})
