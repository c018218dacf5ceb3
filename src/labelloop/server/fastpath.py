"""A lean ASGI path for the two hottest calls of bearer-token clients.

``POST /api/projects/{project}/next`` and ``POST /api/projects/{project}/items/{id}/labels``
with ``Authorization: Bearer <token>`` are answered here, before FastAPI's routing and
dependency resolution (which cost more than the database work of a label). A label's body,
``{"label": ...}`` or ``{"labels": [...]}``, is checked against the project's kind by
:func:`labelloop.server.sets.bodies.label_request`, as in the routes. They use the very same
parts as the FastAPI routes in ``api.py`` (the user cache, the project and membership check of
``deps.open_project``, the dispatcher behind :mod:`labelloop.server.gold` and the store
functions) and give the same answers, status codes and messages.
Every other request, including these calls from a browser session (cookie + CSRF token), goes
on to FastAPI unchanged; the FastAPI routes also document both calls in OpenAPI.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from labelloop.errors import AuthError, LabelloopError
from labelloop.server.deps import open_project
from labelloop.server.notes.labels import record_label
from labelloop.server.responses import SafeJSONResponse, next_response, status_of
from labelloop.server.schemas import LabelCreate
from labelloop.server.sets.bodies import label_answer, label_request
from labelloop.store import queue as store_queue

_NEXT = re.compile(r"/api/projects/([^/]+)/next")
_LABEL = re.compile(r"/api/projects/([^/]+)/items/([1-9]\d{0,17})/labels")  # else FastAPI: 422 as for cookies


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return ""


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class FastLabelling:
    """ASGI middleware answering bearer-token ``next`` and ``labels`` calls directly."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/projects/"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        next_match = _NEXT.fullmatch(path)
        label_match = None if next_match else _LABEL.fullmatch(path)
        # A ``next`` with a query string (a steered queue, issue 13) goes to the FastAPI route.
        token = _bearer(scope) if (label_match or (next_match and not scope.get("query_string"))) else None
        if token is None:
            await self.app(scope, receive, send)
            return
        match = next_match or label_match
        assert match is not None
        response = await self._answer(scope, receive, token, match.group(1), label_match)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, token: str, name: str, label_match: Any) -> Any:
        state = scope["app"].state
        try:
            user = await state.auth_cache.by_token(token)
        except AuthError as exc:
            return SafeJSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        scope.setdefault("state", {})["user"] = user  # for the request log
        try:
            project = await open_project(state, name, user)  # unknown, or not a member: the same 404
        except HTTPException as exc:
            return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        try:
            if label_match is None:
                seconds = store_queue.lease_seconds_for(project, state.settings.lease_seconds)
                lease = await state.gold.claim(project=project, user_id=user.id, lease_seconds=seconds)
                if lease is None:
                    return Response(status_code=204)
                return next_response(lease, multi_label=project.multi_label)
            content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
            if content_type != "application/json":
                return SafeJSONResponse(
                    {"detail": "send the body as JSON (Content-Type: application/json)"}, status_code=415
                )
            body = _parse_label(await _body(receive))
            if isinstance(body, SafeJSONResponse):
                return body
            request = label_request(project, user.id, int(label_match.group(2)), body)  # the shape: 422
            await record_label(state.gold, request, body)  # a gold item: a gold answer; with its comment / flag
            return SafeJSONResponse(label_answer(request.item_id, body), status_code=201)
        except LabelloopError as exc:
            return SafeJSONResponse({"detail": str(exc)}, status_code=status_of(exc))


def _parse_label(raw: bytes) -> LabelCreate | SafeJSONResponse:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        return SafeJSONResponse({"detail": [{"type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error: {exc}"}]},
                                status_code=422)
    try:
        return LabelCreate.model_validate(data)
    except ValueError as exc:  # pydantic.ValidationError
        errors = exc.errors() if hasattr(exc, "errors") else [{"msg": str(exc)}]
        detail = [{"type": e.get("type"), "loc": ["body", *e.get("loc", ())], "msg": e.get("msg")} for e in errors]
        return SafeJSONResponse({"detail": detail}, status_code=422)
