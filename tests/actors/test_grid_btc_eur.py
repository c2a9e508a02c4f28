"""BTC/EUR as exchanges list it — EUR at 2 decimals, price step 0.01, quantity step 0.0001
— trading end to end through the actor core on both databases (issue 13).

One tick × one lot is 0.000001 EUR, a ten-thousandth of a cent: trades round (the rule in
``excentra.engine.precision``). After every step: conservation and the database agreeing
with the ledger (``assert_sound``); each user's ``held`` is exactly the ``reserved`` of
their open orders; each buy order has paid in all its exact cost rounded half-to-even,
never more than it reserved, a budget buy never more than its budget.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from excentra.engine import OrderType, RejectCode, Side
from excentra.exchange import Exchange, Outcome
from tests.actors.helpers import (
    D,
    assert_sound,
    balance,
    funded_user,
    limit,
    order_row,
    rejected,
)

pytestmark = pytest.mark.asyncio

BTC_EUR = "BTC/EUR"
BUY, SELL = Side.BUY, Side.SELL
CENT = D("0.01")


def done(outcome: Outcome) -> dict[str, Any]:
    """The outcome's result, asserting it is not a rejection."""
    assert isinstance(outcome, dict), outcome
    return outcome


async def list_btc_eur(ex: Exchange) -> None:
    done(await ex.add_asset("EUR", "Euro", 2))
    pair = done(await ex.add_pair("BTC", "EUR", price_step=CENT, quantity_step=D("0.0001")))
    assert (pair["price_step"], pair["quantity_step"]) == ("0.01", "0.0001")


async def buy(ex: Exchange, user: str, price: str, quantity: str) -> dict[str, Any]:
    return done(await limit(ex, user, BUY, price, quantity, symbol=BTC_EUR))


async def sell(ex: Exchange, user: str, price: str, quantity: str) -> dict[str, Any]:
    return done(await limit(ex, user, SELL, price, quantity, symbol=BTC_EUR))


async def eur(ex: Exchange, user: str) -> tuple[Decimal, Decimal]:
    return await balance(ex.db, user, "EUR")


async def trades_of(ex: Exchange, order_id: str) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(price, quantity, quote amount) of the order's trades, in order."""
    rows = await ex.db.fetch_all(
        "SELECT price, quantity, quote_amount FROM trades WHERE buy_order_id = :o "
        "OR sell_order_id = :o ORDER BY seq", {"o": uuid.UUID(order_id)},
        types={"price": Decimal, "quantity": Decimal, "quote_amount": Decimal})
    return [(r["price"], r["quantity"], r["quote_amount"]) for r in rows]


async def check(ex: Exchange, users: list[str], buys: dict[str, Decimal]) -> None:
    """Sound, held = open orders' reservations, and every buy paid R(its exact cost) and
    no more than it held at the start (``buys``: order id → reservation or budget)."""
    await assert_sound(ex)
    rows = await ex.db.fetch_all(
        "SELECT user_id, side, reserved FROM orders WHERE status IN ('open', "
        "'partially_filled')", types={"user_id": uuid.UUID, "reserved": Decimal})
    reserved: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["side"] == "buy":
            reserved[str(r["user_id"])] += r["reserved"]
    for user in users:
        assert (await eur(ex, user))[1] == reserved[user], user
    for order_id, held in buys.items():
        trades = await trades_of(ex, order_id)
        exact = sum((p * q for p, q, _ in trades), D(0))
        paid = sum((quote for _, _, quote in trades), D(0))
        assert paid == exact.quantize(CENT, rounding=ROUND_HALF_EVEN), order_id
        assert paid <= held, order_id


async def test_btc_eur_trades_end_to_end(exchange: Exchange) -> None:
    ex = exchange
    await list_btc_eur(ex)
    s1 = await funded_user(ex, BTC="1")
    s2 = await funded_user(ex, BTC="1")
    b = await funded_user(ex, EUR="1000")
    b2 = await funded_user(ex, EUR="1")
    users, buys = [s1, s2, b, b2], {}
    await sell(ex, s1, "100.01", "0.0005")
    await sell(ex, s2, "100.03", "0.0005")
    await sell(ex, s1, "100.05", "0.0010")
    # Partial fills at two prices: 0.050005 + 0.050015 = 0.10002 → pays 0.05 + 0.05.
    bid = await buy(ex, b, "100.04", "0.0020")  # reserves ⌈0.20008⌉ = 0.21
    buys[bid["order_id"]] = D("0.21")
    assert (bid["status"], bid["filled_quantity"]) == ("partially_filled", "0.0010")
    assert [q for _, _, q in await trades_of(ex, bid["order_id"])] == [D("0.05"), D("0.05")]
    # It keeps ⌈0.10002 + 10 lots × 100.04⌉ − 0.10 = 0.11 for the rest.
    assert (await order_row(ex.db, bid["order_id"]))["reserved"] == D("0.11")
    assert await eur(ex, b) == (D("999.79"), D("0.11"))
    assert await eur(ex, s1) == (D("0.05"), D(0))
    assert await eur(ex, s2) == (D("0.05"), D(0))
    await check(ex, users, buys)

    # A market sell fills 4 more lots of the bid at 100.04: its running cost 0.140036
    # rounds to 0.14, so this trade moves 0.04.
    sold = done(await ex.place_order(s2, BTC_EUR, SELL, OrderType.MARKET, quantity=D("0.0004")))
    assert sold["status"] == "filled"
    assert (await trades_of(ex, bid["order_id"]))[-1] == (D("100.04"), D("0.0004"), D("0.04"))
    assert await eur(ex, b) == (D("999.79"), D("0.07"))
    await check(ex, users, buys)

    # A budget buy: one lot at 100.05 costs 0.010005, so 0.05 buys 4 lots (0.04002).
    bought = done(await ex.place_order(b2, BTC_EUR, BUY, OrderType.MARKET, budget=D("0.05")))
    buys[bought["order_id"]] = D("0.05")
    assert bought["filled_quantity"] == "0.0004"
    assert await eur(ex, b2) == (D("0.96"), D(0))
    assert await balance(ex.db, b2, "BTC") == (D("0.0004"), D(0))
    await check(ex, users, buys)

    # A budget too small for one lot fills nothing and holds nothing afterwards.
    tiny = done(await ex.place_order(b2, BTC_EUR, BUY, OrderType.MARKET, budget=D("0.01")))
    assert (tiny["status"], tiny["filled_quantity"]) == ("cancelled", "0.0000")
    assert await eur(ex, b2) == (D("0.96"), D(0))

    # Cancel the partly filled bid: everything it held comes back.
    cancelled = done(await ex.cancel_order(b, bid["order_id"]))
    assert cancelled["status"] == "cancelled"
    assert await eur(ex, b) == (D("999.86"), D(0))
    await check(ex, users, buys)
    # EUR: 1000 + 1 deposited, all of it still on the exchange's accounts.
    assert sum([sum(await eur(ex, u)) for u in users], D(0)) == D("1001")
    # Off-grid input is refused as before.
    assert await limit(ex, b, BUY, "100.001", "0.0001", symbol=BTC_EUR) == rejected(
        RejectCode.PRICE_OFF_TICK)
    assert await limit(ex, b, BUY, "100", "0.00001", symbol=BTC_EUR) == rejected(
        RejectCode.QUANTITY_OFF_LOT)


async def test_fills_below_a_cent_are_paid_when_their_sum_reaches_one(
        exchange: Exchange) -> None:
    ex = exchange
    await list_btc_eur(ex)
    s = await funded_user(ex, BTC="1")
    b = await funded_user(ex, EUR="10")
    users = [s, b]
    bid = await buy(ex, b, "0.30", "0.0500")  # 0.015 → reserves 0.02
    buys = {bid["order_id"]: D("0.02")}
    quotes = []
    for _ in range(5):  # 0.003 each: the running cost 0.003, 0.006 … 0.015 rounds to
        # 0, 0.01, 0.01, 0.01, 0.02 (half to even)
        await sell(ex, s, "0.30", "0.0100")
        quotes.append((await trades_of(ex, bid["order_id"]))[-1][2])
        await check(ex, users, buys)
    assert quotes == [D(0), D("0.01"), D(0), D(0), D("0.01")]
    assert await eur(ex, b) == (D("9.98"), D(0))
    assert await eur(ex, s) == (D("0.02"), D(0))


async def test_a_restart_continues_a_buys_running_cost(database_url: str) -> None:
    async with Exchange(database_url) as ex:
        await list_btc_eur(ex)
        s = await funded_user(ex, BTC="1")
        b = await funded_user(ex, EUR="10")
        bid = await buy(ex, b, "0.40", "0.0200")  # 0.008 → reserves 0.01
        await sell(ex, s, "0.40", "0.0100")  # 0.004: rounds to nothing yet
        assert [q for *_, q in await trades_of(ex, bid["order_id"])] == [D(0)]
        assert await eur(ex, b) == (D("9.99"), D("0.01"))
        await check(ex, [s, b], {bid["order_id"]: D("0.01")})

    async with Exchange(database_url) as ex:  # rebuilt from the database
        await sell(ex, s, "0.40", "0.0100")
        # The running cost is 0.008 (not a fresh 0.004): this fill pays the cent.
        assert [q for *_, q in await trades_of(ex, bid["order_id"])] == [D(0), D("0.01")]
        assert await eur(ex, b) == (D("9.99"), D(0))
        assert await eur(ex, s) == (D("0.01"), D(0))
        await check(ex, [s, b], {bid["order_id"]: D("0.01")})


async def test_a_pair_added_without_steps_takes_every_amount_its_decimals_write(
        database_url: str) -> None:
    async with Exchange(database_url) as ex:
        done(await ex.add_asset("EUR", "Euro", 2))
        pair = done(await ex.add_pair("BTC", "EUR"))
        assert (pair["price_step"], pair["quantity_step"]) == ("0.01", "0.00000001")
        s = await funded_user(ex, BTC="1")
        b = await funded_user(ex, EUR="100")
        await sell(ex, s, "65000.01", "0.00000123")
        took = await buy(ex, b, "65000.01", "0.00000123")  # 0.0799500123 → 0.08
        assert took["status"] == "filled"
        assert await eur(ex, b) == (D("99.92"), D(0))
        await check(ex, [s, b], {took["order_id"]: D("0.08")})

    async with Exchange(database_url) as ex:  # the grid was stored with the pair
        spec = ex.pair_spec(BTC_EUR)
        assert spec is not None
        assert (spec.price_step, spec.quantity_step) == (CENT, D("0.00000001"))
        # The seeded pairs keep the grid they have always traded on.
        usdt = ex.pair_spec("BTC/USDT")
        assert usdt is not None
        assert (usdt.price_step, usdt.quantity_step) == (CENT, D("0.0001"))
