"""Consistent online backups of a SQLite database (PostgreSQL: use pg_dump)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from labelloop.errors import InvalidInputError


def backup_sqlite(engine: Engine, *, target: Path) -> int:
    """Copy the live database to ``target`` with SQLite's online backup API.

    Readers and writers may go on meanwhile; the copy is a consistent snapshot. Returns the
    size of the backup in bytes. The target must not exist (no silent overwrite).
    """
    if engine.dialect.name != "sqlite":
        raise InvalidInputError("`labelloop backup` copies SQLite databases; for PostgreSQL use pg_dump")
    target = Path(target)
    if target.exists():
        raise InvalidInputError(f"{target} exists already; choose a new file name")
    if not target.parent.is_dir():
        raise InvalidInputError(f"folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
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
    partial.rename(target)
    return target.stat().st_size
