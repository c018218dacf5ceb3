"""Server-side sessions behind the signed cookie.

The cookie (Starlette's signed session, see ``server/auth.py``) carries a random session key
under ``"sid"``; the ``sessions`` table holds its hash (``store/sessions.py``). A request's user
comes from the key through the per-process :class:`~labelloop.server.caches.AuthCache`, so
the hot path never waits on the database, and logout, a password reset or a disabled account
end a session on every worker within about a second (at once in the process that made the
change). Cookies from before server-side sessions (only a ``"uid"``) count as logged out.
"""

from labelloop.server.sessions.cookies import (
    SESSION_ID_KEY,
    end_session,
    forget_user,
    session_key,
    start_session,
)

__all__ = ["SESSION_ID_KEY", "end_session", "forget_user", "session_key", "start_session"]
