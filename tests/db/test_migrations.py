"""The migration runner: order, checksums, once-only application, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from pathlib import Path

import pytest

from excentra.db import (
    MIGRATION_LOCK_KEY,
    Database,
    MigrationError,
    default_migrations_dir,
    migrate,
)
from excentra.db.migration_files import MIGRATIONS_DIR_ENV, load_migrations

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
ALL_VERSIONS = sorted({int(p.name[:4]) for p in REPO_MIGRATIONS.glob("*.sql")})
NEXT = f"{ALL_VERSIONS[-1] + 1:04d}"  # the version a test adds


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A private copy of the repository's migrations, safe to edit."""
    target = tmp_path / "migrations"
    shutil.copytree(REPO_MIGRATIONS, target)
    return target


def _file_for(directory: Path, stem: str, dialect: str) -> Path:
    paired = directory / f"{stem}.{dialect}.sql"
    return paired if paired.exists() else directory / f"{stem}.sql"


async def _table_exists(db: Database, table: str) -> bool:
    sql = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = :t"
        if db.dialect == "sqlite"
        else "SELECT count(*) FROM information_schema.tables WHERE table_name = :t"
    )
    return bool(await db.fetch_val(sql, {"t": table}))


def test_default_directory_is_the_repository_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIGRATIONS_DIR_ENV, raising=False)
    assert default_migrations_dir() == REPO_MIGRATIONS
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, "/srv/excentra/migrations")
    assert default_migrations_dir() == Path("/srv/excentra/migrations")


@pytest.mark.asyncio
async def test_fresh_database_gets_every_migration_with_checksums(database: Database) -> None:
    assert await migrate(database) == ALL_VERSIONS
    rows = await database.fetch_all(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    )
    expected = [
        {
            "version": m.version,
            "name": m.name,
            "checksum": hashlib.sha256(m.path.read_bytes()).hexdigest(),
        }
        for m in load_migrations(REPO_MIGRATIONS, database.dialect)
    ]
    assert rows == expected
    assert [r["name"] for r in rows] == ["core", "ledger", "seed", "fee_account", "book_seq",
                                         "chain", "event_log"]
    for table in ("users", "orders", "trades", "ledger_entries", "commands", "withdrawals",
                  "event_log", "projection_state"):
        assert await _table_exists(database, table)


@pytest.mark.asyncio
async def test_rerun_applies_nothing(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="excentra.db"):
        await migrate(database)
    applied = [r for r in caplog.records if r.getMessage() == "migration applied"]
    assert [r.version for r in applied] == ALL_VERSIONS  # type: ignore[attr-defined]
    assert await migrate(database) == []
    assert await database.fetch_val("SELECT count(*) FROM schema_migrations") == len(ALL_VERSIONS)


@pytest.mark.asyncio
async def test_edited_applied_migration_is_refused(
    database: Database, migrations_copy: Path
) -> None:
    await migrate(database, migrations_copy)
    edited = _file_for(migrations_copy, "0001_core", database.dialect)
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match=edited.name):
        await migrate(database, migrations_copy)


@pytest.mark.asyncio
async def test_the_other_dialects_file_is_not_checked(
    database: Database, migrations_copy: Path
) -> None:
    await migrate(database, migrations_copy)
    other = "sqlite" if database.dialect == "postgresql" else "postgresql"
    untouched = migrations_copy / f"0001_core.{other}.sql"
    untouched.write_text(untouched.read_text() + "\n-- edit\n")
    assert await migrate(database, migrations_copy) == []


@pytest.mark.asyncio
async def test_applied_migration_with_missing_file_is_refused(
    database: Database, migrations_copy: Path
) -> None:
    await migrate(database, migrations_copy)
    (migrations_copy / "0003_seed.sql").unlink()
    with pytest.raises(MigrationError, match=r"0003_seed is applied but its file is missing"):
        await migrate(database, migrations_copy)


@pytest.mark.asyncio
async def test_new_migration_is_applied_alone(database: Database, migrations_copy: Path) -> None:
    await migrate(database, migrations_copy)
    (migrations_copy / f"{NEXT}_extra.sql").write_text(
        "CREATE TABLE extra (id INTEGER NOT NULL PRIMARY KEY, note TEXT);\n"
        "INSERT INTO extra (id, note) VALUES (1, 'semi;colon');\n"
    )
    assert await migrate(database, migrations_copy) == [int(NEXT)]
    assert await database.fetch_val("SELECT note FROM extra") == "semi;colon"


@pytest.mark.asyncio
async def test_failed_migration_rolls_back_and_names_its_file(
    database: Database, migrations_copy: Path
) -> None:
    (migrations_copy / f"{NEXT}_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=rf"{NEXT}_broken\.sql"):
        await migrate(database, migrations_copy)
    versions = await database.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == ALL_VERSIONS
    assert not await _table_exists(database, "half_done")


@pytest.mark.asyncio
async def test_pending_migration_older_than_applied_is_refused(
    database: Database, migrations_copy: Path
) -> None:
    later = f"{int(NEXT) + 1:04d}"
    (migrations_copy / f"{later}_later.sql").write_text("CREATE TABLE later (x INTEGER);\n")
    await migrate(database, migrations_copy)
    (migrations_copy / f"{NEXT}_late_arrival.sql").write_text("CREATE TABLE late (x INTEGER);\n")
    with pytest.raises(MigrationError, match=rf"{NEXT}_late_arrival\.sql is pending but older"):
        await migrate(database, migrations_copy)


@pytest.mark.asyncio
async def test_concurrent_migrations_apply_each_version_once(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    await asyncio.gather(first.connect(), second.connect())
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
    finally:
        await asyncio.gather(first.disconnect(), second.disconnect())
    applied = results[0] + results[1]
    assert sorted(applied) == ALL_VERSIONS  # each version applied by exactly one of them
    async with Database(database_url) as db:
        assert await db.fetch_val("SELECT count(*) FROM schema_migrations") == len(ALL_VERSIONS)
        assert await db.fetch_val("SELECT count(*) FROM assets") == 4
        assert await migrate(db) == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.postgresql.sql"], "needs one NNNN_name.sql or both"),
        (["0001_a.sql", "0001_a.sqlite.sql"], "needs one NNNN_name.sql or both"),
        (["0001_a.sqlite.sql", "0001_b.postgresql.sql"], "differently named"),
        (["1_a.sql"], "not NNNN_name.sql"),
        (["0001_A.sql"], "not NNNN_name.sql"),
    ],
)
def test_file_layout_errors(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path, "sqlite")


def test_each_dialect_gets_its_own_file_and_checksum(tmp_path: Path) -> None:
    (tmp_path / "0001_a.postgresql.sql").write_text("-- pg\n")
    (tmp_path / "0001_a.sqlite.sql").write_text("-- lite\n")
    (tmp_path / "0002_b.sql").write_text("-- both\n")
    (tmp_path / "README.md").write_text("not a migration")
    pg = load_migrations(tmp_path, "postgresql")
    lite = load_migrations(tmp_path, "sqlite")
    assert [(m.version, m.name, m.path.name) for m in pg] == [
        (1, "a", "0001_a.postgresql.sql"),
        (2, "b", "0002_b.sql"),
    ]
    assert lite[0].path.name == "0001_a.sqlite.sql"
    assert lite[0].checksum == hashlib.sha256(b"-- lite\n").hexdigest()
    assert pg[1].checksum == lite[1].checksum


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="not found"):
        load_migrations(tmp_path / "nope", "sqlite")


@pytest.mark.postgres
@pytest.mark.asyncio
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_migration_waits_for_the_advisory_lock(database_url: str) -> None:
    lock = "SELECT pg_advisory_lock(CAST(:key AS BIGINT))"
    unlock = "SELECT pg_advisory_unlock(CAST(:key AS BIGINT))"
    async with Database(database_url) as holder, Database(database_url) as runner:
        async with holder.connection():  # the lock belongs to this one connection
            await holder.execute(lock, {"key": MIGRATION_LOCK_KEY})
            task = asyncio.create_task(migrate(runner))
            await asyncio.sleep(0.5)
            assert not task.done()
            assert not await _table_exists(holder, "schema_migrations")
            await holder.execute(unlock, {"key": MIGRATION_LOCK_KEY})
        assert await task == ALL_VERSIONS
