"""The Database facade on both backends: exact round trips, transactions, errors."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from excentra.db import Database, DatabaseError, IntegrityError, InvalidDataError, migrate
from tests.conftest import pg_server_url

SYSTEM_USER = uuid.UUID("00000000-0000-0000-0000-000000000001")

pytestmark = pytest.mark.asyncio


async def _new_user(db: Database, *, suspended: bool = False) -> uuid.UUID:
    user_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO users (id, email, password_hash, is_suspended) "
        "VALUES (:id, :email, 'x', :suspended)",
        {"id": user_id, "email": f"{user_id.hex}@example.com", "suspended": suspended},
    )
    return user_id


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0.000000000000000001"),
        Decimal("123456789012345.123456789012345678"),
        Decimal("1.10"),
        Decimal("-0.000000000000000001"),
        Decimal(0),
    ],
)
async def test_decimal_round_trips_exactly(migrated: Database, amount: Decimal) -> None:
    user_id = await _new_user(migrated)
    await migrated.execute(
        "INSERT INTO ledger_entries (command_id, seq, user_id, asset, delta_available, kind) "
        "VALUES ('c1', 1, :user_id, 'ETH', :amount, 'deposit')",
        {"user_id": user_id, "amount": amount},
    )
    value = await migrated.fetch_val(
        "SELECT delta_available FROM ledger_entries WHERE command_id = 'c1'", as_type=Decimal
    )
    assert isinstance(value, Decimal)
    assert value == amount
    assert value.as_tuple() == amount.as_tuple()  # same digits and scale on both dialects


async def test_eighteen_decimals_in_a_balance(migrated: Database) -> None:
    user_id = await _new_user(migrated)
    available = Decimal("123456789012345.123456789012345678")
    held = Decimal("0.000000000000000001")
    await migrated.execute(
        "INSERT INTO balances (id, user_id, asset, available, held) "
        "VALUES (:id, :user_id, 'ETH', :available, :held)",
        {"id": uuid.uuid4(), "user_id": user_id, "available": available, "held": held},
    )
    row = await migrated.fetch_one(
        "SELECT available, held FROM balances WHERE user_id = :user_id",
        {"user_id": user_id},
        types={"available": Decimal, "held": Decimal},
    )
    assert row == {"available": available, "held": held}


async def test_uuid_timestamp_bool_round_trip(migrated: Database) -> None:
    user_id = await _new_user(migrated, suspended=True)
    expires = datetime(2026, 4, 22, 12, 11, 12, 123456, tzinfo=timezone(timedelta(hours=2)))
    token_id = uuid.uuid4()
    await migrated.execute(
        "INSERT INTO refresh_tokens (id, user_id, token_hash, expires_at) "
        "VALUES (:id, :user_id, 'h', :expires_at)",
        {"id": token_id, "user_id": user_id, "expires_at": expires},
    )
    row = await migrated.fetch_one(
        "SELECT t.id, t.user_id, t.expires_at, t.created_at, t.used_at, u.is_suspended "
        "FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = :id",
        {"id": token_id},
        types={
            "id": uuid.UUID,
            "user_id": uuid.UUID,
            "expires_at": datetime,
            "created_at": datetime,
            "used_at": datetime,
            "is_suspended": bool,
        },
    )
    assert row is not None
    assert type(row["id"]) is uuid.UUID
    assert row["id"] == token_id
    assert row["user_id"] == user_id
    assert row["expires_at"] == expires
    assert row["expires_at"].tzinfo == UTC
    assert row["expires_at"].microsecond == 123456
    # The column default gives an aware "now" too.
    assert abs(row["created_at"] - datetime.now(UTC)) < timedelta(minutes=5)
    assert row["used_at"] is None
    assert row["is_suspended"] is True


async def test_timestamps_order_by_time_on_both_dialects(migrated: Database) -> None:
    user_id = await _new_user(migrated)
    base = datetime(2026, 4, 22, 10, 0, tzinfo=UTC)
    # Inserted out of order and in different time zones.
    stamps = [
        base + timedelta(microseconds=1),
        (base - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-5))),
        base + timedelta(hours=1),
        base.astimezone(timezone(timedelta(hours=9))),
    ]
    for stamp in stamps:
        await migrated.execute(
            "INSERT INTO refresh_tokens (id, user_id, token_hash, expires_at) "
            "VALUES (:id, :user_id, 'h', :at)",
            {"id": uuid.uuid4(), "user_id": user_id, "at": stamp},
        )
    rows = await migrated.fetch_all(
        "SELECT expires_at FROM refresh_tokens WHERE expires_at >= :since ORDER BY expires_at",
        {"since": base - timedelta(seconds=1)},
        types={"expires_at": datetime},
    )
    assert [r["expires_at"] for r in rows] == sorted(stamps)


class _AbortError(Exception):
    pass


async def _insert_then_abort(db: Database) -> None:
    async with db.transaction():
        await db.execute("INSERT INTO commands (command_id, kind) VALUES ('c-rollback', 'test')")
        assert await db.fetch_val("SELECT count(*) FROM commands WHERE kind = 'test'") == 1
        raise _AbortError


async def _insert_twice(db: Database, command_id: str) -> None:
    async with db.transaction():
        await db.execute(
            "INSERT INTO commands (command_id, kind) VALUES (:id, 'test')", {"id": "first"}
        )
        await db.execute(
            "INSERT INTO commands (command_id, kind) VALUES (:id, 'test')", {"id": command_id}
        )


async def test_transaction_rollback_leaves_nothing(migrated: Database) -> None:
    with pytest.raises(_AbortError):
        await _insert_then_abort(migrated)
    assert await migrated.fetch_val("SELECT count(*) FROM commands WHERE kind = 'test'") == 0


async def test_failed_statement_rolls_back_the_whole_transaction(migrated: Database) -> None:
    with pytest.raises(IntegrityError):
        await _insert_twice(migrated, "first")
    assert await migrated.fetch_val("SELECT count(*) FROM commands WHERE kind = 'test'") == 0


async def test_nested_transaction_is_a_savepoint(migrated: Database) -> None:
    async with migrated.transaction():
        await migrated.execute("INSERT INTO commands (command_id, kind) VALUES ('outer', 'test')")
        with pytest.raises(IntegrityError):
            await _insert_twice(migrated, "outer")  # "first" is undone with the savepoint
    rows = await migrated.fetch_all("SELECT command_id FROM commands WHERE kind = 'test'")
    assert rows == [{"command_id": "outer"}]


async def test_commit_is_visible_to_other_connections(database_url: str) -> None:
    async with Database(database_url) as first, Database(database_url) as second:
        await first.execute_script("CREATE TABLE t (x INTEGER NOT NULL)")
        async with first.transaction():
            await first.execute("INSERT INTO t (x) VALUES (1)")
        assert await second.fetch_val("SELECT count(*) FROM t") == 1


async def test_execute_many_and_integrity_errors_are_translated(migrated: Database) -> None:
    await migrated.execute_many(
        "INSERT INTO commands (command_id, kind) VALUES (:id, 'test')",
        [{"id": "m1"}, {"id": "m2"}],
    )
    assert await migrated.fetch_val("SELECT count(*) FROM commands WHERE kind = 'test'") == 2
    with pytest.raises(IntegrityError):
        await migrated.execute(
            "INSERT INTO balances (id, user_id, asset) VALUES (:id, :user_id, 'BTC')",
            {"id": uuid.uuid4(), "user_id": uuid.uuid4()},  # no such user: foreign key
        )


@pytest.mark.parametrize("text", ["lone \udc80 surrogate", "nul \x00 inside"])
async def test_a_value_the_database_cannot_hold_is_invalid_data(migrated: Database,
                                                                text: str) -> None:
    """What the journal isolates as one command's fault (``journal.REFUSED_CONTENT``):
    a lone surrogate on both dialects, NUL in text on PostgreSQL (SQLite stores it)."""
    insert = "INSERT INTO commands (command_id, kind) VALUES (:id, 'test')"
    written = "SELECT count(*) FROM commands WHERE kind = 'test'"
    if "\x00" in text and migrated.dialect == "sqlite":
        await migrated.write_batches([(insert, [{"id": text}])])
        assert await migrated.fetch_val(written) == 1
        return
    with pytest.raises(InvalidDataError):
        await migrated.write_batches([(insert, [{"id": "fine"}, {"id": text}])])
    with pytest.raises(InvalidDataError):
        await migrated.execute(insert, {"id": text})
    assert await migrated.fetch_val(written) == 0  # all or nothing


async def test_driver_errors_become_database_error(database: Database) -> None:
    with pytest.raises(DatabaseError) as caught:
        await database.fetch_all("SELECT * FROM no_such_table")
    assert not isinstance(caught.value, IntegrityError)
    assert caught.value.__cause__ is not None


async def test_literal_percent_is_refused_on_both_dialects(database: Database) -> None:
    with pytest.raises(ValueError, match="literal %"):
        await database.fetch_val("SELECT 'abc' LIKE 'a%'")
    assert await database.fetch_val("SELECT 'abc' LIKE :p", {"p": "a%"}) in (1, True)


async def test_fetch_one_returns_none_and_returning_works(migrated: Database) -> None:
    assert await migrated.fetch_one("SELECT * FROM commands WHERE command_id = 'nope'") is None
    row = await migrated.fetch_one(
        "INSERT INTO commands (command_id, kind) VALUES ('r1', 'test') RETURNING command_id"
    )
    assert row == {"command_id": "r1"}


async def test_parameters_must_match_the_query_exactly(database: Database) -> None:
    with pytest.raises(ValueError, match=r"parameters \['a', 'b'\] but values for \['a'\]"):
        await database.fetch_val("SELECT :a = :b", {"a": 1})
    with pytest.raises(ValueError, match=r"values for \['a', 'c'\]"):
        await database.fetch_val("SELECT :a", {"a": 1, "c": 2})
    # a name used twice is one value; a cast's "::" is not a parameter
    assert await database.fetch_val("SELECT CAST(:a AS INTEGER) + CAST(:a AS INTEGER)",
                                    {"a": 2}) == 4
    if database.dialect == "postgresql":
        assert await database.fetch_val("SELECT :a::int * 3", {"a": 2}) == 6


async def test_float_parameters_are_refused(migrated: Database) -> None:
    with pytest.raises(TypeError, match="float"):
        await migrated.execute(
            "UPDATE balances SET available = :a WHERE user_id = :u",
            {"a": 1.5, "u": SYSTEM_USER},
        )


async def test_sqlite_pragmas_apply_to_every_connection(sqlite_database: Database) -> None:
    database = sqlite_database
    barrier = asyncio.Barrier(3)

    async def probe() -> tuple[object, ...]:
        async with database.connection():
            await barrier.wait()  # all three hold a connection at once: three connections
            return tuple(
                [
                    await database.fetch_val(f"PRAGMA {name}")
                    for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
                ]
            )

    results = await asyncio.gather(probe(), probe(), probe())
    # synchronous: 1 = NORMAL
    assert results == [("wal", 1, 1, 30_000)] * 3


async def test_sqlite_fresh_file_survives_many_simultaneous_openers(tmp_path: Path) -> None:
    # Like several processes starting at once on a new file: all race to switch it to WAL.
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    databases = [Database(url) for _ in range(8)]
    await asyncio.gather(*(db.connect() for db in databases))
    try:
        modes = await asyncio.gather(*(db.fetch_val("PRAGMA journal_mode") for db in databases))
        assert set(modes) == {"wal"}
    finally:
        await asyncio.gather(*(db.disconnect() for db in databases))


async def test_sqlite_money_is_stored_as_text_never_real(sqlite_database: Database) -> None:
    migrated = sqlite_database
    await migrate(migrated)
    user_id = await _new_user(migrated)
    await migrated.execute(
        "INSERT INTO balances (id, user_id, asset, available) VALUES (:id, :u, 'BTC', :a)",
        {"id": uuid.uuid4(), "u": user_id, "a": Decimal("0.1")},
    )
    kinds = await migrated.fetch_all(
        "SELECT DISTINCT typeof(available) AS a, typeof(held) AS h, typeof(id) AS i FROM balances"
    )
    assert kinds == [{"a": "text", "h": "text", "i": "text"}]


async def test_disconnect_and_reconnect(database: Database) -> None:
    await database.disconnect()
    assert not database.is_connected
    await database.connect()
    assert await database.fetch_val("SELECT 1") == 1


async def test_pg_fixture_fails_under_ci_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EXCENTRA_TEST_PG_URL", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI"):
        pg_server_url()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        pg_server_url()
    assert "CI" not in os.environ
