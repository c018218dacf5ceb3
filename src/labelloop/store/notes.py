"""Comments, flags and skip reasons (issue 14): what a labeller says about an item.

A label may carry a comment and an "unsure" flag, a skip a reason (``unclear``, ``off-topic``,
``needs-context``, ``other``) and a comment. Each such label or skip gets one ``item_notes``
row, written right after it in the same transaction (the server's writer: the label or skip
first, so a refused one writes no note). A plain label or skip never reaches this module: the
labelling hot path stays as it is.

Kinds: ``unsure`` (flagged, maybe with a comment), ``comment`` (a label with a comment only),
``skip`` (a reason and/or a comment). Admins see open notes on the flags page
(:func:`flagged_items`), answer by deciding the item's label (the review decision, then
:func:`resolve_item`) or mark a note resolved (:func:`resolve_note`). Undoing a label or a skip
takes its notes with it (:func:`forget_notes`): the labeller says it again with the new one.

Every function takes a connection and keyword-only arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, delete, exists, func, insert, select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.projects import Project
from labelloop.store.schema import NOTE_KINDS, SKIP_REASONS, item_notes, items, users, utcnow

MAX_COMMENT = 2000  # characters
MAX_PAGE = 100
#: The data browser's filter: name -> which notes an item must have (any state).
FILTERS = ("flagged", "commented", "skipped", "open")


def clean_comment(comment: str | None) -> str | None:
    """A comment as stored: stripped, None when empty. InvalidInputError when too long or holding
    a NUL character (PostgreSQL text cannot store it)."""
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInputError(f"comment is {len(comment):,} characters long; keep it to {MAX_COMMENT:,}")
    if "\x00" in comment:
        raise InvalidInputError("comment contains a NUL character; remove it")
    return comment or None


def check_reason(reason: str | None) -> str | None:
    if reason is not None and reason not in SKIP_REASONS:
        raise InvalidInputError(f"unknown skip reason {reason!r}: use one of {', '.join(SKIP_REASONS)}")
    return reason


def add_label_note(conn: Connection, *, project: Project, user_id: int, item_id: int, comment: str | None = None,
                   unsure: bool = False, now: datetime | None = None) -> int | None:
    """Record the comment and/or flag of the user's label on the item (call right after the
    label, in its transaction). Returns the note's id, None when there is nothing to record."""
    comment = clean_comment(comment)
    if comment is None and not unsure:
        return None
    return _insert(conn, project=project, user_id=user_id, item_id=item_id,
                   kind="unsure" if unsure else "comment", reason=None, text=comment, now=now)


def add_skip_note(conn: Connection, *, project: Project, user_id: int, item_id: int, reason: str | None = None,
                  comment: str | None = None, now: datetime | None = None) -> int | None:
    """Record the reason and/or comment of the user's skip of the item (right after the skip, in
    its transaction). Returns the note's id, None when there is nothing to record."""
    reason, comment = check_reason(reason), clean_comment(comment)
    if reason is None and comment is None:
        return None
    return _insert(conn, project=project, user_id=user_id, item_id=item_id, kind="skip", reason=reason,
                   text=comment, now=now)


def _insert(conn: Connection, *, project: Project, user_id: int, item_id: int, kind: str, reason: str | None,
            text: str | None, now: datetime | None) -> int:
    assert kind in NOTE_KINDS
    result = conn.execute(insert(item_notes).values(
        project_id=project.id, item_id=item_id, user_id=user_id, kind=kind, reason=reason, text=text,
        created_at=now or utcnow(),
    ).returning(item_notes.c.id))
    return int(result.scalar_one())


def forget_notes(conn: Connection, *, project: Project, user_id: int, item_id: int) -> int:
    """Delete the user's open notes on the item (their label or skip of it was undone); returns
    how many. Resolved ones stay: an admin has answered them."""
    result = conn.execute(delete(item_notes).where(
        item_notes.c.project_id == project.id, item_notes.c.item_id == item_id, item_notes.c.user_id == user_id,
        item_notes.c.resolved_at.is_(None),
    ))
    return int(result.rowcount or 0)


def resolve_note(conn: Connection, *, project: Project, note_id: int, user_id: int,
                 now: datetime | None = None) -> bool:
    """Mark a note resolved by ``user_id`` (an admin). Returns False when it already was
    (nothing changes); NotFoundError for a note of another project or none."""
    row = conn.execute(select(item_notes.c.resolved_at).where(
        item_notes.c.id == note_id, item_notes.c.project_id == project.id)).first()
    if row is None:
        raise NotFoundError(f"no note {note_id} in project {project.name!r}")
    if row.resolved_at is not None:
        return False
    conn.execute(update(item_notes).where(item_notes.c.id == note_id)
                 .values(resolved_at=now or utcnow(), resolved_by=user_id))
    return True


def resolve_item(conn: Connection, *, project: Project, item_id: int, user_id: int,
                 now: datetime | None = None) -> int:
    """Mark every open note on the item resolved (an admin decided its label); returns how many."""
    result = conn.execute(update(item_notes).where(
        item_notes.c.project_id == project.id, item_notes.c.item_id == item_id, item_notes.c.resolved_at.is_(None),
    ).values(resolved_at=now or utcnow(), resolved_by=user_id))
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class Note:
    id: int
    item_id: int
    user: str
    kind: str
    reason: str | None
    text: str | None
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None

    def public(self) -> dict[str, Any]:
        """The note as JSON-ready data (export, API)."""
        return {"id": self.id, "user": self.user, "kind": self.kind, "reason": self.reason, "text": self.text,
                "created_at": self.created_at.isoformat(),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "resolved_by": self.resolved_by}


@dataclass(frozen=True)
class FlaggedItem:
    """An item with notes, for the flags page: its display, final label state and its notes."""

    id: int
    external_id: str
    display: dict[str, Any]
    label_tag_id: int | None
    label_mask: int | None
    label_source: str | None
    notes: list[Note]


@dataclass(frozen=True)
class FlaggedPage:
    items: list[FlaggedItem]
    next_after: int | None  # the cursor of the next page (a note id), None on the last page
    open_counts: dict[str, int]  # open notes in the project: unsure, with a comment, skips


def _note_filter(project: Project, *, state: str, kind: str | None) -> list[ColumnElement[bool]]:
    if state not in ("open", "resolved", "all"):
        raise InvalidInputError(f"unknown state {state!r}: use open, resolved or all")
    if kind is not None and kind not in NOTE_KINDS:
        raise InvalidInputError(f"unknown kind {kind!r}: use one of {', '.join(NOTE_KINDS)}")
    where = [item_notes.c.project_id == project.id]
    if state != "all":
        where.append(item_notes.c.resolved_at.is_(None) if state == "open" else item_notes.c.resolved_at.is_not(None))
    if kind == "comment":  # every note with a comment (a flag or a skip may carry one)
        where.append(item_notes.c.text.is_not(None))
    elif kind is not None:
        where.append(item_notes.c.kind == kind)
    return where


def _notes(conn: Connection, where: list[ColumnElement[bool]]) -> list[Note]:
    resolver = users.alias("resolver")
    rows = conn.execute(
        select(item_notes.c.id, item_notes.c.item_id, users.c.name, item_notes.c.kind, item_notes.c.reason,
               item_notes.c.text, item_notes.c.created_at, item_notes.c.resolved_at, resolver.c.name)
        .select_from(item_notes.join(users, users.c.id == item_notes.c.user_id)
                     .outerjoin(resolver, resolver.c.id == item_notes.c.resolved_by))
        .where(*where).order_by(item_notes.c.item_id, item_notes.c.id)
    )
    return [Note(*row) for row in rows]


def flagged_items(conn: Connection, *, project: Project, state: str = "open", kind: str | None = None,
                  after: int | None = None, limit: int = 25) -> FlaggedPage:
    """Items with notes matching ``state`` (open, resolved, all) and ``kind`` (``unsure``, ``skip``,
    or ``comment``: any note with a comment), the item with the
    newest such note first; a page of ``limit`` items after cursor ``after`` (from
    :attr:`FlaggedPage.next_after`). Each item carries its matching notes, oldest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"page size must be between 1 and {MAX_PAGE}, got {limit}")
    where = _note_filter(project, state=state, kind=kind)
    newest = func.max(item_notes.c.id).label("newest")
    query = select(item_notes.c.item_id, newest).where(*where).group_by(item_notes.c.item_id)
    if after is not None:
        query = query.having(func.max(item_notes.c.id) < after)
    picked = conn.execute(query.order_by(newest.desc()).limit(limit + 1)).all()
    more = len(picked) > limit
    picked = picked[:limit]
    ids = [row.item_id for row in picked]
    found: dict[int, FlaggedItem] = {}
    if ids:
        notes: dict[int, list[Note]] = {}
        for note in _notes(conn, [*where, item_notes.c.item_id.in_(ids)]):
            notes.setdefault(note.item_id, []).append(note)
        for row in conn.execute(select(items.c.id, items.c.external_id, items.c.display, items.c.label_tag_id,
                                       items.c.label_mask, items.c.label_source).where(items.c.id.in_(ids))):
            found[row.id] = FlaggedItem(row.id, row.external_id, dict(row.display or {}), row.label_tag_id,
                                        row.label_mask, row.label_source, notes.get(row.id, []))
    row = conn.execute(select(
        func.count(case((item_notes.c.kind == "unsure", 1))), func.count(item_notes.c.text),
        func.count(case((item_notes.c.kind == "skip", 1))),
    ).where(item_notes.c.project_id == project.id, item_notes.c.resolved_at.is_(None))).one()
    counts = {"unsure": int(row[0]), "comment": int(row[1]), "skip": int(row[2])}
    return FlaggedPage([found[i] for i in ids if i in found], picked[-1].newest if more else None, counts)


def list_notes(conn: Connection, *, project: Project, state: str = "open", kind: str | None = None,
               item_id: int | None = None) -> list[Note]:
    """The project's notes matching ``state`` and ``kind`` (of one item: ``item_id``), by item
    and age. For the item page and scripts; the flags page pages through :func:`flagged_items`."""
    where = _note_filter(project, state=state, kind=kind)
    if item_id is not None:
        where.append(item_notes.c.item_id == item_id)
    return _notes(conn, where)


def notes_by_external_id(conn: Connection, *, project: Project) -> dict[str, list[dict[str, Any]]]:
    """Every note of the project (open and resolved) as JSON-ready data, by the item's external
    id, oldest first: what ``export --with-comments`` writes. Notes are few beside items, so
    they are read once, not per chunk of the export."""
    resolver = users.alias("resolver")
    rows = conn.execute(
        select(items.c.external_id, item_notes.c.id, item_notes.c.item_id, users.c.name, item_notes.c.kind,
               item_notes.c.reason, item_notes.c.text, item_notes.c.created_at, item_notes.c.resolved_at,
               resolver.c.name)
        .select_from(item_notes.join(items, items.c.id == item_notes.c.item_id)
                     .join(users, users.c.id == item_notes.c.user_id)
                     .outerjoin(resolver, resolver.c.id == item_notes.c.resolved_by))
        .where(item_notes.c.project_id == project.id).order_by(item_notes.c.item_id, item_notes.c.id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(Note(*row[1:]).public())
    return out


def notes_condition(which: str) -> ColumnElement[bool]:
    """The data browser's filter (:data:`FILTERS`): items with an unsure flag (``flagged``), a
    comment (``commented``), a skip reason (``skipped``) or any open note (``open``)."""
    if which == "flagged":
        cond = item_notes.c.kind == "unsure"
    elif which == "commented":
        cond = item_notes.c.text.is_not(None)
    elif which == "skipped":
        cond = item_notes.c.reason.is_not(None)
    elif which == "open":
        cond = item_notes.c.resolved_at.is_(None)
    else:
        raise InvalidInputError(f"unknown notes filter {which!r}: use one of {', '.join(FILTERS)}")
    return exists().where(item_notes.c.item_id == items.c.id, cond)
