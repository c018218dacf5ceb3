"""The FastAPI application: :func:`create_app` (nothing is created at import time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labelloop.config import Settings
from labelloop.errors import LabelloopError
from labelloop.server import admin, api, auth, dashboard, models_admin, pages, review
from labelloop.server import formats
from labelloop.server.bulk import api as bulk_api
from labelloop.server.bulk import pages as bulk_pages
from labelloop.server.history import api as history_api
from labelloop.server.history import pages as history_pages
from labelloop.server.codebook import api as codebook_api
from labelloop.server.codebook import pages as codebook_pages
from labelloop.server.notes import pages as notes_pages
from labelloop.server.caches import AuthCache, MemberCache, ProjectCache
from labelloop.server.deps import CurrentUser, LoginRequired
from labelloop.server.dispatch import Dispatcher
from labelloop.server.fastpath import FastLabelling
from labelloop.server.gold import Gold, GoldCache
from labelloop.server import gold_pages
from labelloop.server.logins import LoginGate, Logins, ProxyHeaders, SecureCookies
from labelloop.server.requestlog import RequestLog
from labelloop.server.responses import SafeJSONResponse, status_of, unstorable_message
from labelloop.server.web import assets
from labelloop.server.web.headers import SecurityHeaders
from labelloop.store import open_engine
from labelloop.store.migrate import current_revision, head_revision

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
API_MAX_BODY = 64 * 1024
FORM_MAX_BODY = 16 * 1024 * 1024
BULK_MAX_BODY = 1024 * 1024  # POST /api/projects/{p}/bulk: up to 10,000 item ids

class BodyLimit:
    """Answer 413 to request bodies over the limit (64 KiB for /api but 1 MiB for a bulk
    operation's ids, 16 MiB elsewhere)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = API_MAX_BODY if scope["path"].startswith("/api/") else FORM_MAX_BODY
        if limit == API_MAX_BODY and scope["path"].endswith("/bulk"):
            limit = BULK_MAX_BODY
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await _too_large(send, limit)
                    return
        seen = 0
        rejected = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    rejected = True
                    if not started:
                        await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


class RejectNul:
    """Answer 400 to a URL with a NUL character (``%00``) in its path or query: no name, search
    or id of ours contains one, and PostgreSQL cannot even compare text with it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            body = b'{"detail":"NUL characters (%00) are not allowed in URLs"}'
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body too large: at most %d bytes"}' % limit
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = await run_in_threadpool(open_engine, settings.database_url)
    app.state.engine = engine
    app.state.session_secret = await run_in_threadpool(auth.session_secret, settings, engine)
    app.state.auth_cache = AuthCache(engine)
    app.state.project_cache = ProjectCache(engine)
    app.state.member_cache = MemberCache(engine)
    app.state.dispatcher = Dispatcher(engine)
    app.state.dispatcher.start()
    app.state.gold = Gold(engine, app.state.dispatcher)  # gold items on the labelling routes
    app.state.logins = Logins(engine, settings)  # the failed-login limit and the password pool
    refresher = asyncio.create_task(_refresh_users(app.state.auth_cache))
    member_refresher = asyncio.create_task(_refresh_members(app.state.member_cache))
    gold_refresher = asyncio.create_task(_refresh_members(app.state.gold.cache))
    try:
        yield
    finally:
        refresher.cancel()
        member_refresher.cancel()
        gold_refresher.cancel()
        app.state.dispatcher.stop()
        app.state.logins.close()
        engine.dispose()


async def _refresh_users(cache: AuthCache) -> None:
    """Re-check the cached sessions and tokens every ``cache.refresh_every`` seconds."""
    while True:
        await asyncio.sleep(cache.refresh_every)
        try:
            await run_in_threadpool(cache.refresh)
        except Exception:  # keep refreshing; entries also expire on their own after max_age
            log.exception("refreshing the user cache failed")


async def _refresh_members(cache: MemberCache | GoldCache) -> None:
    """Re-read the cached memberships (or gold sets) every ``cache.refresh_every`` seconds."""
    while True:
        await asyncio.sleep(cache.refresh_every)
        try:
            await run_in_threadpool(cache.refresh)
        except Exception:  # keep refreshing; entries also expire on their own after max_age
            log.exception("refreshing the membership cache failed")


def create_app(settings: Settings) -> FastAPI:
    """The labelling server for ``settings``; the engine is opened (and migrated) at startup."""
    app = FastAPI(
        title="labelloop",
        summary="Label texts with a team and a model in the loop.",
        lifespan=lifespan,
        docs_url=None,  # served below, behind the login like every other page
        openapi_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    formats.install(app.state.templates.env)  # count, rank, score, percent, ago
    app.add_middleware(auth.LazySessionMiddleware)
    app.add_middleware(SecureCookies, force=settings.force_secure_cookies)  # `Secure` over HTTPS
    app.add_middleware(FastLabelling)  # bearer-token next/labels: before sessions and routing
    app.add_middleware(BodyLimit)
    app.add_middleware(RejectNul)
    app.add_middleware(LoginGate)  # a login flood: 503 before any work while the password pool is full
    app.add_middleware(SecurityHeaders)  # CSP, framing, nosniff, referrer: on every answer
    app.add_middleware(ProxyHeaders, trusted_proxies=settings.trusted_proxies)  # client, scheme
    app.add_middleware(RequestLog)  # outermost: every answer has an X-Request-ID and a log line

    @app.exception_handler(LabelloopError)
    async def labelloop_error(request: Request, exc: LabelloopError) -> JSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The fields the bearer fast path gives too; not the offending input, which may not even
        # be JSON (a NaN) and need not be echoed back.
        errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
        return SafeJSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (NUL in text, a number out of range): the request's
        # fault, and its transaction was rolled back.
        return SafeJSONResponse({"detail": unstorable_message(exc)}, status_code=400)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness: 200 when the server runs (no authentication)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 when the database answers and its schema is current (no authentication)."""
        try:
            current = await run_in_threadpool(_schema_revision, request.app.state.engine)
        except Exception as exc:  # any database failure means "not ready"
            return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
        if current != head_revision():
            return JSONResponse({"status": "migrations pending", "revision": current}, status_code=503)
        return JSONResponse({"status": "ok", "revision": current})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    assets.mount_assets(app)  # Swagger UI's files for /docs: before /static, which would take them
    app.mount("/static", StaticFiles(directory=str(HERE / "static"), check_dir=False), name="static")
    app.include_router(auth.router)
    app.include_router(assets.router)  # /docs (behind the login) and /favicon.ico
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(gold_pages.router)
    app.include_router(models_admin.router)
    app.include_router(review.router)
    app.include_router(dashboard.router)
    app.include_router(bulk_api.router)
    app.include_router(bulk_pages.router)
    app.include_router(history_api.router)
    app.include_router(history_pages.router)
    app.include_router(codebook_api.router)
    app.include_router(codebook_pages.router)
    app.include_router(notes_pages.router)
    return app


def _schema_revision(engine: Any) -> str | None:
    with engine.connect() as conn:
        return current_revision(conn)
