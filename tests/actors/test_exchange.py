"""The ``Exchange`` facade end to end on both databases: the original's flows, exact
amounts in the ``balances`` table and in the ledger actor, idempotency, runtime pairs.

Seeded pairs have no fees, so every amount below is exact arithmetic.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from excentra.actors.bridge import Rejected
from excentra.db.audit import audit
from excentra.engine import OrderType, RejectCode, Side
from excentra.exchange import Exchange
from tests.actors.helpers import (
    BTC_USDT,
    D,
    assert_sound,
    balance,
    count,
    counts,
    funded_user,
    in_memory_balances,
    limit,
    new_user,
    ok,
    order_row,
    units,
)

pytestmark = pytest.mark.asyncio
BUY, SELL = Side.BUY, Side.SELL


async def test_crossing_limit_orders_trade_and_settle_exact_amounts(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    b = await funded_user(exchange, BTC="1")
    ask = ok(await limit(exchange, b, SELL, "50000", "0.1"))
    assert ask["status"] == "open"
    assert await balance(exchange.db, b, "BTC") == (D("0.9"), D("0.1"))

    # A bids above the ask: pays the maker's price, the improvement is released.
    bid = ok(await limit(exchange, a, BUY, "50100", "0.1"))

    assert bid["status"] == "filled"
    assert bid["trades"] == [{"price": "50000.00", "quantity": "0.1000"}]
    assert await balance(exchange.db, a, "USDT") == (D("5000"), D(0))
    assert await balance(exchange.db, a, "BTC") == (D("0.1"), D(0))
    assert await balance(exchange.db, b, "BTC") == (D("0.9"), D(0))
    assert await balance(exchange.db, b, "USDT") == (D("5000"), D(0))
    memory = await in_memory_balances(exchange)
    assert memory[(a, "USDT")] == (units("5000", 6), 0)
    assert memory[(a, "BTC")] == (units("0.1", 8), 0)
    assert memory[(b, "BTC")] == (units("0.9", 8), 0)
    assert memory[(b, "USDT")] == (units("5000", 6), 0)
    for oid in (ask["order_id"], bid["order_id"]):
        row = await order_row(exchange.db, oid)
        assert (row["status"], row["filled_quantity"], row["reserved"]) == (
            "filled", D("0.1"), D(0))
    trade = await exchange.db.fetch_one("SELECT price, quantity, quote_amount, taker_side "
                                        "FROM trades", types={"price": D, "quantity": D,
                                                              "quote_amount": D})
    assert trade == {"price": D("50000"), "quantity": D("0.1"), "quote_amount": D("5000"),
                     "taker_side": "buy"}
    await assert_sound(exchange)


async def test_cancel_releases_the_hold(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    placed = ok(await limit(exchange, a, BUY, "40000", "0.2"))
    assert await balance(exchange.db, a, "USDT") == (D("2000"), D("8000"))
    assert (await order_row(exchange.db, placed["order_id"]))["reserved"] == D("8000")

    cancelled = ok(await exchange.cancel_order(a, placed["order_id"]))

    assert cancelled["status"] == "cancelled"
    row = await order_row(exchange.db, placed["order_id"])
    assert (row["status"], row["reserved"]) == ("cancelled", D(0))
    assert await balance(exchange.db, a, "USDT") == (D("10000"), D(0))
    assert (await exchange.snapshot(BTC_USDT))["bids"] == []  # type: ignore[index]
    await assert_sound(exchange)


async def test_insufficient_balance_is_rejected_and_writes_nothing(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="100")
    nobody = await new_user(exchange)
    before = await counts(exchange.db)

    too_big = await limit(exchange, a, BUY, "50000", "1", client_order_id="big")
    no_funds = await limit(exchange, nobody, SELL, "50000", "1")
    market = await exchange.place_order(a, BTC_USDT, BUY, OrderType.MARKET,
                                        budget=D("100.000001"))

    assert too_big == no_funds == market == Rejected(RejectCode.INSUFFICIENT_FUNDS)
    assert await counts(exchange.db) == before
    assert await balance(exchange.db, a, "USDT") == (D("100"), D(0))
    await assert_sound(exchange)


async def test_self_cross_is_rejected_before_matching(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000", BTC="1")
    b = await funded_user(exchange, BTC="1")
    ok(await limit(exchange, b, SELL, "49000", "0.1"))  # would fill A first: still refused
    ok(await limit(exchange, a, SELL, "50000", "0.1"))
    before = await counts(exchange.db)

    crossed = await limit(exchange, a, BUY, "50000", "0.1")

    assert crossed == Rejected(RejectCode.SELF_CROSS)
    assert await counts(exchange.db) == before
    assert await balance(exchange.db, a, "USDT") == (D("10000"), D(0))
    await assert_sound(exchange)


async def test_market_buy_spends_its_budget_level_by_level(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    b = await funded_user(exchange, BTC="1")
    ok(await limit(exchange, b, SELL, "50000", "0.1"))
    ok(await limit(exchange, b, SELL, "51000", "0.1"))

    # 5000 buys the first level; 2600 buys 0.0509 at 51000 (2595.9), 4.1 is left over.
    bought = ok(await exchange.place_order(a, BTC_USDT, BUY, OrderType.MARKET,
                                           budget=D("7600")))

    assert bought["filled_quantity"] == "0.1509"
    assert bought["trades"] == [{"price": "50000.00", "quantity": "0.1000"},
                                {"price": "51000.00", "quantity": "0.0509"}]
    assert await balance(exchange.db, a, "USDT") == (D("2404.1"), D(0))
    assert await balance(exchange.db, a, "BTC") == (D("0.1509"), D(0))
    assert await balance(exchange.db, b, "USDT") == (D("7595.9"), D(0))
    assert await balance(exchange.db, b, "BTC") == (D("0.8"), D("0.0491"))
    assert (await order_row(exchange.db, bought["order_id"]))["reserved"] == D(0)
    snap = await exchange.snapshot(BTC_USDT)
    assert snap["asks"] == [{"price": "51000.00", "quantity": "0.0491"}]  # type: ignore[index]
    await assert_sound(exchange)


async def test_market_sell_by_quantity(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    b = await funded_user(exchange, BTC="1")
    ok(await limit(exchange, a, BUY, "50000", "0.05"))

    sold = ok(await exchange.place_order(b, BTC_USDT, SELL, OrderType.MARKET,
                                         quantity=D("0.08")))

    assert sold["filled_quantity"] == "0.0500"
    assert await balance(exchange.db, b, "BTC") == (D("0.95"), D(0))
    assert await balance(exchange.db, b, "USDT") == (D("2500"), D(0))
    assert await balance(exchange.db, a, "BTC") == (D("0.05"), D(0))
    await assert_sound(exchange)


async def test_same_client_order_id_sequentially_is_one_order(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    first = ok(await limit(exchange, a, BUY, "40000", "0.1", client_order_id="c-1"))
    second = ok(await limit(exchange, a, BUY, "40000", "0.1", client_order_id="c-1"))
    assert first == second
    assert await count(exchange.db, "orders", "client_order_id = :c", c="c-1") == 1
    assert await balance(exchange.db, a, "USDT") == (D("6000"), D("4000"))
    await assert_sound(exchange)


async def test_same_client_order_id_concurrently_is_one_order(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    answers = await asyncio.gather(*(
        limit(exchange, a, BUY, "40000", "0.1", client_order_id="c-2") for _ in range(5)))
    assert all(ans == answers[0] for ans in answers)
    ok(answers[0])
    assert await count(exchange.db, "orders") == 1
    assert await balance(exchange.db, a, "USDT") == (D("6000"), D("4000"))
    await assert_sound(exchange)


async def test_cancel_of_another_users_order_is_not_found(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    mallory = await funded_user(exchange, USDT="1")
    placed = ok(await limit(exchange, a, BUY, "40000", "0.1"))
    not_found = Rejected(RejectCode.ORDER_NOT_FOUND)
    assert await exchange.cancel_order(mallory, placed["order_id"]) == not_found
    assert await exchange.cancel_order(a, str(uuid.uuid4())) == not_found
    assert await exchange.cancel_order(a, "not-a-uuid") == not_found
    assert (await order_row(exchange.db, placed["order_id"]))["status"] == "open"
    assert await balance(exchange.db, a, "USDT") == (D("6000"), D("4000"))
    await assert_sound(exchange)


async def _releases_of(exchange: Exchange, order_id: str) -> int:
    return await count(exchange.db, "ledger_entries", "ref_id = :r AND kind = 'release'",
                       r=uuid.UUID(order_id))


async def test_cancel_twice_cancels_once(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    placed = ok(await limit(exchange, a, BUY, "40000", "0.1"))
    first = ok(await exchange.cancel_order(a, placed["order_id"]))
    second = await exchange.cancel_order(a, placed["order_id"])
    # The core knows open orders only; the HTTP route says why from what is stored.
    assert second == Rejected(RejectCode.ORDER_NOT_FOUND)
    assert first["status"] == "cancelled"
    assert await _releases_of(exchange, placed["order_id"]) == 1
    assert await count(exchange.db, "commands", "kind = 'cancel_order'") == 1
    assert await balance(exchange.db, a, "USDT") == (D("10000"), D(0))
    await assert_sound(exchange)


async def test_concurrent_cancels_cancel_once(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="10000")
    placed = ok(await limit(exchange, a, BUY, "40000", "0.1"))
    answers = await asyncio.gather(*(exchange.cancel_order(a, placed["order_id"])
                                     for _ in range(4)))
    done = [x for x in answers if not isinstance(x, Rejected)]
    assert done, answers
    assert all(x == done[0] for x in done)
    assert all(x == Rejected(RejectCode.ORDER_NOT_OPEN) for x in answers if x not in done)
    assert await _releases_of(exchange, placed["order_id"]) == 1
    assert await balance(exchange.db, a, "USDT") == (D("10000"), D(0))
    await assert_sound(exchange)


async def test_deposit_with_an_idempotency_key_is_credited_once(exchange: Exchange) -> None:
    a = await new_user(exchange)
    first = ok(await exchange.deposit(a, "USDT", D("250"), idempotency_key="tx-1"))
    again = ok(await exchange.deposit(a, "USDT", D("250"), idempotency_key="tx-1"))
    racing = await asyncio.gather(*(exchange.deposit(a, "BTC", D("0.5"), idempotency_key="tx-2")
                                    for _ in range(4)))
    assert first == again
    assert all(r == racing[0] for r in racing)
    ok(racing[0])
    assert await balance(exchange.db, a, "USDT") == (D("250"), D(0))
    assert await balance(exchange.db, a, "BTC") == (D("0.5"), D(0))
    assert await count(exchange.db, "ledger_entries", "kind = 'deposit'") == 2
    await assert_sound(exchange)


async def test_bad_deposit_amounts_are_rejected_and_write_nothing(exchange: Exchange) -> None:
    a = await new_user(exchange)
    before = await counts(exchange.db)
    assert await exchange.deposit(a, "USDT", D("1.0000001")) == Rejected(
        RejectCode.AMOUNT_OFF_GRID)
    assert await exchange.deposit(a, "USDT", D("-5")) == Rejected(
        RejectCode.AMOUNT_NOT_POSITIVE)
    assert await exchange.deposit(a, "DOGE", D("5")) == Rejected(RejectCode.ASSET_NOT_FOUND)
    assert await counts(exchange.db) == before


async def test_withdraw_holds_funds_until_sent(exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="100")
    held = ok(await exchange.withdraw(a, "USDT", D("40"), "0xabc"))
    assert held["status"] == "pending"
    row = await exchange.db.fetch_one(
        "SELECT user_id, asset, amount, status FROM withdrawals WHERE id = :id",
        {"id": uuid.UUID(held["id"])}, types={"amount": D, "user_id": uuid.UUID})
    assert row == {"user_id": uuid.UUID(a), "asset": "USDT", "amount": D("40"),
                   "status": "pending"}
    assert await balance(exchange.db, a, "USDT") == (D("60"), D("40"))

    over = await exchange.withdraw(a, "USDT", D("60.000001"), "0xabc")

    assert over == Rejected(RejectCode.INSUFFICIENT_FUNDS)
    assert await count(exchange.db, "withdrawals") == 1
    assert await balance(exchange.db, a, "USDT") == (D("60"), D("40"))
    await assert_sound(exchange)


async def test_a_sent_withdrawal_leaves_and_a_cancelled_one_returns(
        exchange: Exchange) -> None:
    a = await funded_user(exchange, USDT="100")
    first = ok(await exchange.withdraw(a, "USDT", D("30"), "0xabc"))
    second = ok(await exchange.withdraw(a, "USDT", D("20"), "0xabc"))
    assert await balance(exchange.db, a, "USDT") == (D("50"), D("50"))

    sent = ok(await exchange.settle_withdrawal(first["id"], sent=True, tx_hash="0xfeed"))
    kept = ok(await exchange.settle_withdrawal(second["id"], sent=False))

    assert (sent["status"], kept["status"]) == ("confirmed", "cancelled")
    assert await balance(exchange.db, a, "USDT") == (D("70"), D("0"))
    rows = await exchange.db.fetch_all("SELECT status, tx_hash FROM withdrawals ORDER BY amount")
    assert [(r["status"], r["tx_hash"]) for r in rows] == [("cancelled", None),
                                                           ("confirmed", "0xfeed")]
    # Settling again answers with the stored result; an unknown id is not found.
    assert await exchange.settle_withdrawal(first["id"], sent=True) == sent
    assert await exchange.settle_withdrawal(str(uuid.uuid4()), sent=True) == Rejected(
        RejectCode.ORDER_NOT_FOUND)
    await assert_sound(exchange)  # conservation: the 30 left the exchange's totals


async def _book(exchange: Exchange, symbol: str) -> dict[str, object]:
    snap = await exchange.snapshot(symbol)
    assert isinstance(snap, dict), snap
    return {k: snap[k] for k in ("bids", "asks", "state_hash")}


async def test_runtime_pair_trades_at_once_and_survives_a_restart(database_url: str) -> None:
    async with Exchange(database_url) as ex:
        asset = ok(await ex.add_asset("DOGE", "Dogecoin", 8))
        pair = ok(await ex.add_pair("DOGE", "USDT"))
        a = await funded_user(ex, USDT="1000")
        b = await funded_user(ex, DOGE="500")
        ok(await limit(ex, b, SELL, "0.25", "100", symbol="DOGE/USDT"))
        ok(await limit(ex, b, SELL, "0.30", "50", symbol="DOGE/USDT"))
        ok(await limit(ex, a, BUY, "0.20", "40", symbol="DOGE/USDT"))
        took = ok(await limit(ex, a, BUY, "0.25", "10", symbol="DOGE/USDT"))
        assert took["status"] == "filled"
        assert await balance(ex.db, a, "DOGE") == (D(10), D(0))
        assert await balance(ex.db, a, "USDT") == (D("989.5"), D(8))
        before = await _book(ex, "DOGE/USDT")
        btc_before = await _book(ex, BTC_USDT)
        await assert_sound(ex)

    async with Exchange(database_url) as ex:
        assert await _book(ex, "DOGE/USDT") == before
        assert await _book(ex, BTC_USDT) == btc_before
        # added without steps: the finest grid (USDT's 6 and DOGE's 8 decimals)
        assert before["asks"] == [{"price": "0.250000", "quantity": "90.00000000"},
                                  {"price": "0.300000", "quantity": "50.00000000"}]
        more = ok(await limit(ex, a, BUY, "0.30", "100", symbol="DOGE/USDT"))
        assert more["filled_quantity"] == "100.00000000"
        assert await balance(ex.db, a, "DOGE") == (D(110), D(0))
        # Adding them again is refused: they exist (not a replay of the first answer).
        assert asset["symbol"] == "DOGE"
        assert pair["symbol"] == "DOGE/USDT"
        assert await ex.add_asset("DOGE", "Dogecoin", 8) == Rejected(RejectCode.ALREADY_EXISTS)
        assert await ex.add_pair("DOGE", "USDT") == Rejected(RejectCode.ALREADY_EXISTS)
        await assert_sound(ex)
        assert await audit(ex.db) == []


async def test_adding_an_existing_pair_leaves_its_book_alone(exchange: Exchange) -> None:
    sv = exchange.supervisor
    assert sv is not None
    assert sv.actors is not None
    live = sv.actors.books[BTC_USDT]
    try:
        assert await exchange.add_pair("BTC", "USDT") == Rejected(RejectCode.ALREADY_EXISTS)
        assert sv.actors.books[BTC_USDT] is live
        assert isinstance(await exchange.snapshot(BTC_USDT), dict)
    finally:
        if sv.actors.books[BTC_USDT] is not live and live.is_alive():
            live.stop()  # the orphan would outlive the exchange (and the test)
