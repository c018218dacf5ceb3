"""Admin HTML pages and their form POSTs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
