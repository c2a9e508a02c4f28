"""Fixtures for the database layer: a fresh database per test, on SQLite and PostgreSQL.

PostgreSQL comes from ``EXCENTRA_TEST_PG_URL`` (e.g.
``postgresql://postgres@127.0.0.1:5432/test``): that database is only used to create and
drop a uniquely named database per test. Without the variable the PostgreSQL cases skip,
except under CI (``CI`` set), where they fail: CI must never silently skip PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from excentra.db import Database, migrate


@pytest_asyncio.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A connected :class:`Database` on a fresh, unmigrated database."""
    db = Database(database_url)
    await db.connect()
    try:
        yield db
    finally:
        await db.disconnect()


@pytest_asyncio.fixture
async def migrated(database: Database) -> Database:
    """:func:`database` with all migrations applied."""
    await migrate(database)
    return database


@pytest_asyncio.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A connected, unmigrated SQLite database, for SQLite-only behaviour."""
    db = Database(f"sqlite:///{tmp_path / 'sqlite-only.db'}")
    await db.connect()
    try:
        yield db
    finally:
        await db.disconnect()
