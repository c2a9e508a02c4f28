"""The order pipeline's durability contract: acknowledge after durable, broadcast only
committed events, in commit order; and group commit (DESIGN.md invariants 3 and 4)."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from typing import Any

import pytest

from excentra.actors.journal import JournalStats, Pause, Resume
from excentra.engine import OrderAccepted, Side, TradeExecuted
from excentra.exchange import Exchange
from tests.actors.helpers import (
    D,
    Recorder,
    answered,
    assert_sound,
    count,
    funded_user,
    limit,
    ok,
)

pytestmark = pytest.mark.asyncio
HELD_FOR = 0.3
"""Seconds the journal is held: long enough for the whole pipeline to run up to it."""


def _journal(ex: Exchange) -> Any:
    assert ex.supervisor is not None
    assert ex.supervisor.actors is not None
    return ex.supervisor.actors.journal


async def _stats(ex: Exchange) -> JournalStats:
    stats = await answered(ex.journal_stats())
    assert isinstance(stats, JournalStats), stats
    return stats


async def test_nothing_is_acknowledged_or_broadcast_before_it_is_durable(
        recorded: tuple[Exchange, Recorder]) -> None:
    ex, rec = recorded
    makers = [await funded_user(ex, BTC="1") for _ in range(3)]
    taker = await funded_user(ex, USDT="100000")
    orders_before, delivered_before = await count(ex.db, "orders"), await _settled(ex, rec)

    _journal(ex).tell(Pause())
    tasks = [asyncio.create_task(limit(ex, m, Side.SELL, str(50000 + i), "0.1",
                                       client_order_id=f"ask-{i}"))
             for i, m in enumerate(makers)]
    await _asks_on_book(ex, 3)  # matched already, though not yet durable
    tasks.append(asyncio.create_task(limit(ex, taker, Side.BUY, "50001", "0.15",
                                           client_order_id="bid")))
    tasks.append(asyncio.create_task(ex.deposit(taker, "USDT", D("5"))))
    await asyncio.sleep(HELD_FOR)

    assert not any(t.done() for t in tasks)
    assert len(rec.commands) == delivered_before
    assert await count(ex.db, "orders") == orders_before
    assert await count(ex.db, "trades") == 0

    _journal(ex).tell(Resume())
    results = [ok(r) for r in await answered(asyncio.gather(*tasks))]

    assert await count(ex.db, "orders") == orders_before + 4
    assert await count(ex.db, "trades") == 2
    await _wait_for_deliveries(rec, delivered_before + 5)
    delivered = rec.commands[delivered_before:]
    # Every command, once, with the reply its caller got ...
    assert len(delivered) == len(results)
    assert {_key(c.result): c.result for c in delivered} == {_key(r): r for r in results}
    # ... in the order the pipeline produced them (it assigns order seq in that order).
    seqs = [c.writes.orders[0].seq for c in delivered if c.writes.orders]
    assert seqs == sorted(seqs)
    assert len(seqs) == 4
    for c, r in ((c, c.result) for c in delivered if c.writes.orders):
        accepted = [e for e in c.events if isinstance(e, OrderAccepted)]
        assert [str(e.order_id) for e in accepted] == [r["order_id"]]
    bid = next(c for c in delivered if c.writes.command_id.endswith(":bid"))
    assert len([e for e in bid.events if isinstance(e, TradeExecuted)]) == 2
    assert len(bid.trades) == 2
    await _assert_db_commit_order(ex, delivered)
    await assert_sound(ex)


def _key(result: dict[str, Any]) -> str:
    return str(result.get("order_id") or result.get("id"))


async def _assert_db_commit_order(ex: Exchange, delivered: list[Any]) -> None:
    rows = await ex.db.fetch_all("SELECT id, seq FROM orders", types={"id": uuid.UUID})
    db_seq = {str(r["id"]): int(r["seq"]) for r in rows}
    ids = [c.result["order_id"] for c in delivered if c.writes.orders]
    assert [db_seq[i] for i in ids] == sorted(db_seq[i] for i in ids)


async def _asks_on_book(ex: Exchange, n: int, timeout: float = 5) -> None:
    async def resting() -> None:
        while len((await ex.snapshot("BTC/USDT"))["asks"]) < n:  # type: ignore[index]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(resting(), timeout)


async def _settled(ex: Exchange, rec: Recorder) -> int:
    """Wait until every command committed so far has been delivered; how many."""
    committed = (await _stats(ex)).commands
    await _wait_for_deliveries(rec, committed)
    assert len(rec.commands) == committed
    return committed


async def _wait_for_deliveries(rec: Recorder, n: int, timeout: float = 5) -> None:
    """Deliveries follow the acknowledgements (another thread): wait for them."""
    async def arrived() -> None:
        while len(rec.commands) < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(arrived(), timeout)


async def test_replies_and_broadcasts_wait_for_a_held_journal_of_any_command(
        recorded: tuple[Exchange, Recorder]) -> None:
    ex, rec = recorded
    a = await funded_user(ex, USDT="1000")
    placed = ok(await limit(ex, a, Side.BUY, "100", "1"))
    delivered_before = await _settled(ex, rec)

    _journal(ex).tell(Pause())
    cancel = asyncio.create_task(ex.cancel_order(a, placed["order_id"]))
    withdraw = asyncio.create_task(ex.withdraw(a, "USDT", D("10"), "0xabc"))
    await asyncio.sleep(HELD_FOR)
    assert not cancel.done()
    assert not withdraw.done()
    assert len(rec.commands) == delivered_before
    row = await ex.db.fetch_one("SELECT status FROM orders")
    assert row == {"status": "open"}
    assert await count(ex.db, "withdrawals") == 0

    _journal(ex).tell(Resume())
    ok(await answered(cancel))
    ok(await answered(withdraw))
    await _wait_for_deliveries(rec, delivered_before + 2)
    assert sorted(c.writes.kind for c in rec.commands[delivered_before:]) == [
        "cancel_order", "withdraw"]
    await assert_sound(ex)


async def test_concurrent_placements_are_committed_in_batches(
        recorded: tuple[Exchange, Recorder]) -> None:
    ex, rec = recorded
    users = [await funded_user(ex, USDT="100000", BTC="10") for _ in range(6)]
    before = await _stats(ex)

    results = await answered(asyncio.gather(*(
        limit(ex, users[i % 6], Side.BUY if i % 2 else Side.SELL,
              str(50000 - 1 - i % 10) if i % 2 else str(50000 + i % 10), "0.01")
        for i in range(300))), timeout=60)

    assert all(ok(r)["status"] == "open" for r in results)
    stats = await _stats(ex)
    sizes = stats.sizes[before.batches:]
    assert sum(sizes) == stats.commands - before.commands == 300
    print(f"journal batches for 300 placements: {sizes}")
    assert statistics.mean(sizes) > 1, sizes
    assert max(sizes) > 1
    await _wait_for_deliveries(rec, 300 + 12)
    assert [len(b.commands) for b in rec.batches][-len(sizes):] == sizes
    await assert_sound(ex)


async def test_rows_inserted_and_changed_in_one_batch_end_in_their_final_state(
        exchange: Exchange) -> None:
    """One held batch: an order rests and is hit twice until filled; another rests and is
    partly hit (PostgreSQL writes a batch as one statement, merging the changes of rows
    the batch itself inserts). A third, cancelled after, keeps its remainder."""
    ex = exchange
    maker = await funded_user(ex, BTC="1")
    taker = await funded_user(ex, USDT="100000")
    stats_before = await _stats(ex)

    _journal(ex).tell(Pause())
    filled = asyncio.create_task(limit(ex, maker, Side.SELL, "100", "0.3",
                                       client_order_id="filled"))
    await _asks_on_book(ex, 1)
    hits = [asyncio.create_task(limit(ex, taker, Side.BUY, "100", q)) for q in ("0.1", "0.2")]
    await asyncio.sleep(0.05)
    cancelled = asyncio.create_task(limit(ex, maker, Side.SELL, "200", "0.1",
                                          client_order_id="cancelled"))
    partial = asyncio.create_task(limit(ex, maker, Side.SELL, "150", "0.5",
                                        client_order_id="partial"))
    await _asks_on_book(ex, 2)
    await asyncio.sleep(0.05)
    hit = asyncio.create_task(limit(ex, taker, Side.BUY, "150", "0.2"))
    await asyncio.sleep(HELD_FOR)
    _journal(ex).tell(Resume())

    first = ok(await answered(filled))
    for task in (*hits, hit):
        assert ok(await answered(task))["status"] == "filled"
    to_cancel = ok(await answered(cancelled))["order_id"]
    rest = ok(await answered(partial))["order_id"]
    assert ok(await ex.cancel_order(maker, to_cancel))["status"] == "cancelled"
    stats = await _stats(ex)
    assert stats.batches - stats_before.batches <= 3  # the held five in one batch
    rows = {str(r["id"]): (r["status"], D(r["remaining_quantity"]), D(r["reserved"]))
            for r in await ex.db.fetch_all(
                "SELECT id, status, remaining_quantity, reserved FROM orders "
                "WHERE user_id = :u", {"u": uuid.UUID(maker)})}
    assert rows == {first["order_id"]: ("filled", 0, 0),
                    to_cancel: ("cancelled", D("0.1"), 0),
                    rest: ("partially_filled", D("0.3"), D("0.3"))}
    await assert_sound(ex)
