"""``trading_pairs.book_seq``: the seq of each pair's book is durable, so the ``seq`` a client
follows (engine snapshots, ``order_book`` events) never goes back across a restart or a
rebuild of the core.

On both backends: the journal writer stores each pair's highest seq of a batch (also for a
pair the same batch inserts, which PostgreSQL's one-statement batch merges into the insert
row); a restarted ``Exchange`` loads it, and the WebSocket feed's mirrors start from it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from excentra.db import Database
from excentra.db.journal import JournalWriter
from excentra.db.records import PairRow, Writes
from excentra.db.state import load_state
from excentra.engine import Side
from excentra.exchange import Exchange
from excentra.http.auth import Tokens
from excentra.http.metrics import Metrics
from excentra.http.ratelimit import RateLimiter
from excentra.http.services import Services
from excentra.http.ws.startup import hub_of, start_ws
from excentra.market import BookMirror
from tests.actors.helpers import BTC_USDT, ETH_USDT, answered, funded_user, limit, ok
from tests.http.conftest import FAST_PASSWORDS, settings_for

pytestmark = pytest.mark.asyncio

D = Decimal
SOL_USDT = "SOL/USDT"


async def book_seqs(db: Database) -> dict[str, int]:
    return {p.symbol: p.book_seq for p in (await load_state(db)).pairs}


def command(n: int, **changes: Any) -> Writes:
    return Writes(f"book-seq-{n}", "test", None, "{}", datetime.now(UTC), **changes)


def pair_row(base: str, quote: str) -> PairRow:
    return PairRow(uuid.uuid4(), base, quote, f"{base}/{quote}", None, None, D(0), D(0),
                   datetime.now(UTC))


async def test_the_journal_stores_each_pairs_highest_seq(migrated: Database) -> None:
    ids = {p.symbol: p.id for p in (await load_state(migrated)).pairs}
    btc, eth = ids[BTC_USDT], ids[ETH_USDT]
    assert await book_seqs(migrated) == {BTC_USDT: 0, ETH_USDT: 0, SOL_USDT: 0}
    writer = JournalWriter(migrated, {}, {})
    sol_btc, eth_btc = pair_row("SOL", "BTC"), pair_row("ETH", "BTC")
    # one batch: two pairs that exist move (one twice), a pair is added and then moves
    # twice, another is added and does not move, and a command changes no book
    await writer.write([
        command(1, book=(btc, 5)), command(2, book=(eth, 3)), command(3, book=(btc, 7)),
        command(4, pairs=(sol_btc,)), command(5, book=(sol_btc.id, 1)), command(6),
        command(7, pairs=(eth_btc,)), command(8, book=(sol_btc.id, 2)),
    ], projected=8)
    assert await book_seqs(migrated) == {BTC_USDT: 7, ETH_USDT: 3, SOL_USDT: 0,
                                         "SOL/BTC": 2, "ETH/BTC": 0}
    # the next batch updates pairs inserted by an earlier one like any other
    await writer.write([command(9, book=(sol_btc.id, 3)), command(10, book=(btc, 8)),
                        command(11)], projected=11)
    assert await book_seqs(migrated) == {BTC_USDT: 8, ETH_USDT: 3, SOL_USDT: 0,
                                         "SOL/BTC": 3, "ETH/BTC": 0}


async def _resting_orders(ex: Exchange) -> int:
    """A few resting orders, a partial fill and a cancel on BTC/USDT, one order on
    ETH/USDT; BTC/USDT's seq after (as the engine reports it)."""
    maker = await funded_user(ex, USDT="10000", BTC="1")
    taker = await funded_user(ex, USDT="10000", BTC="1")
    ok(await answered(limit(ex, maker, Side.BUY, "100", "1")))
    ok(await answered(limit(ex, maker, Side.BUY, "101", "1")))
    ask = ok(await answered(limit(ex, maker, Side.SELL, "200", "0.5")))
    ok(await answered(limit(ex, taker, Side.SELL, "101", "0.25")))  # a trade: still a change
    assert isinstance(ask, dict)
    ok(await answered(ex.cancel_order(maker, ask["order_id"])))
    ok(await answered(limit(ex, maker, Side.BUY, "50", "1", symbol=ETH_USDT)))
    return await _engine_seq(ex, expected=5)


async def _engine_seq(ex: Exchange, expected: int) -> int:
    snap = ok(await answered(ex.snapshot(BTC_USDT)))
    assert isinstance(snap, dict)
    assert snap["seq"] == expected
    return expected


async def _mirror_reaches(mirror: BookMirror, seq: int) -> None:
    """The hub applies committed batches on this loop, after the command's reply."""
    async with asyncio.timeout(5):
        while mirror.seq != seq:
            await asyncio.sleep(0.01)


async def _continues(ex: Exchange, mirror: BookMirror, seq: int) -> None:
    """The engine's book is at ``seq``; the next resting order makes it ``seq + 1`` in the
    engine, the database and the feed's mirror."""
    await _engine_seq(ex, seq)
    user = await funded_user(ex, USDT="1000")
    ok(await answered(limit(ex, user, Side.BUY, "99", "1")))
    await _engine_seq(ex, seq + 1)
    assert (await book_seqs(ex.db))[BTC_USDT] == seq + 1
    await _mirror_reaches(mirror, seq + 1)


def _services(ex: Exchange, database_url: str) -> Services:
    settings = settings_for(database_url)
    return Services(settings, ex, Tokens("test-secret-" + "x" * 32), FAST_PASSWORDS,
                    RateLimiter(settings.rate_limits, settings.trusted_proxies),
                    Metrics(dict))


async def test_book_seq_survives_a_restart(database_url: str) -> None:
    async with Exchange(database_url) as ex:
        seq = await _resting_orders(ex)
        assert await book_seqs(ex.db) == {BTC_USDT: seq, ETH_USDT: 1, SOL_USDT: 0}
    async with Exchange(database_url) as ex:
        assert await book_seqs(ex.db) == {BTC_USDT: seq, ETH_USDT: 1, SOL_USDT: 0}
        services = _services(ex, database_url)
        stop = await start_ws(services)  # the WebSocket side's start, as the server runs it
        try:
            feed = hub_of(services).feed
            assert {s: m.seq for s, m in feed.view.mirrors.items()} == {
                BTC_USDT: seq, ETH_USDT: 1, SOL_USDT: 0}
            assert feed.book_event(BTC_USDT)["seq"] == seq
            bids = feed.book_event(BTC_USDT)["snapshot"]["bids"]
            assert [(D(b["price"]), D(b["quantity"])) for b in bids] == [
                (D(101), D("0.75")), (D(100), D(1))]
        finally:
            await stop()


async def test_a_restarted_book_continues_from_the_stored_seq(database_url: str) -> None:
    async with Exchange(database_url) as ex:
        seq = await _resting_orders(ex)
    async with Exchange(database_url) as ex:
        services = _services(ex, database_url)
        stop = await start_ws(services)
        try:
            mirror = hub_of(services).feed.view.mirrors[BTC_USDT]
            await _continues(ex, mirror, seq)  # the engine's book, rebuilt, continues
        finally:
            await stop()


@pytest.mark.parametrize("victim", ["book", "ledger"])
async def test_seq_continues_across_a_core_recovery(database_url: str, victim: str) -> None:
    """A book rebuilt alone (its actor died) or with the whole core (the ledger died)
    continues from the stored seq; the feed's mirror, which lives on, follows it."""
    async with Exchange(database_url) as ex:
        services = _services(ex, database_url)
        stop = await start_ws(services)
        try:
            mirror = hub_of(services).feed.view.mirrors[BTC_USDT]
            seq = await _resting_orders(ex)
            await _mirror_reaches(mirror, seq)
            sv = ex.supervisor
            assert sv is not None
            actors = sv.actors
            assert actors is not None
            done = (sv.recoveries, sv.book_recoveries)
            (actors.books[BTC_USDT] if victim == "book" else actors.ledger).tell(object())
            async with asyncio.timeout(15):  # an unexpected message kills the actor
                while (sv.recoveries, sv.book_recoveries) == done:
                    await asyncio.sleep(0.01)
                await sv.wait_recovered()
            await _continues(ex, mirror, seq)
        finally:
            await stop()
