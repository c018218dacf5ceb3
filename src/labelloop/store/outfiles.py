"""Files labelloop writes for the user (exports, backups): complete or absent, never through a
symbolic link, never over an existing file unless asked, with the user's umask.

:func:`new_file` creates a temporary file beside the target with ``O_CREAT | O_EXCL |
O_NOFOLLOW`` (so an existing file or a symbolic link at that name is never opened, let alone
written through) and the given mode, which the process's umask then narrows, exactly as for
any file the user creates. Once it is written, the temporary file is moved into place:

- without ``overwrite``, by a hard link to the target name, which fails if anything exists
  there (a file, a folder or a symbolic link, dangling or not); where the file system has no
  hard links, by a rename after checking that nothing exists there;
- with ``overwrite``, by a rename, which replaces a symbolic link itself, not the file it
  points to.

On any error the temporary file is deleted. Modes: :data:`EXPORT_MODE` (an ordinary file,
``0o666`` narrowed by the umask: 0644 with the usual 022) and :data:`BACKUP_MODE` (owner only,
``0o600``, narrowed further by a stricter umask), because a copy of the database holds the
session secret and the password hashes.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labelloop.errors import InvalidInputError

EXPORT_MODE = 0o666
BACKUP_MODE = 0o600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def folder_of(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def refuse_existing(target: Path, *, overwrite: bool, hint: str) -> None:
    """InvalidInputError if something (a file, a folder, a symbolic link) is at ``target``
    and may not be replaced; a folder is never replaced."""
    if os.path.isdir(target) and not os.path.islink(target):
        raise InvalidInputError(f"{target}: is a folder")
    if not overwrite and os.path.lexists(target):
        what = "a symbolic link" if os.path.islink(target) else "a file"
        raise InvalidInputError(f"{target} exists already ({what}); {hint}")


def nofollow(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that refuses to follow a symbolic link."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)


@contextmanager
def new_file(target: Path, *, mode: int, overwrite: bool = False, hint: str = "choose a new name") -> Iterator[Path]:
    """A new, empty temporary file beside ``target`` (created with ``mode`` and the umask);
    when the block ends without error it becomes ``target`` (see the module docstring)."""
    target = Path(target)
    refuse_existing(target, overwrite=overwrite, hint=hint)
    folder = folder_of(target)
    if not folder.is_dir():
        raise InvalidInputError(f"{target}: the folder {str(folder)!r} does not exist")
    while True:
        tmp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, _CREATE, mode))
            break
        except FileExistsError:  # a name taken (or a link planted there): try another
            continue
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target, follow_symlinks=False)
        except FileExistsError:
            raise InvalidInputError(f"{target} exists already; {hint}") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            refuse_existing(target, overwrite=False, hint=hint)  # no hard links here: check, then rename
            os.rename(tmp, target)
            return
        os.unlink(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
