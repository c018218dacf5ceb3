"""Log in and out: the login form, signed session cookies and the failed-login rate limit.

Sessions are Starlette's signed cookies (itsdangerous), HttpOnly and SameSite=Lax, keyed with
``settings.secret_key`` or else a random secret kept in the database (shared by every worker).
The cookie holds the key of a server-side session (``server/sessions``), which logout, a
password reset or disabling the account end; every request re-checks it (see ``caches.py``).
The cookie is ``Secure`` over HTTPS (``logins/cookies.py``). The password check, with the
failed-login limit per user name and client address (429) and its own hashing pool (503 when
full), is ``logins/limits.py``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from labelloop.config import Settings
from labelloop.server.deps import CsrfChecked, PageUser, check_csrf, csrf_token
from labelloop.server.logins import Refusal, client_of
from labelloop.server.sessions import end_session, session_key, start_session
from labelloop.store import writing
from labelloop.store import users as store_users

SESSION_COOKIE = "labelloop_session"
SESSION_MAX_AGE = 14 * 24 * 3600

router = APIRouter(tags=["auth"])


class LazySessionMiddleware:
    """Starlette's SessionMiddleware, keyed on first use with the secret the lifespan put on
    ``app.state.session_secret`` (the secret may live in the database, opened at startup)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._inner: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self._inner is None:
            self._inner = SessionMiddleware(
                self.app,
                secret_key=scope["app"].state.session_secret,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=False,
            )
        await self._inner(scope, receive, send)


def session_secret(settings: Settings, engine: Engine) -> str:
    if settings.secret_key:
        return settings.secret_key
    with writing(engine) as conn:
        return store_users.get_or_create_secret(conn)


def local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host, no ``//``), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def render_login(
    request: Request, *, error: str | None, next_path: str, status: int = 200, username: str = ""
) -> Response:
    context: dict[str, Any] = {
        "request": request, "error": error, "next": next_path, "csrf_token": csrf_token(request),
        "username": username,
    }
    return request.app.state.templates.TemplateResponse(request, "login.html", context, status_code=status)


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, next: str = "/") -> Response:
    return render_login(request, error=None, next_path=local_path(next) or "/")


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    _csrf: CsrfChecked,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=2000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = request.app.state
    next_path = local_path(next) or "/"
    if "\x00" in username or "\x00" in password:  # no account has one; PostgreSQL cannot compare it
        return render_login(request, error="wrong user name or password", next_path=next_path, status=401)
    result = await state.logins.check(name=username, password=password, client=client_of(request))
    if isinstance(result, Refusal):
        page = render_login(request, error=result.message, next_path=next_path, status=result.status,
                            username=username)
        if result.retry_after:
            page.headers["Retry-After"] = str(result.retry_after)
        return page
    await start_session(request, result.id)  # a fresh session: no fixation
    csrf_token(request)
    return RedirectResponse(next_path, status_code=303)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    if session_key(request) is not None:  # without a session there is nothing to end or protect
        await check_csrf(request)
        await end_session(request)  # on the server too: a saved copy of the cookie stops working
    return RedirectResponse("/login", status_code=303)


@router.get("/", include_in_schema=False)
async def home(user: PageUser) -> Response:
    return RedirectResponse("/admin" if user.is_admin else "/projects", status_code=303)
