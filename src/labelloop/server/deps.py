"""FastAPI dependencies shared by the JSON API and the HTML pages (Annotated aliases).

- :data:`SettingsDep`, :data:`EngineDep`: the app's settings and engine.
- :data:`CurrentUser`: the user of a session cookie (its server-side session, see
  ``server/sessions``) or of ``Authorization: Bearer <token>``; 401 JSON when missing or bad. :data:`AdminUser`: the same, 403 for labellers.
- :data:`PageUser`, :data:`PageAdmin`: for HTML pages: without a session they redirect to
  ``/login?next=<path>`` (PageAdmin answers 403 to labellers).
- :data:`ProjectDep`: the ``{project}`` path parameter as a :class:`Project`. The user is
  resolved first (:func:`viewer`: no login, no lookup), then the project; a project that does
  not exist and one the user may not see (a labeller who is not a member) get the very same
  404 (:func:`project_not_found`). :data:`CachedProjectDep` and :func:`open_project` do the same
  from the per-process caches (the labelling hot path, and the bearer fast path).
- :data:`ItemIdPath`, :data:`RowIdPath`: id path parameters within the columns' range.
- :func:`csrf_token` for templates; :data:`CsrfChecked` for form POSTs (field ``csrf_token``)
  and cookie-authenticated JSON POSTs (header ``X-CSRF-Token``); requests with a valid bearer
  token need none (any other ``Authorization`` header exempts nothing).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from labelloop.config import Settings
from labelloop.errors import AuthError, NotFoundError
from labelloop.server.sessions import session_key
from labelloop.store import reading
from labelloop.store import projects as store_projects
from labelloop.store.projects import Project
from labelloop.store.users import User

# Ids in paths, bounded to what the columns hold: a larger number is refused (422, or the
# 400 page) instead of overflowing in the database driver.
ItemIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
RowIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]

CSRF_SESSION_KEY = "csrf"


class LoginRequired(Exception):
    """Raised by page dependencies without a session: the app answers with a redirect to /login."""

    def __init__(self, next_path: str):
        self.next_path = next_path

    @property
    def location(self) -> str:
        return "/login?next=" + quote(self.next_path, safe="/")


async def get_settings(request: Request) -> Settings:  # async: no thread-pool hop
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(401, "malformed Authorization header: use 'Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    return value.strip()


async def _resolve_user(request: Request) -> User | None:
    """The request's user, or None when it carries no credentials; bad credentials: 401.

    A bearer token wins over a cookie. A cookie's session key is checked by the AuthCache (a
    key of the wrong form, from a forged or old cookie, is refused without a lookup); a cookie
    without one, such as those from before server-side sessions, is no login."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    cache = request.app.state.auth_cache
    token = _bearer(request)
    try:
        if token is not None:
            user = await cache.by_token(token)
            request.state.via_token = True
        else:
            key = session_key(request)
            if key is None:
                return None
            user = await cache.by_session(key)
            request.state.via_token = False
    except AuthError as exc:
        if token is None:
            request.session.clear()
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    request.state.user = user
    return user


async def current_user(request: Request) -> User:
    user = await _resolve_user(request)
    if user is None:
        raise HTTPException(401, "not authenticated: log in or send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise HTTPException(403, "this needs an admin account")
    return user


def _next_path(request: Request) -> str:
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


async def page_user(request: Request) -> User:
    try:
        user = await _resolve_user(request)
    except HTTPException:
        user = None
    if user is None:
        raise LoginRequired(_next_path(request))
    return user


async def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    if not user.is_admin:
        raise HTTPException(403, "this page needs an admin account")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
PageUser = Annotated[User, Depends(page_user)]
PageAdmin = Annotated[User, Depends(page_admin)]


async def viewer(request: Request) -> User:
    """The user of a route that names a project, resolved BEFORE the project is looked up, so
    that an anonymous request learns nothing about which projects exist: without credentials
    the JSON API (``/api/...``) answers 401 and pages redirect to the login."""
    if request.scope["path"].startswith("/api/"):
        return await current_user(request)
    return await page_user(request)


Viewer = Annotated[User, Depends(viewer)]


def project_not_found(name: str) -> HTTPException:
    """The one answer for a project that does not exist AND for one the user may not see: the
    same status, words and headers, and never a list of project names."""
    return HTTPException(404, f"no project named {name!r} is open to you: check the name, "
                              "or ask an admin to make you a member")


def _load_project(engine: Engine, name: str) -> Project:
    with reading(engine) as conn:
        return store_projects.get_project(conn, name=name)


async def _visible(state: Any, found: Project, user: User, name: str) -> Project:
    if not await state.member_cache.allows(user, found.id):
        raise project_not_found(name)
    return found


async def get_project(request: Request, project: str, user: Viewer) -> Project:
    """Fresh from the database on every request (admin pages see their own changes)."""
    try:
        found = await run_in_threadpool(_load_project, request.app.state.engine, project)
    except NotFoundError:
        raise project_not_found(project) from None
    return await _visible(request.app.state, found, user, project)


async def open_project(state: Any, name: str, user: User) -> Project:
    """Project ``name`` from the per-process caches if ``user`` may see it, else the 404 of
    :func:`project_not_found` (no database round trip once the caches are warm)."""
    try:
        found = await state.project_cache.get(name)
    except NotFoundError:
        raise project_not_found(name) from None
    return await _visible(state, found, user, name)


async def get_cached_project(request: Request, project: str, user: Viewer) -> Project:
    """The project from a short per-process cache (the labelling hot path)."""
    return await open_project(request.app.state, project, user)


ProjectDep = Annotated[Project, Depends(get_project)]
CachedProjectDep = Annotated[Project, Depends(get_cached_project)]


def _session_csrf(request: Request) -> str | None:
    if "session" not in request.scope:
        return None
    token = request.session.get(CSRF_SESSION_KEY)
    return token if isinstance(token, str) and token.isascii() and token else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); put it in every form."""
    token = _session_csrf(request)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


async def check_csrf(request: Request) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token (header or form field).

    Only a valid bearer token exempts a request (browsers do not send one on their own); an
    invalid one is a 401, and any other ``Authorization`` header exempts nothing."""
    scheme = request.headers.get("authorization", "").partition(" ")[0]
    if scheme.lower() == "bearer":
        await _resolve_user(request)  # 401 unless the token is valid
        if getattr(request.state, "via_token", False):
            return
    expected = _session_csrf(request)
    given = request.headers.get("x-csrf-token")
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("csrf_token")
            given = value if isinstance(value, str) else None
    if not expected or not given or not secrets.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass")):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


CsrfChecked = Annotated[None, Depends(check_csrf)]
