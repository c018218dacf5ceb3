"""The `labelloop` command line (Click).

Every command takes ``--db URL`` (else ``LABELLOOP_DATABASE_URL``, else
``sqlite:///labelloop.db``). Errors print one line ``error: ...`` on stderr and exit with 2.

Open the database with :func:`engine_for`. A verb that needs an existing database (one that
reads, or changes a project or user that must exist: ``status``, ``export``, ``configure``,
``import``, ``labels``, ``token create``, ``orchestrate``, ``backup``, ``user list``,
``member ...``) uses ``engine_for(db_url, create=False)``: a missing SQLite file is then
refused with "no labelloop database at ..." instead of being created. Only the verbs that set a
database up (``init``, ``user add``, ``migrate``, ``demo``, ``serve``) use the default
``create=True``. A database that cannot be opened (or fails later with a connection error) is
reported by :class:`_Cli` as ``error: cannot open database <URL without password>: <reason>``.
"""

from labelloop.cli import accounts, bulk, codebook, data, projects, running  # noqa: F401  (register the commands)
from labelloop.cli.base import _Cli, db_option, engine_for, main, settings_for

__all__ = ["_Cli", "db_option", "engine_for", "main", "settings_for"]
