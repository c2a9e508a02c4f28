"""Applying migrations at startup: in order, each in its own transaction, at most once.

Two processes may start at the same time. On PostgreSQL the whole run holds a session
advisory lock, so the second process waits and then finds everything applied. SQLite has no
such lock; there every migration transaction starts with ``BEGIN IMMEDIATE`` (the file's
write lock) and re-checks inside it whether the version was applied meanwhile, which gives
the same outcome.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from excentra.db.database import Database
from excentra.db.migration_files import (
    Migration,
    MigrationError,
    default_migrations_dir,
    load_migrations,
)

log = logging.getLogger("excentra.db")

MIGRATION_LOCK_KEY = int.from_bytes(b"excentra", "big")
"""The pg_advisory_lock key: the bytes of "excentra" as a (positive) bigint."""

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at {timestamp} NOT NULL
)
"""
_TIMESTAMP_TYPE = {"postgresql": "TIMESTAMPTZ", "sqlite": "TEXT"}


async def migrate(db: Database, directory: Path | None = None) -> list[int]:
    """Apply the pending migrations of ``directory`` (default: the repository's).

    Returns:
        The versions this call applied, in order (empty if all were applied already).

    Raises:
        MigrationError: an applied migration's file changed or disappeared, a pending one is
            older than an applied one, or a migration failed (it is rolled back).
    """
    migrations = load_migrations(directory or default_migrations_dir(), db.dialect)
    applied: list[int] = []
    async with db.connection(), _exclusive(db):
        await _ensure_table(db)
        recorded = await _recorded(db)
        _check_recorded(recorded, migrations)
        for migration in migrations:
            if migration.version not in recorded and await _apply(db, migration):
                applied.append(migration.version)
    log.info("migrations up to date", extra={"applied": applied, "dialect": db.dialect})
    return applied


@asynccontextmanager
async def _exclusive(db: Database) -> AsyncIterator[None]:
    if db.dialect != "postgresql":
        yield
        return
    # Session-level lock on the pinned connection: held across the per-migration
    # transactions, released explicitly (or by the server if the connection dies).
    await db.execute("SELECT pg_advisory_lock(CAST(:key AS BIGINT))", {"key": MIGRATION_LOCK_KEY})
    try:
        yield
    finally:
        try:
            await db.execute(
                "SELECT pg_advisory_unlock(CAST(:key AS BIGINT))", {"key": MIGRATION_LOCK_KEY}
            )
        except Exception:
            # Do not hide the original error; a lost connection released the lock anyway.
            log.warning("migration lock release failed", exc_info=True)


async def _ensure_table(db: Database) -> None:
    async with db.transaction():
        await db.execute_script(_CREATE_TABLE.format(timestamp=_TIMESTAMP_TYPE[db.dialect]))


async def _recorded(db: Database) -> dict[int, dict[str, str]]:
    rows = await db.fetch_all("SELECT version, name, checksum FROM schema_migrations")
    return {row["version"]: {"name": row["name"], "checksum": row["checksum"]} for row in rows}


def _check_recorded(recorded: dict[int, dict[str, str]], migrations: list[Migration]) -> None:
    on_disk = {m.version: m for m in migrations}
    for version, entry in sorted(recorded.items()):
        if version not in on_disk:
            raise MigrationError(
                f"migration {version:04d}_{entry['name']} is applied but its file is missing"
            )
        _check_checksum(on_disk[version], entry["checksum"])
    newest = max(recorded, default=0)
    for migration in migrations:
        if migration.version not in recorded and migration.version < newest:
            raise MigrationError(
                f"{migration.path.name} is pending but older than applied version {newest:04d}"
            )


def _check_checksum(migration: Migration, recorded: str) -> None:
    if migration.checksum != recorded:
        raise MigrationError(
            f"{migration.path.name} was changed after it was applied "
            f"(checksum {migration.checksum[:12]}…, recorded {recorded[:12]}…); "
            "add a new migration instead of editing an applied one"
        )


async def _apply(db: Database, migration: Migration) -> bool:
    """Apply one migration in its own transaction; ``False`` if another process did."""
    try:
        async with db.transaction():
            already = await db.fetch_val(
                "SELECT checksum FROM schema_migrations WHERE version = :version",
                {"version": migration.version},
            )
            if already is not None:
                _check_checksum(migration, already)
                return False
            await db.execute_script(migration.sql)
            await _record(db, migration)
    except MigrationError:
        raise
    except Exception as exc:
        # Syntax errors and the like arrive as driver exceptions of either backend; name
        # the file. The transaction has been rolled back by now.
        raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
    log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
    return True


async def _record(db: Database, migration: Migration) -> None:
    await db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
        "VALUES (:version, :name, :checksum, :applied_at)",
        {
            "version": migration.version,
            "name": migration.name,
            "checksum": migration.checksum,
            "applied_at": datetime.now(UTC),
        },
    )
