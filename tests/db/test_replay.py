"""Replaying the event log into empty projections gives identical tables (both backends).

The log is the durable record; the tables the API reads (orders, trades, balances, the
ledger, commands, withdrawals, assets, pairs and their book seqs) are its projection. So:

* an exchange's log, copied into a freshly migrated database that holds only what is not
  a projection (the users; the seed rows are the migrations' own), and projected there
  (``Projection.open`` + ``catch_up``), gives the same rows as the tables the live
  projector wrote — and a sound ledger, and the book the exchange had in memory;
* an exchange whose projector never applied anything (paused) acknowledged every command
  all the same; its next start projects the log before the core is rebuilt from the
  tables, and the rebuilt core is the one that was running.

Every projected column is a function of the log alone, also a balance's ``updated_at``
(its last movement's time, however the log was cut into batches: the test at the end).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from excentra.actors.watermarks import NOTHING, READER
from excentra.db import Database, migrate
from excentra.db.audit import audit
from excentra.db.eventlog import Entry, EventLog
from excentra.db.projection import Projection
from excentra.db.records import MovementRow, Writes
from excentra.db.users import create_user
from excentra.engine import OrderType, Side
from excentra.exchange import Exchange
from tests.actors.helpers import (
    BTC_USDT,
    ETH_USDT,
    answered,
    assert_sound,
    funded_user,
    limit,
    normalized,
    ok,
    stored_levels,
)
from tests.conftest import _create_pg_database, _drop_pg_database, _with_database, pg_server_url

pytestmark = pytest.mark.asyncio

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
DOGE_USDT = "DOGE/USDT"
SYMBOLS = (BTC_USDT, ETH_USDT, DOGE_USDT)

PROJECTED = {
    "assets": ("symbol",),
    "trading_pairs": ("symbol",),
    "balances": ("user_id", "asset"),
    "ledger_entries": ("command_id", "seq"),
    "commands": ("command_id",),
    "orders": ("id",),
    "trades": ("id",),
    "withdrawals": ("id",),
    "projection_state": ("name",),
}
"""The tables the projection writes, each with the columns that identify a row."""
FRESH = {"balances": ("id",)}
"""Surrogate columns generated anew by each insert: a balance row's id is a fresh uuid
(``JournalWriter._balance_rows``). ``ledger_entries.id`` (an identity) is compared: the
projection inserts the entries in log order into both databases, so it is equal."""
MIGRATION_CLOCK = ("created_at", "updated_at")
"""In the rows the migrations insert (the seed), these are the migration's ``now()``: a
different moment in each database, so they are left out for those rows alone."""

Rows = dict[str, list[dict[str, Any]]]


@pytest_asyncio.fixture
async def replay_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second fresh, empty database on the backend of ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'replay.db'}"
        return
    server_url = pg_server_url()
    name = await _create_pg_database(server_url)
    try:
        yield _with_database(server_url, name)
    finally:
        await _drop_pg_database(server_url, name)


# -- the traffic ------------------------------------------------------------------------------


async def traffic(ex: Exchange) -> None:
    """Deposits; resting limit orders; crossing orders with partial fills on BTC/USDT and
    ETH/USDT; a market sell and a market buy; a cancel of a partly filled order;
    withdrawals sent, returned, left pending and immediate; an asset and a pair added at
    runtime, and a trade on it."""
    maker = await funded_user(ex, USDT="100000", BTC="2", ETH="20")
    taker = await funded_user(ex, USDT="100000", BTC="1", ETH="5")

    bid = ok(await answered(limit(ex, maker, BUY, "29000", "0.5")))
    ok(await answered(limit(ex, maker, SELL, "31000", "1")))
    ok(await answered(limit(ex, maker, SELL, "31500", "0.5")))
    ok(await answered(limit(ex, maker, SELL, "32000", "0.3")))
    took = ok(await answered(limit(ex, taker, BUY, "31000", "0.4")))  # part of an ask
    assert isinstance(took, dict)
    assert took["status"] == "filled"
    ok(await answered(limit(ex, taker, BUY, "31600", "0.8")))  # 0.6 @ 31000, 0.2 @ 31500
    ok(await answered(limit(ex, taker, SELL, "29000", "0.2")))  # part of the bid
    ok(await answered(ex.place_order(taker, BTC_USDT, SELL, OrderType.MARKET,
                                     quantity=D("0.1"))))
    assert isinstance(bid, dict)
    ok(await answered(ex.cancel_order(maker, bid["order_id"])))  # 0.3 filled, 0.2 left

    ok(await answered(limit(ex, maker, SELL, "2000", "3", symbol=ETH_USDT)))
    ok(await answered(limit(ex, taker, BUY, "2000", "1", symbol=ETH_USDT)))
    ok(await answered(ex.place_order(taker, ETH_USDT, BUY, OrderType.MARKET,
                                     budget=D("500"))))
    ok(await answered(limit(ex, taker, BUY, "1900", "1", symbol=ETH_USDT)))

    sent = ok(await answered(ex.withdraw(taker, "USDT", D("100"), "0xabc")))
    returned = ok(await answered(ex.withdraw(taker, "USDT", D("50"), "0xabc")))
    ok(await answered(ex.withdraw(taker, "USDT", D("25"), "0xabc")))  # stays pending
    ok(await answered(ex.withdraw(maker, "BTC", D("0.1"), "0xdef", immediate=True)))
    assert isinstance(sent, dict)
    assert isinstance(returned, dict)
    ok(await answered(ex.settle_withdrawal(sent["id"], sent=True, tx_hash="0xfeed")))
    ok(await answered(ex.settle_withdrawal(returned["id"], sent=False)))

    ok(await answered(ex.add_asset("DOGE", "Dogecoin", 8)))
    ok(await answered(ex.add_pair("DOGE", "USDT", price_step=D("0.0001"),
                                  quantity_step=D("1"))))
    doge = await funded_user(ex, DOGE="1000")
    ok(await answered(limit(ex, doge, SELL, "0.25", "100", symbol=DOGE_USDT)))
    ok(await answered(limit(ex, taker, BUY, "0.25", "40", symbol=DOGE_USDT)))


async def books(ex: Exchange) -> dict[str, dict[str, Any]]:
    """Every book as the running core has it."""
    out = {}
    for symbol in SYMBOLS:
        snap = await answered(ex.snapshot(symbol, depth=1000))
        assert isinstance(snap, dict), snap
        out[symbol] = snap
    return out


async def assert_books_are_the_database(db: Database, snaps: dict[str, dict[str, Any]]
                                        ) -> None:
    for symbol, snap in snaps.items():
        assert {"bids": normalized(snap["bids"]), "asks": normalized(snap["asks"])} == (
            await stored_levels(db, symbol)), symbol


# -- reading and copying tables ---------------------------------------------------------------


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in PROJECTED[table])


async def _rows(db: Database, table: str) -> list[dict[str, Any]]:
    order = ", ".join(PROJECTED[table])
    return await db.fetch_all(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608


async def migration_rows(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    """The keys of the rows the migrations wrote, per projected table."""
    return {t: {_key(t, r) for r in await _rows(db, t)} for t in PROJECTED}


async def tables(db: Database, seeded: dict[str, set[tuple[Any, ...]]] | None = None
                 ) -> Rows:
    """Every projected table's rows in key order, as stored (decimals as their text, so
    a scale counts), without fresh surrogates, and without the migration's clock in the
    rows of ``seeded``."""
    out: Rows = {}
    for table in PROJECTED:
        rows = []
        for row in await _rows(db, table):
            skip = set(FRESH.get(table, ()))
            if seeded is not None and _key(table, row) in seeded[table]:
                skip.update(MIGRATION_CLOCK)
            rows.append({k: str(v) if isinstance(v, Decimal) else v
                         for k, v in row.items() if k not in skip})
        out[table] = rows
    return out


async def copy_users(source: Database, target: Database) -> None:
    """The users (not a projection) that the migrations did not create already."""
    there = {r["id"] for r in await target.fetch_all("SELECT id FROM users",
                                                     types={"id": uuid.UUID})}
    rows = await source.fetch_all(
        "SELECT id, email, password_hash, role, username, is_suspended, created_at, "
        "updated_at FROM users", types={"id": uuid.UUID, "is_suspended": bool,
                                        "created_at": datetime, "updated_at": datetime})
    await target.execute_many(
        "INSERT INTO users (id, email, password_hash, role, username, is_suspended, "
        "created_at, updated_at) VALUES (:id, :email, :password_hash, :role, :username, "
        ":is_suspended, :created_at, :updated_at)",
        [r for r in rows if r["id"] not in there])


async def copy_log(source: Database, target: Database) -> int:
    """Every ``event_log`` row, as stored; how many."""
    rows = await source.fetch_all(
        "SELECT seq, command_id, kind, user_id, body, created_at FROM event_log ORDER BY seq",
        types={"user_id": uuid.UUID, "created_at": datetime})
    await target.execute_many(
        "INSERT INTO event_log (seq, command_id, kind, user_id, body, created_at) "
        "VALUES (:seq, :command_id, :kind, :user_id, :body, :created_at)",
        [{**r, "body": bytes(r["body"])} for r in rows])
    return len(rows)


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("projector", ["thread", "process"])
async def test_replaying_the_log_into_empty_projections_gives_identical_tables(
        database_url: str, replay_url: str, projector: str) -> None:
    """The live projector's tables (written in the core's process, or by the projection
    process of ``excentra serve``) and a replay of the log into a fresh database hold the
    same rows, table by table; the replayed ledger is sound and its open orders are the
    books the exchange had in memory."""
    async with Exchange(database_url, projector=projector) as ex:
        await traffic(ex)
        await assert_sound(ex)  # reads ex.db: waits until everything logged is projected
        snaps = await books(ex)

    async with Database(database_url) as live, Database(replay_url) as replay:
        head = await EventLog(live).head()
        assert head > 20
        assert await EventLog(live).projected() == head  # the live projector applied all
        await migrate(replay)
        seeded = await migration_rows(replay)
        await copy_users(live, replay)
        assert await copy_log(live, replay) == head

        projection = Projection(replay)
        assert await projection.open() == 0
        assert await projection.catch_up() == head

        replayed, original = await tables(replay, seeded), await tables(live, seeded)
        for table in PROJECTED:
            assert replayed[table] == original[table], table
        assert all(original.values())  # no table compared empty
        assert len(original["trades"]) == 8
        assert len(original["withdrawals"]) == 4
        assert await audit(replay) == []
        await assert_books_are_the_database(replay, snaps)


async def test_a_log_the_projector_never_applied_is_projected_at_the_next_start(
        database_url: str) -> None:
    """Paused from the start, the projector applies nothing: every command is still
    acknowledged (the log is what makes it durable), and the tables stay as the
    migrations left them. The next start projects the whole log before it rebuilds the
    core from the tables: the same books (seq included), a sound ledger."""
    async with Database(database_url) as plain:  # not the exchange's: no read fence
        ex = Exchange(database_url, projector_paused=True)
        await ex.start()
        try:
            migrated = await tables(plain)
            reader = READER.set(NOTHING)  # users are no projection: nothing to wait for
            try:
                await traffic(ex)
            finally:
                READER.reset(reader)
            snaps = await books(ex)

            logged = await EventLog(plain).head()
            assert logged == ex.watermarks.logged > 20
            assert await EventLog(plain).projected() == 0
            assert ex.watermarks.projected == 0
            assert await tables(plain) == migrated
        finally:
            await ex.stop()

    async with Exchange(database_url) as ex:
        log = EventLog(ex.db)
        assert await log.projected() == logged == await log.head()
        assert await books(ex) == snaps
        await assert_books_are_the_database(ex.db, snaps)
        await assert_sound(ex)
        assert await audit(ex.db) == []
        assert int(await ex.db.fetch_val("SELECT COUNT(*) FROM trades")) == 8


async def test_a_balances_updated_at_does_not_depend_on_how_the_log_was_batched(
        migrated: Database, replay_url: str) -> None:
    """Two deposits, to two users, a millisecond apart: projected as two transactions
    (the live projector, lightly loaded) and as one (a catch-up), the first user's
    balance must say the same about when it changed."""
    first, second = await create_user(migrated, "a@test.example"), await create_user(
        migrated, "b@test.example")
    at = datetime(2026, 4, 22, 10, 0, 0, 1000, tzinfo=UTC)
    log = [Entry(i + 1, Writes(f"deposit-{i}", "deposit", user, "{}",
                               at + timedelta(milliseconds=i), movements=(
                                   MovementRow(user, "USDT", 1_000_000, 0, "deposit", None),)))
           for i, user in enumerate((first, second))]
    async with Database(replay_url) as replay:
        await migrate(replay)
        await copy_users(migrated, replay)
        one_by_one, at_once = Projection(migrated), Projection(replay)
        await one_by_one.open()
        await at_once.open()

        await one_by_one.apply(log[:1])
        await one_by_one.apply(log[1:])
        await at_once.apply(log)

        stamps = [await db.fetch_val("SELECT updated_at FROM balances WHERE user_id = :u",
                                     {"u": first}, as_type=datetime)
                  for db in (migrated, replay)]
        assert stamps[0] == log[0].writes.at  # one by one: the deposit's own time
        assert stamps[1] == stamps[0]
