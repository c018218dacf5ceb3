"""Admin pages for users: create (with a role), disable and enable, reset the password, create
and revoke API tokens. Included by :mod:`labelloop.server.admin` under ``/admin``.

Generated passwords and new API tokens are shown once, in the answer to the POST that made
them (never stored in clear, never put in a URL or a cookie). Every change is audit-logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.server.deps import CsrfChecked, EngineDep, PageAdmin, RowIdPath
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.store import browse, reading, writing
from labelloop.store import users as store_users
from labelloop.store.schema import ROLES
from labelloop.store.users import User

router = APIRouter(route_class=HtmlRoute)

NOTICES = {
    "created": "User created with the password you gave.",
    "disabled": "Account disabled: its sessions and tokens stop working.",
    "enabled": "Account enabled.",
    "revoked": "Token revoked.",
}


def _page(
    request: Request, engine: Any, user: User, *, error: str | None = None, status: int = 200,
    secret: dict[str, str] | None = None, form: dict[str, str] | None = None,
) -> HTMLResponse:
    with reading(engine) as conn:
        people = store_users.list_users(conn)
        tokens = {u.id: store_users.list_tokens(conn, user_id=u.id) for u in people}
        log = browse.audit_entries(conn, project_id=None, limit=20)
    context = {
        "people": people,
        "tokens": tokens,
        "roles": ROLES,
        "log": log,
        "error": error,
        "secret": secret,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "form": form or {"role": "labeller"},
        "nav": "users",
    }
    return render(request, "admin/users.html", context, user=user, status=status)


def _forget_sessions(request: Request) -> None:
    cache = getattr(request.app.state, "auth_cache", None)
    if cache is not None:
        cache.clear()  # this process sees a disabled account at once, others within seconds


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """Every user with role, state and API tokens; the forms to change them."""
    return _page(request, engine, user)


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Create a user; without a password one is generated and shown once."""
    generated = not password
    value = store_users.generate_password() if generated else password
    try:
        with writing(engine) as conn:
            created = store_users.create_user(conn, name=name, role=role, password=value)
            browse.record_audit(conn, user_id=user.id, action="user.create",
                                details={"name": created.name, "role": created.role})
    except LabelloopError as exc:
        return _page(request, engine, user, error=str(exc), status=error_status(exc),
                     form={"name": name, "role": role})
    if not generated:
        return RedirectResponse("/admin/users?done=created", status_code=303)
    return _page(request, engine, user, secret={"kind": "password", "user": created.name, "value": value})


def _change(
    request: Request, engine: Any, admin: User, user_id: int, change: Any, action: str,
) -> tuple[Any, str | None, int]:
    """Run ``change(conn, target)`` on user ``user_id`` and audit it; (result, error, status)."""
    try:
        with writing(engine) as conn:
            target = store_users.get_user_by_id(conn, user_id=user_id)
            result = change(conn, target)
            browse.record_audit(conn, user_id=admin.id, action=action, details={"name": target.name})
            return result, None, 200
    except LabelloopError as exc:
        return None, str(exc), error_status(exc)


def _disable(conn: Connection, target: User, admin: User, disabled: bool) -> None:
    if disabled and target.id == admin.id:
        raise InvalidInputError("you cannot disable your own account")
    store_users.set_disabled(conn, user_id=target.id, disabled=disabled)


@router.post("/users/{user_id}/disable", response_class=HTMLResponse)
def disable_user(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath
) -> Response:
    """Disable an account: it can no longer log in, and its sessions and tokens stop working."""
    _, error, status = _change(request, engine, user, user_id, lambda c, t: _disable(c, t, user, True), "user.disable")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request)
    return RedirectResponse("/admin/users?done=disabled", status_code=303)


@router.post("/users/{user_id}/enable", response_class=HTMLResponse)
def enable_user(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath
) -> Response:
    """Enable a disabled account again."""
    _, error, status = _change(request, engine, user, user_id, lambda c, t: _disable(c, t, user, False), "user.enable")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request)
    return RedirectResponse("/admin/users?done=enabled", status_code=303)


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath
) -> Response:
    """Give the user a new generated password, shown once."""
    value = store_users.generate_password()

    def change(conn: Connection, target: User) -> str:
        store_users.set_password(conn, user_id=target.id, password=value)
        return target.name

    name, error, status = _change(request, engine, user, user_id, change, "user.password_reset")
    if error:
        return _page(request, engine, user, error=error, status=status)
    return _page(request, engine, user, secret={"kind": "password", "user": name, "value": value})


@router.post("/users/{user_id}/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath,
    label: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Create an API token for the user, shown once (only its hash is stored)."""

    def change(conn: Connection, target: User) -> tuple[str, str]:
        return target.name, store_users.create_token(conn, user_id=target.id, name=label.strip())

    result, error, status = _change(request, engine, user, user_id, change, "token.create")
    if error:
        return _page(request, engine, user, error=error, status=status)
    name, token = result
    return _page(request, engine, user, secret={"kind": "token", "user": name, "value": token})


@router.post("/users/{user_id}/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath,
    token_id: RowIdPath,
) -> Response:
    """Revoke one of the user's API tokens."""

    def change(conn: Connection, target: User) -> None:
        store_users.revoke_token(conn, user_id=target.id, token_id=token_id)

    _, error, status = _change(request, engine, user, user_id, change, "token.revoke")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request)
    return RedirectResponse("/admin/users?done=revoked", status_code=303)
