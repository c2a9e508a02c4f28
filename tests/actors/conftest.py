"""Fixtures of the actor-core tests: a started ``Exchange`` on each database backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from excentra.exchange import Exchange


@pytest_asyncio.fixture
async def exchange(database_url: str) -> AsyncIterator[Exchange]:
    """A started ``Exchange`` on a fresh database; always stopped, even on failure."""
    ex = Exchange(database_url)
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()
