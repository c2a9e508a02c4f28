"""Fixtures of the actor-core tests: a started ``Exchange`` on each database backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from excentra.exchange import Exchange
from tests.actors.helpers import Recorder


@pytest_asyncio.fixture
async def exchange(database_url: str) -> AsyncIterator[Exchange]:
    """A started ``Exchange`` on a fresh database; always stopped, even on failure."""
    ex = Exchange(database_url)
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()


@pytest_asyncio.fixture
async def recorded(database_url: str) -> AsyncIterator[tuple[Exchange, Recorder]]:
    """Like ``exchange``, with a ``Recorder`` subscribed to every committed batch."""
    rec = Recorder()
    ex = Exchange(database_url, subscribers=[rec])
    await ex.start()
    try:
        yield ex, rec
    finally:
        await ex.stop()
