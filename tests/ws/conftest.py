"""Fixtures of the WebSocket tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database, for tests of the protocol itself, where the backend does
    not matter (those that touch stored state use ``database_url``: both backends)."""
    return f"sqlite:///{tmp_path / 'excentra.db'}"
