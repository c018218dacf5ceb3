"""Running the server: :func:`serve` (used by ``labelloop serve``) and the worker app factory.

Shutdown: on SIGTERM or SIGINT Uvicorn stops accepting connections, lets the requests in
flight finish (at most ``settings.shutdown_timeout`` seconds, then cancels them), runs the
app's shutdown (the writer threads finish every queued write, see
:class:`labelloop.server.dispatch.Dispatcher`) and :func:`serve` returns; ``labelloop serve``
exits with status 0. With several workers the parent sends SIGTERM to each and waits for them.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import click
import uvicorn
from fastapi import FastAPI

from labelloop.config import PREFIX, Settings
from labelloop.logs import configure_logging
from labelloop.server.app import create_app

log = logging.getLogger(__name__)


def app_from_env() -> FastAPI:
    """App factory for Uvicorn workers: settings from the ``LABELLOOP_*`` environment."""
    settings = Settings.from_env()
    configure_logging(level=settings.log_level, fmt=settings.log_format)  # a worker is a fresh process
    return create_app(settings)


def settings_environ(settings: Settings) -> dict[str, str]:
    """``settings`` as ``LABELLOOP_*`` variables, so worker processes rebuild the same settings."""
    return {PREFIX + f.name.upper(): str(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def orchestrator_runner() -> Callable[[Settings, threading.Event], Any] | None:
    """``labelloop.orchestrator.run_forever`` if the orchestrator is installed, else None."""
    try:
        module = importlib.import_module("labelloop.orchestrator")
    except ImportError:
        return None
    return getattr(module, "run_forever", None)


def start_orchestrator(settings: Settings) -> tuple[threading.Thread, threading.Event] | None:
    """Run the orchestrator in a background thread of this process; None if not available."""
    run_forever = orchestrator_runner()
    if run_forever is None:
        click.echo("orchestrator not available yet", err=True)
        return None
    stop = threading.Event()

    def target() -> None:
        try:
            run_forever(settings, stop)
        except Exception:  # keep serving; the failure is in the log
            log.exception("the orchestrator stopped")

    thread = threading.Thread(target=target, name="labelloop-orchestrator", daemon=True)
    thread.start()
    return thread, stop


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    orchestrate: bool = False,
) -> None:
    """Serve the labelling pages and the API with Uvicorn until interrupted.

    With ``workers > 1`` each worker process builds its app from the environment
    (:func:`app_from_env`); ``orchestrate`` runs the orchestrator in this process."""
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    orchestrator = start_orchestrator(settings) if orchestrate else None
    common: dict[str, Any] = {
        "host": host, "port": port, "log_level": settings.log_level.lower(), "access_log": False,
        # Uvicorn would believe X-Forwarded-For/-Proto from 127.0.0.1 (or FORWARDED_ALLOW_IPS):
        # off, so that only the app's ProxyHeaders does, from LABELLOOP_TRUSTED_PROXIES.
        "proxy_headers": False, "forwarded_allow_ips": "",
        "log_config": None,  # our handler (text or JSON) formats Uvicorn's lines too
        "timeout_graceful_shutdown": settings.shutdown_timeout,
    }
    # After a graceful shutdown Uvicorn raises the signal that stopped it again, for the handler
    # that was in place before it ran. SIGTERM's default would kill the process (status 143)
    # and SIGINT's raise KeyboardInterrupt ("Aborted!", status 1) before the cleanup below;
    # exiting normally instead ends `labelloop serve` with status 0.
    main_thread = threading.current_thread() is threading.main_thread()
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, _exit_normally) for sig in stops} if main_thread else {}
    try:
        if workers > 1:
            os.environ.update(settings_environ(settings))
            uvicorn.run("labelloop.server.run:app_from_env", factory=True, workers=workers, **common)
        else:
            uvicorn.run(create_app(settings), **common)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if orchestrator is not None:
            thread, stop = orchestrator
            stop.set()
            thread.join(timeout=30)
        log.info("server stopped")


def _exit_normally(signum: int, frame: Any) -> None:
    raise SystemExit(0)
