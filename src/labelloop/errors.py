"""One exception hierarchy for labelloop.

Every error we raise on purpose derives from :class:`LabelloopError`, so callers (the CLI,
the HTTP layer) can turn it into a clear message with one ``except``::

    LabelloopError
    ├── ConfigError              a setting from the environment or the command line is invalid
    ├── StoreError               the database cannot be used as asked
    │   ├── SchemaTooNewError    the database was migrated by a newer labelloop
    │   ├── DatabaseUnavailableError  the database cannot be opened (down, missing, not a database, ...)
    │   │   └── NoDatabaseError  no labelloop database exists there (and none was to be created)
    │   ├── NotFoundError        a named project, item, user or tag does not exist
    │   ├── AlreadyExistsError   a project, user or tag of that name exists already
    │   └── ConflictError        the request clashes with current state (lease held by another, ...)
    ├── InvalidInputError        a value given by a user is not acceptable (unknown tag, bad role, ...)
    │   ├── InputFileError       a file to import is malformed; names file, line and field
    │   └── SearchSyntaxError    a search query cannot be parsed (unclosed quote, dangling AND, ...)
    ├── AuthError                missing or bad credentials
    ├── NotEnoughLabelsError     the model cannot be trained or evaluated yet
    └── LockedError              another orchestrator holds the project's lock

The CLI exits with status 2 on any of them and prints ``error: <message>``.
"""

from __future__ import annotations


class LabelloopError(Exception):
    """Base class of every error labelloop raises on purpose."""


class ConfigError(LabelloopError):
    """A setting is invalid."""


class StoreError(LabelloopError):
    """The database cannot be used as asked."""


class SchemaTooNewError(StoreError):
    """The database schema is newer than this version of labelloop knows."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be opened or used: server down or refusing, missing database or
    folder, a file that is not a database, no permission. The message names the URL (never
    its password) and the reason."""


class NoDatabaseError(DatabaseUnavailableError):
    """A command that needs an existing database found none (and must not create one)."""


class NotFoundError(StoreError):
    """A named object does not exist."""


class AlreadyExistsError(StoreError):
    """An object with that name exists already."""


class ConflictError(StoreError):
    """The request clashes with the current state of the data."""


class InvalidInputError(LabelloopError):
    """A value given by a user is not acceptable."""


class InputFileError(InvalidInputError):
    """A file to import is malformed.

    The message always names the file and, where known, the line and the field, so that one
    line is enough to find and fix the problem.
    """

    def __init__(self, path: str, problem: str, *, line: int | None = None, field: str | None = None):
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class SearchSyntaxError(InvalidInputError):
    """A search query cannot be parsed; the message names the problem and the fix (HTTP 422)."""


class AuthError(LabelloopError):
    """Missing or bad credentials."""


class NotEnoughLabelsError(LabelloopError):
    """There are too few labels (or too few tags) to train or evaluate a model."""


class LockedError(LabelloopError):
    """Another orchestrator holds the lock of this project."""
