"""Logging in under load and behind proxies.

- :mod:`.clients`: the client address and scheme, believed from ``X-Forwarded-For`` /
  ``X-Forwarded-Proto`` only when a trusted proxy (``trusted_proxies``) sends them;
- :mod:`.cookies`: the ``Secure`` cookie flag for requests that came over HTTPS
  (``force_secure_cookies`` to always set it);
- :mod:`.pool`: the bounded, low-priority thread pool that hashes passwords (503 when full);
- :mod:`.gate`: while that pool is full, ``POST /login`` is refused before any other work;
- :mod:`.limits`: the login check, with the failed-login limit per (user name, client address)
  reserved atomically in the database before a password is hashed.

The login route (``server/auth.py``) and the admin's user pages call into these.
"""

from labelloop.server.logins.clients import ProxyHeaders, client_of
from labelloop.server.logins.cookies import SecureCookies
from labelloop.server.logins.gate import LoginGate
from labelloop.server.logins.limits import Logins, Refusal
from labelloop.server.logins.pool import PasswordPool, TooManyLogins

__all__ = ["LoginGate", "Logins", "PasswordPool", "ProxyHeaders", "Refusal", "SecureCookies", "TooManyLogins", "client_of"]
