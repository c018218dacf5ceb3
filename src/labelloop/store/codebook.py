"""A project's codebook: per tag a definition (Markdown source) and pinned example items.

Why versions: labellers disagree most when the guidelines are vague, and an admin answers by
rewriting a definition. Whether that helped shows only if every label knows which guidelines it
was made under. So the project's ``codebook_version`` goes up by one on every change of a
definition (:func:`set_definition`; each version's text is kept in ``codebook_entries``), and the
database stamps every new annotation with the version current when it is written (the trigger of
``store/schema.py`` ``CODEBOOK_TRIGGER_DDL``): no insert path in Python or in the PostgreSQL
label functions knows about it, and the labelling hot path sends no extra statement. Labels made
while a project had no codebook (version 0) keep ``codebook_version`` null. A review decision
records its version in ``items.adjudicated_codebook_version`` (:func:`decision_version`, used by
``store/review.py``).

Pinned examples (:func:`pin_example`) are items an admin shows as typical of a tag; pinning does
not change the version (the definitions did not change). Changes are written to the audit log.
Every function takes keyword-only arguments and any connection (writes: a write transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store.browse import record_audit
from labelloop.store.projects import Project
from labelloop.store.quality import AGREEMENT_SOURCES, IMPORT_LABELLER
from labelloop.store.schema import (
    annotations, codebook_entries, codebook_examples, items, projects, tags, users, utcnow)

#: Longest definition (characters of Markdown source).
MAX_DEFINITION = 20_000
#: Most pinned examples per tag (the panel shows them all).
MAX_EXAMPLES = 20
#: Characters of an example's text the codebook carries.
EXAMPLE_CHARS = 600


@dataclass(frozen=True)
class Example:
    item_id: int
    external_id: str
    text: str  # the item's text, cut to EXAMPLE_CHARS


@dataclass(frozen=True)
class Entry:
    """One active tag's current definition ("" when it has none) and its examples."""

    tag: str
    definition: str
    version: int | None  # the codebook version that last changed it (None: never defined)
    updated_at: datetime | None
    updated_by: str | None
    examples: list[Example] = field(default_factory=list)


@dataclass(frozen=True)
class Codebook:
    version: int  # the project's codebook version (0: no definition yet)
    entries: list[Entry]  # active tags in display order

    def entry(self, tag: str) -> Entry:
        for e in self.entries:
            if e.tag == tag:
                return e
        raise NotFoundError(f"no active tag {tag!r} in this codebook")


def current_version(conn: Connection, *, project_id: int) -> int:
    return int(conn.execute(select(projects.c.codebook_version).where(projects.c.id == project_id)).scalar_one())


def _tag_id(conn: Connection, project: Project, tag: Any) -> int:
    """The id of the project's active tag ``tag`` (read fresh), else InvalidInputError."""
    row = conn.execute(
        select(tags.c.id, tags.c.retired).where(tags.c.project_id == project.id, tags.c.name == tag)
    ).first() if isinstance(tag, str) else None
    if row is None or row.retired:
        known = ", ".join(repr(t.name) for t in project.tags if not t.retired)
        what = "retired" if row is not None else "unknown"
        raise InvalidInputError(f"{what} tag {str(tag)[:100]!r} in project {project.name!r}: use one of {known}")
    return int(row.id)


def _latest(conn: Connection, project_id: int) -> dict[int, Any]:
    """tag id -> the row of its newest definition."""
    newest = (
        select(codebook_entries.c.tag_id, func.max(codebook_entries.c.version).label("v"))
        .where(codebook_entries.c.project_id == project_id)
        .group_by(codebook_entries.c.tag_id)
        .subquery()
    )
    rows = conn.execute(
        select(codebook_entries.c.tag_id, codebook_entries.c.definition, codebook_entries.c.version,
               codebook_entries.c.created_at, users.c.name)
        .select_from(
            codebook_entries.join(newest, (newest.c.tag_id == codebook_entries.c.tag_id)
                                  & (newest.c.v == codebook_entries.c.version))
            .outerjoin(users, users.c.id == codebook_entries.c.user_id)
        )
        .where(codebook_entries.c.project_id == project_id)
    )
    return {int(r.tag_id): r for r in rows}


def _examples(conn: Connection, project_id: int) -> dict[int, list[Example]]:
    out: dict[int, list[Example]] = {}
    rows = conn.execute(
        select(codebook_examples.c.tag_id, items.c.id, items.c.external_id, func.substr(items.c.text, 1, EXAMPLE_CHARS))
        .select_from(codebook_examples.join(items, items.c.id == codebook_examples.c.item_id))
        .where(codebook_examples.c.project_id == project_id)
        .order_by(codebook_examples.c.tag_id, codebook_examples.c.created_at, items.c.id)
    )
    for tag_id, item_id, external_id, text in rows:
        out.setdefault(int(tag_id), []).append(Example(int(item_id), external_id, text or ""))
    return out


def get_codebook(conn: Connection, *, project: Project) -> Codebook:
    """The project's codebook: its version and, per active tag in display order, the current
    definition and pinned examples. Reads the tags fresh (a cached Project may be stale)."""
    version = current_version(conn, project_id=project.id)
    active = conn.execute(
        select(tags.c.id, tags.c.name).where(tags.c.project_id == project.id, tags.c.retired.is_(False))
        .order_by(tags.c.position, tags.c.id)
    ).all()
    latest = _latest(conn, project.id)
    examples = _examples(conn, project.id)
    entries = []
    for tag_id, name in active:
        row = latest.get(int(tag_id))
        entries.append(Entry(
            tag=name,
            definition=row.definition if row is not None else "",
            version=int(row.version) if row is not None else None,
            updated_at=row.created_at if row is not None else None,
            updated_by=row.name if row is not None else None,
            examples=examples.get(int(tag_id), []),
        ))
    return Codebook(version, entries)


def check_definition(definition: Any) -> str:
    """A definition as stored: a string of at most MAX_DEFINITION characters, line ends unified,
    trailing blanks dropped; InvalidInputError otherwise."""
    if not isinstance(definition, str):
        raise InvalidInputError("a definition is Markdown text (a string)")
    text = definition.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if "\x00" in text:
        raise InvalidInputError("a definition cannot contain NUL characters")
    if len(text) > MAX_DEFINITION:
        raise InvalidInputError(f"the definition has {len(text):,} characters; at most {MAX_DEFINITION:,} are allowed")
    return text


def set_definition(conn: Connection, *, project: Project, tag: str, definition: Any, user_id: int | None) -> dict[str, Any]:
    """Make ``definition`` (Markdown source; "" clears it) tag ``tag``'s definition. A change
    raises the project's codebook version by one and keeps the new text as that version; the
    same text again changes nothing. Returns ``tag``, ``version`` (the project's, after) and
    ``changed``. Unknown or retired tag, or a bad definition: InvalidInputError."""
    text = check_definition(definition)
    tag_id = _tag_id(conn, project, tag)
    previous = _latest(conn, project.id).get(tag_id)
    if (previous.definition if previous is not None else "") == text:
        return {"tag": tag, "version": current_version(conn, project_id=project.id), "changed": False}
    # One atomic increment (it takes the project row's lock): concurrent edits get consecutive
    # versions, and codebook_entries' unique (project, version) holds.
    version = conn.execute(
        update(projects).where(projects.c.id == project.id)
        .values(codebook_version=projects.c.codebook_version + 1)
        .returning(projects.c.codebook_version)
    ).scalar_one()
    conn.execute(insert(codebook_entries).values(
        project_id=project.id, tag_id=tag_id, version=version, definition=text, user_id=user_id, created_at=utcnow()))
    record_audit(conn, project_id=project.id, user_id=user_id, action="codebook.set",
                 details={"tag": tag, "version": int(version), "chars": len(text)})
    return {"tag": tag, "version": int(version), "changed": True}


def history(conn: Connection, *, project: Project, tag: str | None = None) -> list[dict[str, Any]]:
    """Every version of the definitions (of ``tag`` only, if given), newest first: ``version``,
    ``tag``, ``definition``, ``user``, ``created_at``."""
    query = (
        select(codebook_entries.c.version, tags.c.name, codebook_entries.c.definition, users.c.name.label("user"),
               codebook_entries.c.created_at)
        .select_from(codebook_entries.join(tags, tags.c.id == codebook_entries.c.tag_id)
                     .outerjoin(users, users.c.id == codebook_entries.c.user_id))
        .where(codebook_entries.c.project_id == project.id)
        .order_by(codebook_entries.c.version.desc())
    )
    if tag is not None:
        query = query.where(codebook_entries.c.tag_id == _tag_id(conn, project, tag))
    return [{"version": int(r.version), "tag": r.name, "definition": r.definition, "user": r.user,
             "created_at": r.created_at} for r in conn.execute(query)]


def _item(conn: Connection, project: Project, item_id: Any) -> Any:
    if isinstance(item_id, bool) or not isinstance(item_id, int) or not 1 <= item_id <= 2**63 - 1:
        raise InvalidInputError(f"item ids are positive integers, got {str(item_id)[:40]!r}")
    row = conn.execute(
        select(items.c.id, items.c.external_id).where(items.c.id == item_id, items.c.project_id == project.id)
    ).first()
    if row is None:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}")
    return row


def pin_example(conn: Connection, *, project: Project, tag: str, item_id: Any, user_id: int | None) -> bool:
    """Pin item ``item_id`` as an example of ``tag``; False when it was pinned already. At most
    MAX_EXAMPLES per tag (ConflictError beyond). The codebook version does not change."""
    tag_id = _tag_id(conn, project, tag)
    item = _item(conn, project, item_id)
    if conn.execute(select(codebook_examples.c.item_id).where(
            codebook_examples.c.tag_id == tag_id, codebook_examples.c.item_id == item.id)).first():
        return False
    count = conn.execute(select(func.count()).where(codebook_examples.c.tag_id == tag_id)).scalar_one()
    if count >= MAX_EXAMPLES:
        raise ConflictError(f"tag {tag!r} has {MAX_EXAMPLES} pinned examples already: unpin one first")
    conn.execute(insert(codebook_examples).values(
        tag_id=tag_id, item_id=item.id, project_id=project.id, user_id=user_id, created_at=utcnow()))
    record_audit(conn, project_id=project.id, user_id=user_id, action="codebook.pin",
                 details={"tag": tag, "item_id": item.id, "external_id": item.external_id})
    return True


def unpin_example(conn: Connection, *, project: Project, tag: str, item_id: Any, user_id: int | None) -> None:
    """Unpin item ``item_id`` from ``tag``'s examples; NotFoundError if it was not pinned there."""
    tag_id = _tag_id(conn, project, tag)
    item = _item(conn, project, item_id)
    done = conn.execute(delete(codebook_examples).where(
        codebook_examples.c.tag_id == tag_id, codebook_examples.c.item_id == item.id)).rowcount
    if not done:
        raise NotFoundError(f"item {item.id} is not a pinned example of tag {tag!r}")
    record_audit(conn, project_id=project.id, user_id=user_id, action="codebook.unpin",
                 details={"tag": tag, "item_id": item.id, "external_id": item.external_id})


def pinned_tags(conn: Connection, *, project: Project, item_id: int) -> list[str]:
    """The active tags item ``item_id`` is a pinned example of, in display order."""
    return list(conn.execute(
        select(tags.c.name)
        .select_from(codebook_examples.join(tags, tags.c.id == codebook_examples.c.tag_id))
        .where(codebook_examples.c.item_id == item_id, codebook_examples.c.project_id == project.id,
               tags.c.retired.is_(False))
        .order_by(tags.c.position, tags.c.id)
    ).scalars())


def decision_version() -> Any:
    """The value a review decision's UPDATE of ``items`` gives ``adjudicated_codebook_version``:
    the item's project's version, null while it has no codebook (a correlated subquery: no
    extra statement)."""
    return (
        select(func.nullif(projects.c.codebook_version, 0))
        .where(projects.c.id == items.c.project_id)
        .scalar_subquery()
    )


def overlap_by_version(conn: Connection, *, project: Project) -> list[tuple[int, int, str, int]]:
    """``(codebook version, item id, labeller name, tag id or mask)`` of the human and imported
    labels on items that at least two labellers labelled *under the same codebook version*
    (version 0: no codebook), by version and item: agreement among people who read the same
    guidelines. Single-label projects leave out retired tags' labels, as
    :func:`labelloop.store.quality.overlap_labels` does; multi-label masks are as stored."""
    version = func.coalesce(annotations.c.codebook_version, 0)
    who = func.coalesce(annotations.c.user_id, 0)
    if project.multi_label:
        base: Any = annotations
        value = annotations.c.tag_mask
        active = [annotations.c.tag_mask.is_not(None)]
    else:
        base = annotations.join(tags, tags.c.id == annotations.c.tag_id)
        value = annotations.c.tag_id
        active = [tags.c.retired.is_(False)]
    active += [annotations.c.project_id == project.id, annotations.c.source.in_(AGREEMENT_SOURCES)]
    overlap = (
        select(annotations.c.item_id, version.label("v")).select_from(base).where(*active)
        .group_by(annotations.c.item_id, version)
        .having(func.count(func.distinct(who)) >= 2)
        .subquery()
    )
    rows = conn.execute(
        select(version, annotations.c.item_id, users.c.name, value)
        .select_from(base.outerjoin(users, users.c.id == annotations.c.user_id)
                     .join(overlap, (overlap.c.item_id == annotations.c.item_id) & (overlap.c.v == version)))
        .where(*active)
        .order_by(version, annotations.c.item_id, annotations.c.id)
    )
    return [(int(v), int(item), name if name is not None else IMPORT_LABELLER, int(val)) for v, item, name, val in rows]


def labels_by_version(conn: Connection, *, project_id: int) -> dict[int, int]:
    """Human and imported labels of the project per codebook version they were made under (0:
    no codebook)."""
    version = func.coalesce(annotations.c.codebook_version, 0)
    return {int(v): int(n) for v, n in conn.execute(
        select(version, func.count()).where(annotations.c.project_id == project_id,
                                            annotations.c.source.in_(("human", "import")))
        .group_by(version))}
