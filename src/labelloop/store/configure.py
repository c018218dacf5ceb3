"""Changing a project's settings (``labelloop configure``): validate, store, re-target, audit-log.

A change of ``overlap_fraction`` or ``overlap_k`` is applied at once to every item that has no
label yet (:func:`labelloop.store.items.apply_overlap`, one UPDATE); items with labels keep
their ``target_labels``. A change of a model setting (:data:`MODEL_SETTINGS`) requests a
retrain, so the new model serves from the next round. Every change is recorded in the project's audit log
(action ``project.configure``, details ``{"changes": {key: {"from": old, "to": new}}, ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from labelloop.store.browse import record_audit
from labelloop.store.items import apply_overlap
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS, Project, check_settings, update_settings
from labelloop.store.runs import request_retrain

_FLOATS = ("overlap_fraction", "audit_fraction", "exploration", "gold_fraction", "gold_min_accuracy")
_INTS = ("overlap_k", "min_new_labels", "lease_seconds")
#: Settings of the model in the loop: changing one requests a retrain.
MODEL_SETTINGS = frozenset({"model", "strategy", "exploration", "class_weight", "bulk_training"})


@dataclass(frozen=True)
class Configured:
    """The project's effective settings after a change, what changed (old, new) and how many
    unlabelled items got a new ``target_labels``."""

    settings: dict[str, Any]
    changes: dict[str, tuple[Any, Any]]
    retargeted: int = 0


def effective_settings(project: Project) -> dict[str, Any]:
    """Every project setting with its value (the default where the project sets none)."""
    return {key: project.setting(key) for key in PROJECT_SETTINGS_DEFAULTS}


def normalise_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validated settings with plain types (floats, ints; ``None`` kept where allowed)."""
    check_settings(values)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is not None and key in _FLOATS:
            value = float(value)
        elif value is not None and key in _INTS:
            value = int(value)
        out[key] = value
    return out


def configure_project(
    conn: Connection, *, project: Project, values: dict[str, Any], user_id: int | None = None
) -> Configured:
    """Validate and apply ``values`` to the project's settings (nothing changes on an error)."""
    values = normalise_settings(values)
    before = effective_settings(project)
    changes = {key: (before[key], value) for key, value in values.items() if before[key] != value}
    if not changes:
        return Configured(before, {})
    update_settings(conn, project_id=project.id, values={key: new for key, (_old, new) in changes.items()})
    after = {**before, **{key: new for key, (_old, new) in changes.items()}}
    retargeted = 0
    if "overlap_fraction" in changes or "overlap_k" in changes:
        retargeted = apply_overlap(
            conn, project_id=project.id, fraction=after["overlap_fraction"], k=after["overlap_k"]
        )
    if changes.keys() & MODEL_SETTINGS:  # a new model or strategy serves from the next round on
        request_retrain(conn, project_id=project.id)
    record_audit(
        conn, project_id=project.id, user_id=user_id, action="project.configure",
        details={"changes": {key: {"from": old, "to": new} for key, (old, new) in changes.items()},
                 "retargeted_items": retargeted},
    )
    return Configured(after, changes, retargeted)
