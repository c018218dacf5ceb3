"""Pydantic schemas of the JSON API (``XPublic`` answers, ``XCreate`` request bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class UndonePublic(NextPublic):
    """The item whose label or skip you undid, leased to you again."""

    undone: Literal["label", "skip"] = Field(description="What was undone: your label, or your skip.")


class LabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200, description="One of the project's tags.")


class LabelPublic(BaseModel):
    item_id: int
    label: str


class AdjudicatePublic(BaseModel):
    """An admin's decision on an item: its final label from now on."""

    item_id: int
    external_id: str
    label: str
    label_source: str = Field(description="Always 'human': the decision counts as a human label.")


class StatsPublic(BaseModel):
    project: str
    items: int
    labelled: int = Field(description="Items with a final label.")
    remaining: int = Field(description="Items that still need labels.")
    conflicts: int
    per_tag: dict[str, int] = Field(description="Final labels per tag, in the project's tag order.")
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
