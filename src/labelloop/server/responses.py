"""Response helpers of the app: escaped JSON, status codes of our errors, the message of a value
the database refuses, the lease answer."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from labelloop.errors import (
    AlreadyExistsError,
    AuthError,
    ConflictError,
    InvalidInputError,
    LabelloopError,
    LockedError,
    NotEnoughLabelsError,
    NotFoundError,
)
from labelloop.server.logins.pool import TooManyLogins
from labelloop.store.queue import Lease

STATUS = [
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (LockedError, 409),
    (NotEnoughLabelsError, 409),
    (InvalidInputError, 422),
    (AuthError, 401),
    (TooManyLogins, 503),
]


def status_of(exc: LabelloopError) -> int:
    """The HTTP status for one of our errors (400 for any other kind)."""
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def unstorable_message(exc: DataError) -> str:
    """The message for a value the database refused (NUL in text, a number out of range)."""
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
    return f"a value of this request cannot be stored: {reason}"


class SafeJSONResponse(JSONResponse):
    """JSON with ``<``, ``>`` and ``&`` escaped (``\\u003c``...): inert even if sniffed as HTML."""

    def render(self, content: Any) -> bytes:
        raw = super().render(content)
        return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def next_response(lease: Lease, *, undone: str | None = None, multi_label: bool = False) -> SafeJSONResponse:
    """The ``NextPublic`` answer for a lease, rendered directly (no response-model validation);
    with ``undone`` (``UndonePublic``), what an undo undid: "label" or "skip"; ``multi_label``
    (a multi-label project) adds ``"multi_label": true`` (single-label answers are unchanged); a
    lease with a suggestion adds ``"suggestion"``."""
    content: dict[str, Any] = {
        "item": {"id": lease.item_id, "external_id": lease.external_id, "display": lease.display},
        "lease": {"expires_at": lease.expires_at.isoformat().replace("+00:00", "Z")},
    }
    if lease.suggestion is not None:  # issue 14: the model's suggestion (server/suggest/)
        content["suggestion"] = lease.suggestion
    if undone is not None:
        content["undone"] = undone
    if multi_label:
        content["multi_label"] = True
    return SafeJSONResponse(content)
