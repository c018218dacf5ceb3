"""Admin pages for users: create (with a role), disable and enable, reset the password, create
and revoke API tokens. Included by :mod:`labelloop.server.admin` under ``/admin``.

Disabling an account and resetting its password end the user's sessions and revoke their API
tokens (a reset keeps the tokens if the admin ticks "keep API tokens"): at once in this process
(``server/sessions`` ``forget_user``), within about a second in the others.

Project membership (a labeller sees only the projects they are a member of; admins see all),
managed from both sides: per user on ``/admin/users`` (``POST /admin/users/{id}/projects``,
``.../projects/remove``) and per project on ``/admin/projects/{project}/members`` (``POST``
the same path, ``.../members/remove``). Changes take effect at once in this process (the
membership cache forgets the user) and within about a second in the others.

Generated passwords and new API tokens are shown once, in the answer to the POST that made
them (never stored in clear, never put in a URL or a cookie). Every change is audit-logged.
"""

from __future__ import annotations

import functools

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.server.deps import CsrfChecked, EngineDep, PageAdmin, ProjectDep, RowIdPath
from labelloop.server.pages import HtmlRoute, error_status, render
from labelloop.server.sessions import forget_user
from labelloop.store import browse, reading, writing
from labelloop.store import members as store_members
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.projects import Project
from labelloop.store.schema import ROLES
from labelloop.store.users import User

router = APIRouter(route_class=HtmlRoute)

NOTICES = {
    "created": "User created with the password you gave.",
    "disabled": "Account disabled: its sessions were ended and its API tokens revoked.",
    "enabled": "Account enabled.",
    "revoked": "Token revoked.",
    "member-added": "Added to the project: they see it now.",
    "member-removed": "Taken out of the project: they no longer see it (their labels stay).",
}


def _page(
    request: Request, engine: Any, user: User, *, error: str | None = None, status: int = 200,
    secret: dict[str, str] | None = None, form: dict[str, str] | None = None,
) -> HTMLResponse:
    with reading(engine) as conn:
        people = store_users.list_users(conn)
        tokens = {u.id: store_users.list_tokens(conn, user_id=u.id) for u in people}
        projects = store_projects.list_project_names(conn)
        member_of = {u.id: store_members.projects_of_user(conn, user_id=u.id) for u in people if not u.is_admin}
        log = browse.audit_entries(conn, project_id=None, limit=20)
    context = {
        "people": people,
        "tokens": tokens,
        "projects": projects,
        "member_of": member_of,
        "roles": ROLES,
        "log": log,
        "error": error,
        "secret": secret,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "form": form or {"role": "labeller"},
        "nav": "users",
    }
    return render(request, "admin/users.html", context, user=user, status=status)


def _forget_sessions(request: Request, user_id: int) -> None:
    forget_user(request.app.state, user_id)  # this process sees the change at once, others within a second


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
        store_users.validate_user_name(name)  # before the slow part
        password_hash = _hashed(request, value, user_name=name)
        with writing(engine) as conn:
            created = store_users.create_user(conn, name=name, role=role, password_hash=password_hash)
            browse.record_audit(conn, user_id=user.id, action="user.create",
                                details={"name": created.name, "role": created.role})
    except LabelloopError as exc:
        return _page(request, engine, user, error=str(exc), status=error_status(exc),
                     form={"name": name, "role": role})
    if not generated:
        return RedirectResponse("/admin/users?done=created", status_code=303)
    return _page(request, engine, user, secret={"kind": "password", "user": created.name, "value": value})


def _hashed(request: Request, password: str, *, user_name: str | None = None) -> str:
    """``password`` validated and hashed on the password pool, not on this thread (the threads
    that serve labelling); the pool full: ``TooManyLogins`` (503)."""
    return request.app.state.logins.pool.call(
        functools.partial(store_users.hash_password, password, user_name=user_name))


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
    """Disable an account: it can no longer log in, its sessions end and its API tokens are
    revoked (enabling it again does not bring them back)."""
    _, error, status = _change(request, engine, user, user_id, lambda c, t: _disable(c, t, user, True), "user.disable")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request, user_id)
    return RedirectResponse("/admin/users?done=disabled", status_code=303)


@router.post("/users/{user_id}/enable", response_class=HTMLResponse)
def enable_user(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath
) -> Response:
    """Enable a disabled account again."""
    _, error, status = _change(request, engine, user, user_id, lambda c, t: _disable(c, t, user, False), "user.enable")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request, user_id)
    return RedirectResponse("/admin/users?done=enabled", status_code=303)


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath,
    keep_tokens: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Give the user a new generated password, shown once. Their sessions end and, unless
    ``keep_tokens`` is ticked, their API tokens are revoked."""
    value = store_users.generate_password()
    try:
        password_hash = _hashed(request, value)
    except LabelloopError as exc:
        return _page(request, engine, user, error=str(exc), status=error_status(exc))

    def change(conn: Connection, target: User) -> tuple[str, store_users.Ended]:
        return target.name, store_users.set_password(conn, user_id=target.id, password_hash=password_hash,
                                                     keep_tokens=bool(keep_tokens))

    result, error, status = _change(request, engine, user, user_id, change, "user.password_reset")
    if error:
        return _page(request, engine, user, error=error, status=status)
    _forget_sessions(request, user_id)
    name, ended = result
    return _page(request, engine, user, secret={"kind": "password", "user": name, "value": value,
                                                "ended": ended.describe()})


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
    _forget_sessions(request, user_id)
    return RedirectResponse("/admin/users?done=revoked", status_code=303)


# ---- project membership ---------------------------------------------------------------------
def _membership(engine: Any, admin: User, add: bool, project: str, name: str) -> tuple[str | None, int]:
    """Add or remove one membership (audit-logged); (error, status)."""
    try:
        with writing(engine) as conn:
            if add:
                store_members.add_member(conn, project=project, user=name, actor_id=admin.id)
            else:
                store_members.remove_member(conn, project=project, user=name, actor_id=admin.id)
    except LabelloopError as exc:
        return str(exc), error_status(exc)
    return None, 200


def _forget_memberships(request: Request, user_id: int | None) -> None:
    cache = getattr(request.app.state, "member_cache", None)
    if cache is not None:
        cache.forget(user_id)  # this process sees the change at once, others within about a second


def _user_membership(request: Request, admin: User, engine: Any, user_id: int, project: str, add: bool) -> Response:
    try:
        with reading(engine) as conn:
            target = store_users.get_user_by_id(conn, user_id=user_id)
    except LabelloopError as exc:
        return _page(request, engine, admin, error=str(exc), status=error_status(exc))
    error, status = _membership(engine, admin, add, project, target.name)
    if error:
        return _page(request, engine, admin, error=error, status=status)
    _forget_memberships(request, target.id)
    return RedirectResponse(f"/admin/users?done=member-{'added' if add else 'removed'}#u-{target.id}", status_code=303)


@router.post("/users/{user_id}/projects", response_class=HTMLResponse)
def add_user_to_project(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath,
    project: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Make the (labeller) user a member of ``project``."""
    return _user_membership(request, user, engine, user_id, project, True)


@router.post("/users/{user_id}/projects/remove", response_class=HTMLResponse)
def remove_user_from_project(
    request: Request, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked, user_id: RowIdPath,
    project: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Take the user out of ``project``."""
    return _user_membership(request, user, engine, user_id, project, False)


def members_url(project: Project) -> str:
    return "/admin/projects/" + quote(project.name, safe="") + "/members"


def _members_page(request: Request, engine: Any, project: Project, user: User, *, error: str | None = None,
                  status: int = 200) -> HTMLResponse:
    with reading(engine) as conn:
        members = store_members.list_members(conn, project_id=project.id)
        outside = store_members.labellers_outside(conn, project_id=project.id)
        admins = [u.name for u in store_users.list_users(conn) if u.is_admin]
        log = [e for e in browse.audit_entries(conn, project_id=project.id, limit=200)
               if e["action"].startswith("member.")][:20]
    context = {
        "project": project,
        "url": "/admin/projects/" + quote(project.name, safe=""),
        "members": members,
        "outside": outside,
        "admins": admins,
        "log": log,
        "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "nav": "admin",
        "tab": "members",
    }
    return render(request, "admin/members.html", context, user=user, status=status)


@router.get("/projects/{project}/members", response_class=HTMLResponse)
def members_page(request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep) -> HTMLResponse:
    """The project's members, the labellers who are not, and the forms to add and remove them."""
    return _members_page(request, engine, project, user)


def _project_membership(request: Request, admin: User, engine: Any, project: Project, name: str, add: bool) -> Response:
    error, status = _membership(engine, admin, add, project.name, name)
    if error:
        return _members_page(request, engine, project, admin, error=error, status=status)
    _forget_memberships(request, None)
    return RedirectResponse(members_url(project) + f"?done=member-{'added' if add else 'removed'}", status_code=303)


@router.post("/projects/{project}/members", response_class=HTMLResponse)
def add_member(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Make labeller ``name`` a member of the project."""
    return _project_membership(request, user, engine, project, name, True)


@router.post("/projects/{project}/members/remove", response_class=HTMLResponse)
def remove_member(
    request: Request, project: ProjectDep, user: PageAdmin, engine: EngineDep, _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Take ``name`` out of the project."""
    return _project_membership(request, user, engine, project, name, False)
