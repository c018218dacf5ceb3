"""Settings, read from the environment (prefix ``LABELLOOP_``).

Every setting is a field of :class:`Settings` with its documentation in the field's
``metadata["doc"]``; ``labelloop settings`` prints them and ``tests/test_config.py`` checks
that each one is documented in the README and parsed from the environment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from labelloop.errors import ConfigError

PREFIX = "LABELLOOP_"
DEFAULT_DATABASE_URL = "sqlite:///labelloop.db"


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All settings of labelloop. Build one with :meth:`Settings.from_env`."""

    database_url: str = field(
        default=DEFAULT_DATABASE_URL,
        metadata=_doc("Database URL: `sqlite:///path.db` or `postgresql://user:pw@host/db`. "
                      "`--db` on the command line wins."),
    )
    models_dir: Path = field(
        default=Path("models"),
        metadata=_doc("Folder where the orchestrator saves model files (`<UTC time>_<macro-F1>.joblib`)."),
    )
    keep_models: int = field(
        default=5, metadata=_doc("How many model files to keep per project; older ones are deleted.")
    )
    secret_key: str = field(
        default="",
        metadata=_doc("Key that signs session cookies. Empty: a random key is generated once "
                      "and kept in the database, so every worker shares it."),
    )
    lease_seconds: int = field(
        default=600,
        metadata=_doc("Default lease length in seconds: how long an item served to a labeller "
                      "is held for them (a project's own setting wins)."),
    )
    max_field_bytes: int = field(
        default=1_000_000,
        metadata=_doc("Largest field accepted on import, in bytes (UTF-8). Longer fields are an error."),
    )
    import_chunk_rows: int = field(
        default=20_000, metadata=_doc("Rows read and written per chunk when importing or exporting.")
    )
    login_max_failures: int = field(
        default=5,
        metadata=_doc("Failed logins allowed per user name and client address within "
                      "`login_window_seconds`; more are refused with 429."),
    )
    login_window_seconds: int = field(
        default=300, metadata=_doc("Window for counting failed logins, in seconds.")
    )
    trusted_proxies: str = field(
        default="",
        metadata=_doc("Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` headers are "
                      "believed: addresses or CIDR networks, comma-separated (`127.0.0.1`, "
                      "`172.16.0.0/12,10.0.0.5`). The client is the right-most address of "
                      "`X-Forwarded-For` that is not a trusted proxy. Empty: no proxy is trusted and the "
                      "client is the connection's peer (failed logins are counted per user name and client)."),
    )
    force_secure_cookies: bool = field(
        default=False,
        metadata=_doc("Mark the session cookie `Secure` on every answer. Without it the cookie is `Secure` "
                      "when the request came over HTTPS: directly or through a trusted proxy's "
                      "`X-Forwarded-Proto: https`."),
    )
    orchestrate_interval: float = field(
        default=30.0,
        metadata=_doc("Seconds between the orchestrator's checks for new labels. The model page counts "
                      "an orchestrator as working while its last check is within 3 intervals."),
    )
    log_level: str = field(
        default="INFO",
        metadata=_doc("Log level: DEBUG, INFO, WARNING or ERROR. At INFO the server logs one line "
                      "per request; WARNING silences those."),
    )
    log_format: str = field(
        default="text",
        metadata=_doc("Log format of `serve` and `orchestrate` on stderr: `text` (readable lines) or "
                      "`json` (one JSON object per line; requests carry `request_id`, `method`, `path`, "
                      "`status`, `duration_ms`, `user`; rounds carry `project`, `version`, `labels`, "
                      "`timings`)."),
    )
    shutdown_timeout: int = field(
        default=20,
        metadata=_doc("Seconds `serve` gives requests in flight to finish after SIGTERM or Ctrl+C before "
                      "it cancels them; keep it below the container's stop grace period."),
    )

    def __post_init__(self) -> None:
        proxy_networks(self.trusted_proxies)  # a bad address fails here, naming the setting

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win if not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            if name in environ:
                values[f.name] = _parse(name, environ[name], f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(environment variable, default, description) for every setting."""
        return [
            (PREFIX + f.name.upper(), str(f.default), f.metadata["doc"]) for f in dataclasses.fields(cls)
        ]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(value: str) -> tuple[Network, ...]:
    """The networks of ``trusted_proxies`` (a single address is a network of one)."""
    networks = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"{PREFIX}TRUSTED_PROXIES: {part!r} is not an IP address or CIDR network; give addresses or "
                "networks separated by commas, such as 127.0.0.1,172.16.0.0/12"
            ) from None
    return tuple(networks)


def _parse(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {type(default).__name__}") from None
    return raw
