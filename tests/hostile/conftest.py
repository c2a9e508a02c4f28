"""Fixtures of the hostile-input suite: the app in-process on each database backend (as in
``tests/http``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from excentra.http.app import create_app
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    """The app on a fresh database (SQLite and PostgreSQL), rate limits lifted."""
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for running in running_api(app):
        yield running
