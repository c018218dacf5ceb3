"""Project members: which labellers may see a project.

A labeller sees, gets items from and reads the stats of only the projects they are a member
of; admins see every project and need no membership (adding one is refused, so the table
only ever holds labellers). A new project has no members. Every change is recorded in the
project's audit log (``member.add``, ``member.remove``).

- :func:`add_member`: an unknown project or user is a :class:`NotFoundError`; adding a member
  twice is harmless (returns False, nothing written).
- :func:`remove_member`: removing someone who is not a member is a :class:`NotFoundError`.
- :func:`list_members`, :func:`projects_of_user`, :func:`visible_project_names`,
  :func:`is_member`, :func:`memberships`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, delete, select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.browse import record_audit
from labelloop.store.engine import insert_ignore
from labelloop.store.projects import Project, get_project, list_project_names
from labelloop.store.schema import project_members, projects, users, utcnow
from labelloop.store.users import User, get_user, list_users


def _resolve(conn: Connection, project: str, user: str) -> tuple[Project, User]:
    return get_project(conn, name=project), get_user(conn, name=user)


def add_member(conn: Connection, *, project: str, user: str, actor_id: int | None) -> bool:
    """Make labeller ``user`` a member of ``project``. True if added, False if they were one
    already (nothing changes). Admins are refused: they see every project anyway."""
    proj, member = _resolve(conn, project, user)
    if member.is_admin:
        raise InvalidInputError(
            f"user {member.name!r} is an admin and sees every project already; only labellers need membership"
        )
    added = conn.execute(
        insert_ignore(conn, project_members)
        .values(project_id=proj.id, user_id=member.id, created_at=utcnow())
        .returning(project_members.c.user_id)
    ).first() is not None
    if added:
        record_audit(conn, project_id=proj.id, user_id=actor_id, action="member.add", details={"user": member.name})
    return added


def remove_member(conn: Connection, *, project: str, user: str, actor_id: int | None) -> None:
    """Take ``user`` out of ``project``; NotFoundError if they are not a member."""
    proj, member = _resolve(conn, project, user)
    gone = conn.execute(
        delete(project_members).where(project_members.c.project_id == proj.id,
                                      project_members.c.user_id == member.id)
    ).rowcount
    if not gone:
        why = "admins need no membership" if member.is_admin else "nothing to remove"
        raise NotFoundError(f"user {member.name!r} is not a member of project {proj.name!r} ({why})")
    record_audit(conn, project_id=proj.id, user_id=actor_id, action="member.remove", details={"user": member.name})


def list_members(conn: Connection, *, project_id: int) -> list[User]:
    """The project's members, by name."""
    rows = conn.execute(
        select(users)
        .join(project_members, project_members.c.user_id == users.c.id)
        .where(project_members.c.project_id == project_id)
        .order_by(users.c.name)
    )
    return [User(r.id, r.name, r.role, bool(r.disabled), r.created_at) for r in rows]


def projects_of_user(conn: Connection, *, user_id: int) -> list[str]:
    """The names of the projects ``user_id`` is a member of, by name."""
    return list(conn.execute(
        select(projects.c.name)
        .join(project_members, project_members.c.project_id == projects.c.id)
        .where(project_members.c.user_id == user_id)
        .order_by(projects.c.name)
    ).scalars())


def visible_project_names(conn: Connection, *, user: User) -> list[str]:
    """The projects ``user`` may see: every one for an admin, else those they are a member of."""
    if user.is_admin:
        return list_project_names(conn)
    return projects_of_user(conn, user_id=user.id)


def is_member(conn: Connection, *, project_id: int, user_id: int) -> bool:
    return conn.execute(
        select(project_members.c.user_id).where(project_members.c.project_id == project_id,
                                                project_members.c.user_id == user_id)
    ).first() is not None


def memberships(conn: Connection, *, user_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """Project ids per user, for each of ``user_ids`` (a user without any maps to an empty set)."""
    wanted = list(user_ids)
    found: dict[int, set[int]] = {uid: set() for uid in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            select(project_members.c.user_id, project_members.c.project_id)
            .where(project_members.c.user_id.in_(chunk))
        )
        for user_id, project_id in rows:
            found[user_id].add(project_id)
    return {uid: frozenset(pids) for uid, pids in found.items()}


def labellers_outside(conn: Connection, *, project_id: int) -> list[str]:
    """Names of the labellers who are not members of the project (for the admin's add form)."""
    inside = {u.id for u in list_members(conn, project_id=project_id)}
    return [u.name for u in list_users(conn) if not u.is_admin and u.id not in inside]
