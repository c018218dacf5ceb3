"""Projects, their ordered tags and their settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from labelloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from labelloop.store.names import name_problem
from labelloop.store.schema import projects, tags, utcnow

MAX_TAG_LENGTH = 200
# A multi-label project's tags are bits 0..62 of a signed 64-bit mask, retired ones included.
MAX_MULTI_LABEL_TAGS = 63

# Project settings and their defaults; `labelloop configure` changes them per project.
PROJECT_SETTINGS_DEFAULTS: dict[str, Any] = {
    "lease_seconds": None,  # None: the LABELLOOP_LEASE_SECONDS setting
    "overlap_fraction": 0.0,
    "overlap_k": 2,
    "audit_fraction": 0.05,
    "min_new_labels": 10,
    "model": "tfidf-logreg",
    "strategy": "margin",
    "exploration": 0.1,
    "class_weight": None,
    "show_item_ids": False,  # the labelling page shows each item's external id (ids may give answers away)
    "bulk_training": True,  # bulk labels (store/bulklabels.py) train the model
    "steering": True,  # labellers may steer their queue (search, similar, likely, unsure, random)
    "gold_fraction": 0.0,  # share of served items that are gold items (store/gold.py); at most MAX_GOLD_FRACTION
    "gold_min_accuracy": 0.8,  # a labeller whose gold accuracy is surely below this is flagged
}
MAX_GOLD_FRACTION = 0.5


@dataclass(frozen=True)
class Tag:
    id: int
    name: str
    position: int
    retired: bool = False
    bit: int | None = None  # multi-label projects: the tag's bit in the masks (never reused)


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    tags: tuple[Tag, ...]
    id_column: str
    display_columns: tuple[str, ...]
    seed: int
    current_run_id: int | None
    settings: dict[str, Any] = field(default_factory=dict)
    multi_label: bool = False

    @property
    def tag_names(self) -> list[str]:
        """Active tags in their display order."""
        return [t.name for t in self.tags if not t.retired]

    @property
    def tag_bits(self) -> dict[str, int]:
        """Multi-label projects: active tag name -> bit, in display order (empty otherwise)."""
        return {t.name: t.bit for t in self.tags if not t.retired and t.bit is not None}

    def tag_id(self, name: str) -> int:
        for t in self.tags:
            if t.name == name and not t.retired:
                return t.id
        raise InvalidInputError(f"unknown tag {name!r}; project {self.name!r} has: {', '.join(self.tag_names)}")

    def tag_name(self, tag_id: int) -> str:
        for t in self.tags:
            if t.id == tag_id:
                return t.name
        raise NotFoundError(f"no tag with id {tag_id} in project {self.name!r}")

    def setting(self, key: str) -> Any:
        return self.settings.get(key, PROJECT_SETTINGS_DEFAULTS[key])


def parse_tag_list(text: str) -> list[str]:
    """Split a comma-separated tag list, rejecting empty or repeated names."""
    names = [part.strip() for part in text.split(",")]
    names = [n for n in names if n]
    if not names:
        raise InvalidInputError("give at least one tag, e.g. --labels 'Personal Stories,Advocacy'")
    validate_tag_names(names)
    return names


def validate_tag_names(names: list[str]) -> None:
    """Tag names: 1-200 characters, no surrounding spaces, none twice, and no character
    :func:`labelloop.store.names.name_problem` refuses (control, bidirectional, ``.``/``..``)."""
    seen: set[str] = set()
    for name in names:
        problem = name_problem(name)
        if problem is not None:
            raise InvalidInputError(f"invalid tag name {name!r}: {problem}")
        if not name or name != name.strip():
            raise InvalidInputError(f"tag {name!r} is empty or has surrounding spaces")
        if len(name) > MAX_TAG_LENGTH:
            raise InvalidInputError(f"tag {name[:40]!r}... is longer than {MAX_TAG_LENGTH} characters")
        if name in seen:
            raise InvalidInputError(f"tag {name!r} is given twice")
        seen.add(name)


def validate_project_name(name: str) -> None:
    """Project names: 1-200 characters, no '/' or surrounding spaces, and no character
    :func:`labelloop.store.names.name_problem` refuses (control, bidirectional, ``.``/``..``)."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidInputError(f"invalid project name {name!r}: {problem}")
    if not name or len(name) > 200 or name != name.strip() or "/" in name:
        raise InvalidInputError(
            f"invalid project name {name!r}: 1-200 characters, no '/', control characters or surrounding spaces"
        )


def check_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validate project settings; returns them unchanged. InvalidInputError names the problem.

    Model and strategy names are checked for type only here (the store knows no models);
    ``labelloop configure`` and the orchestrator resolve them."""
    unknown = set(values) - set(PROJECT_SETTINGS_DEFAULTS)
    if unknown:
        raise InvalidInputError(f"unknown project settings: {', '.join(sorted(unknown))}")
    try:
        for key in ("overlap_fraction", "audit_fraction", "exploration"):
            if key in values and not 0.0 <= float(values[key]) <= 1.0:
                raise InvalidInputError(f"{key} must be between 0 and 1, got {values[key]}")
        if "gold_fraction" in values and not 0.0 <= float(values["gold_fraction"]) <= MAX_GOLD_FRACTION:
            raise InvalidInputError(
                f"gold_fraction must be between 0 and {MAX_GOLD_FRACTION}, got {values['gold_fraction']}")
        if "gold_min_accuracy" in values and not 0.0 <= float(values["gold_min_accuracy"]) <= 1.0:
            raise InvalidInputError(f"gold_min_accuracy must be between 0 and 1, got {values['gold_min_accuracy']}")
        if "overlap_k" in values and int(values["overlap_k"]) < 2:
            raise InvalidInputError(f"overlap_k must be at least 2, got {values['overlap_k']}")
        if values.get("lease_seconds") is not None and int(values["lease_seconds"]) < 5:
            raise InvalidInputError("lease_seconds must be at least 5")
        if "min_new_labels" in values and int(values["min_new_labels"]) < 1:
            raise InvalidInputError("min_new_labels must be at least 1")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid project setting value: {exc}") from None
    for key in ("model", "strategy"):
        if key in values and (not isinstance(values[key], str) or not values[key].strip()):
            raise InvalidInputError(f"{key} must be a non-empty name, got {values[key]!r}")
    if "steering" in values and not isinstance(values["steering"], bool):
        raise InvalidInputError(f"steering must be on or off, got {values['steering']!r}")
    if "show_item_ids" in values and not isinstance(values["show_item_ids"], bool):
        raise InvalidInputError(f"show_item_ids must be true or false, got {values['show_item_ids']!r}")
    if "bulk_training" in values and not isinstance(values["bulk_training"], bool):
        raise InvalidInputError(f"bulk_training must be true or false, got {values['bulk_training']!r}")
    weight = values.get("class_weight")
    if weight is not None and weight != "balanced" and not isinstance(weight, dict):
        raise InvalidInputError(f"class_weight must be 'balanced' or none, got {weight!r}")
    return values


def create_project(
    conn: Connection,
    *,
    name: str,
    labels: list[str],
    settings: dict[str, Any] | None = None,
    seed: int | None = None,
    multi_label: bool = False,
) -> Project:
    """A new project with these tags in this order. ``multi_label``: each item gets a set of
    tags (each tag a bit; at most 63 tags, retired ones included), fixed for the project's life."""
    validate_project_name(name)
    validate_tag_names(labels)
    if multi_label:
        check_tag_count(name, used=0, adding=len(labels))
    if conn.execute(select(projects.c.id).where(projects.c.name == name)).first():
        raise AlreadyExistsError(f"project {name!r} exists already")
    now = utcnow()
    project_id = conn.execute(
        insert(projects).values(
            name=name,
            display_columns=[],
            settings=check_settings(dict(settings or {})),
            seed=secrets.randbelow(2**31) if seed is None else seed,
            created_at=now,
            multi_label=bool(multi_label),
        )
    ).inserted_primary_key[0]
    add_tags(conn, project_id=project_id, names=labels)
    return get_project(conn, name=name)


def check_tag_count(project_name: str, *, used: int, adding: int) -> None:
    """A multi-label project's tags, retired ones included, fit in 63 bits (InvalidInputError)."""
    if used + adding > MAX_MULTI_LABEL_TAGS:
        raise InvalidInputError(
            f"a multi-label project has at most {MAX_MULTI_LABEL_TAGS} tags, retired ones included: project "
            f"{project_name!r} has {used} and would have {used + adding}; merge or leave out tags"
        )


def add_tags(conn: Connection, *, project_id: int, names: list[str]) -> None:
    """Append tags at the end of the project's order; existing names are an error. In a
    multi-label project each new tag gets the next free bit (InvalidInputError past 63 tags)."""
    validate_tag_names(names)
    existing = set(conn.execute(select(tags.c.name).where(tags.c.project_id == project_id)).scalars())
    clash = [n for n in names if n in existing]
    if clash:
        raise AlreadyExistsError(f"tag {clash[0]!r} exists already")
    start = conn.execute(
        select(func.coalesce(func.max(tags.c.position), -1)).where(tags.c.project_id == project_id)
    ).scalar_one()
    project = conn.execute(
        select(projects.c.name, projects.c.multi_label).where(projects.c.id == project_id)
    ).one()
    first_bit = None
    if project.multi_label:
        first_bit = conn.execute(
            select(func.coalesce(func.max(tags.c.bit), -1)).where(tags.c.project_id == project_id)
        ).scalar_one() + 1
        check_tag_count(project.name, used=first_bit, adding=len(names))
    now = utcnow()
    if names:
        conn.execute(
            insert(tags),
            [
                {"project_id": project_id, "name": n, "position": start + 1 + i, "created_at": now,
                 "bit": None if first_bit is None else first_bit + i}
                for i, n in enumerate(names)
            ],
        )


def _load(conn: Connection, row: Any) -> Project:
    tag_rows = conn.execute(
        select(tags.c.id, tags.c.name, tags.c.position, tags.c.retired, tags.c.bit)
        .where(tags.c.project_id == row.id)
        .order_by(tags.c.position)
    ).all()
    return Project(
        id=row.id,
        name=row.name,
        tags=tuple(Tag(r.id, r.name, r.position, bool(r.retired), r.bit) for r in tag_rows),
        id_column=row.id_column,
        display_columns=tuple(row.display_columns or ()),
        seed=row.seed,
        current_run_id=row.current_run_id,
        settings=dict(row.settings or {}),
        multi_label=bool(row.multi_label),
    )


def get_project(conn: Connection, *, name: str) -> Project:
    row = conn.execute(select(projects).where(projects.c.name == name)).first()
    if row is None:
        known = list_project_names(conn)
        hint = f"; known projects: {', '.join(known)}" if known else "; create it with `labelloop init`"
        raise NotFoundError(f"no project named {name!r}{hint}")
    return _load(conn, row)


def get_project_by_id(conn: Connection, *, project_id: int) -> Project:
    row = conn.execute(select(projects).where(projects.c.id == project_id)).first()
    if row is None:
        raise NotFoundError(f"no project with id {project_id}")
    return _load(conn, row)


def list_project_names(conn: Connection) -> list[str]:
    return list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())


def update_settings(conn: Connection, *, project_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Merge ``values`` into the project's settings and return the new settings."""
    check_settings(values)
    current = conn.execute(select(projects.c.settings).where(projects.c.id == project_id)).scalar_one()
    merged = {**(current or {}), **values}
    conn.execute(update(projects).where(projects.c.id == project_id).values(settings=merged))
    return merged


def set_import_columns(
    conn: Connection, *, project_id: int, id_column: str, display_columns: list[str]
) -> None:
    """Remember the id column's name and the display columns (new ones appended in order)."""
    current = conn.execute(
        select(projects.c.display_columns).where(projects.c.id == project_id)
    ).scalar_one()
    merged = list(current or [])
    merged += [c for c in display_columns if c not in merged]
    conn.execute(
        update(projects)
        .where(projects.c.id == project_id)
        .values(id_column=id_column, display_columns=merged)
    )
