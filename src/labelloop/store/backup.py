"""Consistent online backups of a SQLite database (PostgreSQL: use pg_dump).

The copy is written to a new temporary file beside the target and moved into place when
complete (:mod:`labelloop.store.outfiles`): never through a symbolic link, never over an
existing file, readable by its owner only (mode 0600, or stricter with a stricter umask),
because it holds the session secret and the password hashes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from labelloop.errors import InvalidInputError
from labelloop.store.outfiles import BACKUP_MODE, new_file


def backup_sqlite(engine: Engine, *, target: Path) -> int:
    """Copy the live database to ``target`` with SQLite's online backup API.

    Readers and writers may go on meanwhile; the copy is a consistent snapshot. Returns the
    size of the backup in bytes. The target must not exist (no silent overwrite)."""
    if engine.dialect.name != "sqlite":
        raise InvalidInputError("`labelloop backup` copies SQLite databases; for PostgreSQL use pg_dump")
    target = Path(target)
    with new_file(target, mode=BACKUP_MODE, hint="choose a new file name") as partial:
        raw = engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            dest = sqlite3.connect(partial)
            try:
                source.backup(dest, pages=1024)
            finally:
                dest.close()
        finally:
            raw.close()
    return target.stat().st_size
