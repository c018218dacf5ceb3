"""Pydantic schemas of the JSON API (``XPublic`` answers, ``XCreate`` request bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

MAX_TAGS = 63  # a multi-label project has at most 63 tags (bits of a 64-bit mask)
MAX_COMMENT = 2000  # = labelloop.store.notes.MAX_COMMENT (a note's comment, in characters)
SkipReason = Literal["unclear", "off-topic", "needs-context", "other"]  # = store.schema.SKIP_REASONS


class ItemPublic(BaseModel):
    id: int
    external_id: str
    display: dict[str, Any]


class LeasePublic(BaseModel):
    expires_at: datetime


class NextPublic(BaseModel):
    """An item leased to you, to be labelled before ``lease.expires_at``."""

    item: ItemPublic
    lease: LeasePublic
    multi_label: bool = Field(
        False, description='Present (true) in a multi-label project: label the item with {"labels": [...]}; '
                           'absent in a single-label one ({"label": ...}).')


class UndonePublic(NextPublic):
    """The item whose label or skip you undid, leased to you again."""

    undone: Literal["label", "skip"] = Field(description="What was undone: your label, or your skip.")


TagName = Annotated[str, Field(min_length=1, max_length=200)]


class LabelCreate(BaseModel):
    """``{"label": "A"}`` in a single-label project, ``{"labels": ["A", "B"]}`` in a multi-label
    one (an empty list: labelled, none of the tags applies). Which one the project takes is
    checked against the project (:func:`labelloop.server.sets.bodies.label_request`): the other
    shape, or neither, is a 422 naming the right one."""

    model_config = ConfigDict(extra="forbid")

    label: TagName | None = Field(None, description="Single-label projects: one of the project's tags.")
    labels: list[TagName] | None = Field(
        None, max_length=MAX_TAGS,
        description="Multi-label projects: the tags that apply (an empty list: none of them applies).")
    comment: str | None = Field(None, max_length=MAX_COMMENT,
                                description="A comment on the item for the admins (optional; issue 14).")
    unsure: StrictBool | None = Field(None, description="true: you are unsure of this label (flags the item "
                                                        "to the admins; optional).")


class SkipCreate(BaseModel):
    """An optional body of a skip: why, and a comment (both optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: SkipReason | None = Field(None, description="Why you skip: unclear, off-topic, needs-context or other.")
    comment: str | None = Field(None, max_length=MAX_COMMENT, description="A comment for the admins.")


class LabelPublic(BaseModel):
    """What was recorded: ``label`` (single-label projects) or ``labels`` (multi-label ones),
    and the ``comment`` and ``unsure`` flag when sent."""

    item_id: int
    label: str | None = None
    labels: list[str] | None = None
    comment: str | None = None
    unsure: bool | None = None


class NotePublic(BaseModel):
    """A comment, flag or skip reason on an item (issue 14)."""

    id: int
    item_id: int
    user: str
    kind: Literal["comment", "unsure", "skip"]
    reason: str | None = None
    text: str | None = None
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None


class ResolvedPublic(BaseModel):
    id: int
    resolved: bool = Field(description="false: the note was resolved already (nothing changed).")


class AdjudicatePublic(BaseModel):
    """An admin's decision on an item: its final label (or, multi-label, its set) from now on."""

    item_id: int
    external_id: str
    label: str | None = None
    labels: list[str] | None = None
    label_source: str = Field(description="Always 'human': the decision counts as a human label.")


class StatsPublic(BaseModel):
    project: str
    items: int
    labelled: int = Field(description="Items with a final label.")
    remaining: int = Field(description="Items that still need labels.")
    conflicts: int
    per_tag: dict[str, int] = Field(description="Final labels per tag, in the project's tag order (multi-label: "
                                               "items whose final set holds the tag).")
    per_labeller: dict[str, int] = Field(description="Human labels per user name.")
    yours_today: int = Field(description="Your labels since 00:00 UTC.")
    yours_total: int


class ProjectPublic(BaseModel):
    name: str
    tags: list[str]
    items: int
    labelled: int
    remaining: int


class UserPublic(BaseModel):
    id: int
    name: str
    role: str


class ErrorPublic(BaseModel):
    detail: Any
