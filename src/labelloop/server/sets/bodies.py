"""A label request's body, checked against its project's kind.

A single-label project takes ``{"label": "A"}``, a multi-label one ``{"labels": ["A", "B"]}``
(an empty list: labelled, none of the tags applies). :class:`labelloop.server.schemas.LabelCreate`
accepts either shape; :func:`label_request` refuses the one that does not fit the project (or
neither, or both) with an :class:`InvalidInputError` (422) naming the right one, so the JSON
routes and the bearer fast path (:mod:`labelloop.server.fastpath`) give the very same words.
"""

from __future__ import annotations

from typing import Any

from labelloop.errors import InvalidInputError
from labelloop.server.schemas import LabelCreate
from labelloop.store.labelling import LabelRequest
from labelloop.store.projects import Project


def wrong_shape(project: Project) -> InvalidInputError:
    """The refusal of a body of the wrong shape for ``project``."""
    if project.multi_label:
        return InvalidInputError(
            f'project {project.name!r} is multi-label: send {{"labels": [...]}} (an empty list: none applies)')
    return InvalidInputError(f'project {project.name!r} is single-label: send {{"label": "<one of its tags>"}}')


def label_request(project: Project, user_id: int, item_id: int, body: LabelCreate) -> LabelRequest:
    """The store's request for ``body``; InvalidInputError when its shape does not fit the project.
    (Unknown tags are the store's to refuse, in its words.)"""
    if body.labels is None and body.label is not None and not project.multi_label:  # the single-label path
        return LabelRequest(project, user_id, item_id, body.label)
    if body.label is not None or body.labels is None or not project.multi_label:
        raise wrong_shape(project)
    return LabelRequest(project, user_id, item_id, tags=tuple(body.labels))


def label_answer(item_id: int, body: LabelCreate) -> dict[str, Any]:
    """The 201 answer's content: what was recorded (``labels``: each tag once, in the order sent)."""
    if body.labels is None:
        answer: dict[str, Any] = {"item_id": item_id, "label": body.label}
    else:
        answer = {"item_id": item_id, "labels": list(dict.fromkeys(body.labels))}
    if body.comment is not None or body.unsure:  # issue 14: what the note recorded
        answer.update(comment=(body.comment or "").strip() or None, unsure=bool(body.unsure))
    return answer


def decision(project: Project, body: LabelCreate) -> dict[str, Any]:
    """An adjudication's keyword arguments for the store (``tag`` or ``tags``), by the same rule."""
    if body.labels is None and body.label is not None and not project.multi_label:
        return {"tag": body.label}
    if body.label is not None or body.labels is None or not project.multi_label:
        raise wrong_shape(project)
    return {"tags": list(body.labels)}
