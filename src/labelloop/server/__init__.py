"""The labelling server: :func:`create_app` builds the FastAPI app, :func:`serve` runs it."""

from labelloop.server.app import create_app
from labelloop.server.run import serve

__all__ = ["create_app", "serve"]
