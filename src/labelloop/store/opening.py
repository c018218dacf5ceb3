"""Opening a database: one clear error when it cannot be used, and no new database by accident.

:func:`open_engine` (exported as :func:`labelloop.store.open_engine`) creates the engine, opens
one connection at once and brings the schema up to date. Whatever stops that (PostgreSQL down or
refusing, a database that does not exist, a missing SQLite folder, a file that is not a
database, no permission) becomes one :class:`~labelloop.errors.DatabaseUnavailableError`::

    cannot open database postgresql://bob:***@127.0.0.1:5999/x: connection to server ... refused

The URL is shown by :func:`public_url`, never with its password.

``create=False`` is for work that needs an existing database (every command that reads, or
changes a project or user that must exist): a SQLite file that does not exist is not created
(nor its ``-wal``, ``-shm`` or writer lock files), and a database without labelloop's tables
is not migrated; both raise :class:`~labelloop.errors.NoDatabaseError` ("no labelloop
database at ...") instead. ``create=True`` (the default) is for the commands that set a
database up: ``init``, ``user add``, ``migrate``, ``demo``, ``serve``.

:func:`unavailable` turns a driver's connection error met later (a server that went away
mid-command) into the same kind of one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from labelloop.errors import DatabaseUnavailableError, NoDatabaseError
from labelloop.store.engine import make_engine, normalise_url
from labelloop.store.migrate import current_revision, ensure_schema


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "this database cannot be used" rather than a bug: an
    OperationalError (unreachable, refused, missing, locked, read-only), an InterfaceError
    (connection lost) or a bare DatabaseError (SQLite's "file is not a database"); never an
    IntegrityError or ProgrammingError."""
    return isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError


def public_url(url: str) -> str:
    """``url`` as the user gave it, with its password (in the authority or the query) masked."""
    try:
        parsed = make_url(url)
    except Exception:  # an invalid URL is reported by make_engine; show nothing of it here
        return "(invalid URL)"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL, in-memory SQLite and invalid URLs)."""
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):  # a file: URI; SQLite resolves it
        return None
    return Path(parsed.database)


def reason(exc: BaseException, *, url: str) -> str:
    """The driver's message of ``exc`` on one line, without the URL's password; for SQLite,
    said in the user's terms where its own words are vague ("unable to open database file")."""
    original = getattr(exc, "orig", None) or exc
    text = "; ".join(line.strip() for line in str(original).splitlines() if line.strip())
    text = " ".join(text.split())  # PostgreSQL pads "FATAL:  database ..."
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    path = _sqlite_path(url)
    if path is not None and "unable to open database file" in text:
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            return _no_folder(folder)
        if path.is_dir():
            return f"{str(path)!r} is a folder, not a database file"
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
            return f"permission denied: this user cannot read and write the file and its folder ({text})"
    if path is not None and "readonly database" in text:
        return f"permission denied: the file or its folder is not writable for this user ({text})"
    return text or type(original).__name__


def _no_folder(folder: Path) -> str:
    return f"the folder {str(folder)!r} does not exist; create it or choose another path"


def unavailable(exc: BaseException, *, url: str) -> DatabaseUnavailableError:
    """The one-line error for a database that cannot be used (``raise unavailable(...) from None``)."""
    return DatabaseUnavailableError(f"cannot open database {public_url(url)}: {reason(exc, url=url)}")


def no_database(url: str, *, why: str) -> NoDatabaseError:
    return NoDatabaseError(
        f"no labelloop database at {public_url(url)} ({why}); create one with "
        "`labelloop init PROJECT --labels A,B`, or give --db URL of an existing one"
    )


def open_engine(url: str, *, migrate: bool = True, create: bool = True, **kwargs: object) -> Engine:
    """Create an engine for ``url``, check that it opens and bring its schema up to date.

    ``create=False``: refuse (:class:`NoDatabaseError`) a SQLite file that does not exist or
    a database without labelloop's tables, creating nothing. A database that cannot be opened
    raises :class:`DatabaseUnavailableError` naming the URL (without password) and the reason."""
    normalise_url(url)  # ConfigError for an invalid or unsupported URL
    path = _sqlite_path(url)
    if path is not None:
        try:
            folder_missing, file_missing = not path.parent.is_dir(), not path.exists()
        except OSError as exc:  # a folder on the way this user may not enter
            raise DatabaseUnavailableError(
                f"cannot open database {public_url(url)}: permission denied on {str(exc.filename)!r}"
            ) from None
        if folder_missing:
            raise DatabaseUnavailableError(f"cannot open database {public_url(url)}: {_no_folder(path.parent)}")
        if file_missing and not create:
            raise no_database(url, why=f"no file {str(path.resolve())!r}")
    engine = make_engine(url, **kwargs)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
        if revision is None and not create:
            raise no_database(url, why="it has no labelloop tables")
        if migrate:
            ensure_schema(engine)
    except BaseException as exc:
        engine.dispose()
        if isinstance(exc, Exception) and is_unavailable(exc):
            raise unavailable(exc, url=url) from None
        raise
    return engine
