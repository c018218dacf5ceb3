"""CLI fixtures: every command of a test keeps its model files in the test's own folder (the
default, ``models`` in the working directory, would be the checkout)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _models_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELLOOP_MODELS_DIR", str(tmp_path / "models"))
