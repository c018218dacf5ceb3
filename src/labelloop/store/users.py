"""Users (admins and labellers), argon2 password hashes and hashed API tokens.

Hashing a password costs about 0.1 s of CPU (argon2). The server does it outside transactions
and off the threads that serve labelling: :func:`hash_password` and :func:`check_password` are
pure (no database), and :func:`create_user` and :func:`set_password` take a ready
``password_hash``; the CLI passes the password itself.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select, update

from labelloop.errors import AlreadyExistsError, AuthError, InvalidInputError, NotFoundError
from labelloop.store.engine import insert_ignore
from labelloop.store.names import name_problem
from labelloop.store.schema import ROLES, api_tokens, meta, users, utcnow

_hasher = PasswordHasher()
TOKEN_PREFIX = "ll_"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_CHECKED_LENGTH = 72  # zxcvbn's own limit; a longer password is judged by its start
_ADVICE = "choose a longer passphrase, e.g. four or five unrelated words"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Ended:
    """What a password reset or disabling an account ended: live sessions and API tokens."""

    sessions: int
    tokens: int

    def describe(self) -> str:
        """E.g. "ended 2 sessions and revoked 1 API token"."""
        return (f"ended {self.sessions} session{'' if self.sessions == 1 else 's'} and revoked "
                f"{self.tokens} API token{'' if self.tokens == 1 else 's'}")


def user_from_row(row: object) -> User:
    """A :class:`User` from a row with the columns of ``users``."""
    return User(row.id, row.name, row.role, bool(row.disabled), row.created_at)  # type: ignore[attr-defined]



def validate_user_name(name: str) -> None:
    """User names: 1-100 characters without spaces, and no character
    :func:`labelloop.store.names.name_problem` refuses (control, bidirectional, ``.``/``..``)."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidInputError(f"invalid user name {name!r}: {problem}")
    if not name or len(name) > 100 or name != name.strip() or any(ord(c) < 33 for c in name):
        raise InvalidInputError(f"invalid user name {name!r}: 1-100 characters without spaces or control characters")


def validate_password(password: str, *, user_name: str | None = None) -> None:
    """Refuse passwords under :data:`MIN_PASSWORD_LENGTH` characters, common ones (zxcvbn's list
    of frequent passwords) and easily guessed ones (zxcvbn score under 2, where the user's name
    counts as known to the attacker); InvalidInputError says why and what to do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters; {_ADVICE}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")
    from zxcvbn import zxcvbn  # 60 ms to import: only where a password is set

    checked = password[:_CHECKED_LENGTH]
    result = zxcvbn(checked, user_inputs=[user_name] if user_name else None)
    matches = result["sequence"]
    whole_common = (
        len(matches) == 1
        and matches[0]["pattern"] == "dictionary"
        and matches[0].get("dictionary_name") == "passwords"
    )
    if whole_common or (result["score"] < 2 and any(m.get("dictionary_name") == "passwords" for m in matches)):
        raise InvalidInputError(f"password too common: {_ADVICE}")
    if result["score"] < 2:
        warning = result["feedback"].get("warning", "").strip().rstrip(".")
        why = f" ({warning[:1].lower()}{warning[1:]})" if warning else ""
        raise InvalidInputError(f"password too easy to guess{why}: {_ADVICE}")


def generate_password() -> str:
    """16 random URL-safe characters (96 bits), which :func:`validate_password` accepts."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            validate_password(password)
        except InvalidInputError:  # a random string that happens to look guessable: draw again
            continue
        return password


def hash_password(password: str, *, user_name: str | None = None) -> str:
    """The argon2 hash of an acceptable ``password`` (slow: about 0.1 s of CPU)."""
    validate_password(password, user_name=user_name)
    return _hasher.hash(password)


_dummy_hash: str | None = None


def check_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(whether ``password`` matches ``password_hash``, a new hash when the parameters changed).
    ``password_hash`` None (no such user) spends the time of a real check, so that names cannot
    be probed by timing, and answers False."""
    global _dummy_hash
    if password_hash is None:
        _dummy_hash = _dummy_hash or _hasher.hash(secrets.token_urlsafe(12))
        password_hash = _dummy_hash
        known = False
    else:
        known = True
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return known, (_hasher.hash(password) if known and _hasher.check_needs_rehash(password_hash) else None)


def login_record(conn: Connection, *, name: str) -> tuple[User, str] | None:
    """The user called ``name`` and their password hash, or None."""
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else (user_from_row(row), row.password_hash)


def replace_hash(conn: Connection, *, user_id: int, password_hash: str) -> None:
    """Store a fresh hash of the same password (new argon2 parameters); sessions are kept."""
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def create_user(
    conn: Connection, *, name: str, role: str, password: str | None = None, password_hash: str | None = None
) -> User:
    """Create a user with ``password``, or with ``password_hash`` from :func:`hash_password`."""
    validate_user_name(name)
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if password_hash is None:
        validate_password(password or "", user_name=name)
    if conn.execute(select(users.c.id).where(users.c.name == name)).first():
        raise AlreadyExistsError(f"user {name!r} exists already")
    password_hash = password_hash or hash_password(password or "", user_name=name)
    conn.execute(
        insert(users).values(name=name, role=role, password_hash=password_hash, created_at=utcnow())
    )
    return get_user(conn, name=name)


def get_user(conn: Connection, *, name: str) -> User:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no user named {name!r}")
    return user_from_row(row)


def get_user_by_id(conn: Connection, *, user_id: int) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFoundError(f"no user with id {user_id}")
    return user_from_row(row)


def list_users(conn: Connection) -> list[User]:
    return [user_from_row(r) for r in conn.execute(select(users).order_by(users.c.name))]


def set_password(
    conn: Connection, *, user_id: int, password: str | None = None, password_hash: str | None = None,
    keep_tokens: bool = False,
) -> Ended:
    """Give the user a new ``password`` (or ``password_hash`` from :func:`hash_password`) and end
    every session of theirs; their API tokens are revoked too unless ``keep_tokens``. Returns
    what was ended."""
    user = get_user_by_id(conn, user_id=user_id)
    if password_hash is None:
        password_hash = hash_password(password or "", user_name=user.name)
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
    return _end_access(conn, user_id, tokens=not keep_tokens)


def set_disabled(conn: Connection, *, user_id: int, disabled: bool) -> Ended:
    """Disable (or enable) an account. Disabling ends its sessions and revokes its API tokens,
    so enabling it again later does not bring them back. Returns what was ended."""
    conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    return _end_access(conn, user_id, tokens=True) if disabled else Ended(0, 0)


def revoke_user_tokens(conn: Connection, *, user_id: int) -> int:
    """Revoke every API token of ``user_id``; returns how many."""
    return conn.execute(api_tokens.delete().where(api_tokens.c.user_id == user_id)).rowcount


def _end_access(conn: Connection, user_id: int, *, tokens: bool) -> Ended:
    from labelloop.store.sessions import end_user_sessions  # sessions.py imports this module

    ended = end_user_sessions(conn, user_id=user_id)
    return Ended(ended, revoke_user_tokens(conn, user_id=user_id) if tokens else 0)


def authenticate_password(conn: Connection, *, name: str, password: str) -> User:
    """Return the user if ``password`` is right and the account is enabled; else AuthError.
    (Hashes inside the transaction: the server checks passwords with :func:`check_password`.)"""
    record = login_record(conn, name=name)
    right, new_hash = check_password(record[1] if record else None, password)
    if record is None or not right:
        raise AuthError("wrong user name or password")
    user = record[0]
    if user.disabled:
        raise AuthError("this account is disabled")
    if new_hash is not None:
        replace_hash(conn, user_id=user.id, password_hash=new_hash)
    return user


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, *, user_id: int, name: str = "") -> str:
    """Create an API token; returns the token itself, which is never stored (only its hash)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(user_id=user_id, token_hash=hash_token(token), name=name[:100], created_at=utcnow())
    )
    return token


def authenticate_token(conn: Connection, *, token: str) -> User:
    row = conn.execute(
        select(users).join(api_tokens, api_tokens.c.user_id == users.c.id).where(
            api_tokens.c.token_hash == hash_token(token)
        )
    ).first()
    if row is None:
        raise AuthError("invalid API token")
    if row.disabled:
        raise AuthError("this account is disabled")
    return user_from_row(row)


def list_tokens(conn: Connection, *, user_id: int) -> list[dict[str, object]]:
    rows = conn.execute(
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id)
    )
    return [dict(r._mapping) for r in rows]


def token_counts(conn: Connection) -> dict[int, int]:
    """user id -> number of API tokens (users without any are left out)."""
    rows = conn.execute(select(api_tokens.c.user_id, func.count()).group_by(api_tokens.c.user_id))
    return {user_id: count for user_id, count in rows}


def revoke_token(conn: Connection, *, user_id: int, token_id: int) -> None:
    result = conn.execute(
        api_tokens.delete().where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    )
    if result.rowcount == 0:
        raise NotFoundError(f"no token {token_id} for this user")


def get_or_create_secret(conn: Connection, *, key: str = "session_secret") -> str:
    """A random secret kept in the database, shared by every worker (created on first use)."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    if value is None:
        # Two workers may start at once: the first insert wins, both read the winner.
        conn.execute(insert_ignore(conn, meta).values(key=key, value=secrets.token_urlsafe(48)))
        value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one()
    return value
