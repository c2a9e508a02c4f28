"""Scenarios through the whole synchronous pipeline: reserve -> match -> settle/release.

Every scenario ends with ``ledger.check()`` and exact balances in minor units
(BTC: 10^-8, USDT: 10^-6, ETH: 10^-18).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from excentra.engine import (
    CancelReason,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PairSpec,
    RejectCode,
    StpMode,
    TimeInForce,
)
from excentra.ledger import FEE_ACCOUNT, Movement, PairTerms
from excentra.ledger.clearing import NewOrder, OpenedOrder
from tests.builders import last, of
from tests.ledger.venue import (
    BTC_USDT,
    BUY,
    SELL,
    Venue,
    limit,
    market_buy,
    market_sell,
    venue,
)

D = Decimal
SAT = 10**8  # BTC units per BTC
USD = 10**6  # USDT units per USDT
ALICE, BOB, CAROL = "alice", "bob", "carol"


def assert_closed(v: Venue, order_id: str) -> None:
    """The order holds nothing and the clearing has forgotten it."""
    assert v.clearing.ledger.reserved(order_id) == 0
    assert order_id not in v.clearing.ledger.reservations
    assert order_id not in v.clearing.terms


# -- holds and releases ----------------------------------------------------------------------


def test_resting_buy_holds_price_times_quantity_and_cancel_releases_it() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    opened = v.clearing.open(limit("b1", ALICE, BUY, "50000", "0.5"))
    assert isinstance(opened, OpenedOrder)
    assert (opened.asset, opened.held, opened.ticks, opened.lots) == (
        "USDT", 25_000 * USD, 5_000_000, 5_000)
    events = v.books[BTC_USDT].place_limit("b1", ALICE, BUY, D("50000"), D("0.5"))
    v.clearing.settle(BTC_USDT, events)
    assert v.held(ALICE, "USDT") == 25_000 * USD
    assert v.available(ALICE, "USDT") == 75_000 * USD
    assert v.clearing.ledger.reserved("b1") == 25_000 * USD
    v.clearing.ledger.check()

    events = v.cancel(BTC_USDT, "b1", ALICE)
    assert last(OrderUpdated, events).status is OrderStatus.CANCELLED
    assert v.held(ALICE, "USDT") == 0
    assert v.available(ALICE, "USDT") == 100_000 * USD
    assert_closed(v, "b1")
    v.clearing.ledger.check()


def test_resting_sell_holds_the_base_quantity() -> None:
    v = venue()
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "50000", "0.1234"))
    assert v.held(BOB, "BTC") == 12_340_000
    assert v.available(BOB, "BTC") == SAT - 12_340_000
    v.cancel(BTC_USDT, "s1", BOB)
    assert (v.available(BOB, "BTC"), v.held(BOB, "BTC")) == (SAT, 0)
    v.clearing.ledger.check()


def test_cancel_by_another_user_is_refused_and_changes_nothing() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.submit(limit("b1", ALICE, BUY, "50000", "0.5"))
    events = v.cancel(BTC_USDT, "b1", BOB)
    assert events == [OrderRejected("b1", BOB, RejectCode.ORDER_NOT_FOUND)]
    assert v.held(ALICE, "USDT") == 25_000 * USD
    assert v.clearing.ledger.reserved("b1") == 25_000 * USD
    v.clearing.ledger.check()


def test_price_improvement_is_released_at_once() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.5"))
    opened = v.clearing.open(limit("b1", ALICE, BUY, "50000", "0.5"))
    assert isinstance(opened, OpenedOrder)
    assert opened.held == 25_000 * USD
    events = v.books[BTC_USDT].place_limit("b1", ALICE, BUY, D("50000"), D("0.5"))
    movements, trades = v.clearing.settle(BTC_USDT, events)
    assert [(t.base, t.quote) for t in trades] == [(SAT // 2, 24_500 * USD)]
    assert Movement(ALICE, "USDT", 500 * USD, -500 * USD, "release", "b1") in movements
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (75_500 * USD, 0)
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (SAT // 2, 0)
    assert (v.available(BOB, "USDT"), v.held(BOB, "USDT")) == (24_500 * USD, 0)
    assert (v.available(BOB, "BTC"), v.held(BOB, "BTC")) == (SAT // 2, 0)
    assert_closed(v, "b1")
    assert_closed(v, "s1")
    v.clearing.ledger.check()


def test_partial_fill_keeps_exactly_limit_times_remaining() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.deposit(CAROL, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.3"))
    events = v.submit(limit("b1", ALICE, BUY, "50000", "0.5"))
    assert not isinstance(events, RejectCode)
    assert last(OrderUpdated, events).status is OrderStatus.PARTIALLY_FILLED
    assert v.clearing.ledger.reserved("b1") == 10_000 * USD  # 50000 × 0.2
    assert v.held(ALICE, "USDT") == 10_000 * USD
    assert v.available(ALICE, "USDT") == (100_000 - 14_700 - 10_000) * USD
    assert v.available(ALICE, "BTC") == 30_000_000
    v.clearing.ledger.check()

    # the rest is now a maker: a partial fill at its own price spends exactly its share
    v.submit(limit("s2", CAROL, SELL, "50000", "0.1"))
    assert v.clearing.ledger.reserved("b1") == 5_000 * USD
    assert v.held(ALICE, "USDT") == 5_000 * USD
    assert v.available(ALICE, "BTC") == 40_000_000
    v.clearing.ledger.check()

    v.cancel(BTC_USDT, "b1", ALICE)
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (80_300 * USD, 0)
    assert_closed(v, "b1")
    v.clearing.ledger.check()


def test_market_buy_spends_whole_lots_and_the_leftover_budget_is_released() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.3"))
    v.submit(limit("s2", BOB, SELL, "50000", "0.2"))
    opened = v.clearing.open(market_buy("m1", ALICE, "20001.234567"))
    assert isinstance(opened, OpenedOrder)
    assert (opened.asset, opened.held, opened.budget) == ("USDT", 20_001_234_567, 20_001_234_567)
    events = v.books[BTC_USDT].place_market("m1", ALICE, BUY, budget=D("20001.234567"))
    _, trades = v.clearing.settle(BTC_USDT, events)
    # 0.3 at 49000 (14700), then 1060 lots at 50000 (5300); 1.234567 cannot buy a lot
    assert [(t.base, t.quote) for t in trades] == [(30_000_000, 14_700 * USD),
                                                   (10_600_000, 5_300 * USD)]
    # the budget is used up to its last affordable lot: the engine calls that filled
    assert last(OrderUpdated, events).status is OrderStatus.FILLED
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (80_000 * USD, 0)
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (40_600_000, 0)
    assert v.clearing.ledger.reserved("s2") == 9_400_000
    assert v.held(BOB, "BTC") == 9_400_000
    assert v.available(BOB, "USDT") == 20_000 * USD
    assert_closed(v, "m1")
    v.clearing.ledger.check()


def test_market_buy_budget_beyond_the_book_releases_the_rest() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.1"))
    v.submit(market_buy("m1", ALICE, "90000"))
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (95_100 * USD, 0)
    assert v.available(ALICE, "BTC") == 10_000_000
    assert_closed(v, "m1")
    v.clearing.ledger.check()


def test_market_buy_spending_its_budget_exactly_is_filled() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "50000", "1"))
    events = v.submit(market_buy("m1", ALICE, "5000"))
    assert not isinstance(events, RejectCode)
    assert last(OrderUpdated, events).status is OrderStatus.FILLED
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (95_000 * USD, 0)
    assert v.available(ALICE, "BTC") == 10_000_000
    assert_closed(v, "m1")
    v.clearing.ledger.check()


def test_market_sell_with_no_bids_releases_everything() -> None:
    v = venue()
    v.deposit(BOB, "BTC", "1")
    events = v.submit(market_sell("m1", BOB, "0.5"))
    assert not isinstance(events, RejectCode)
    update = last(OrderUpdated, events)
    assert (update.status, update.reason) == (OrderStatus.CANCELLED, CancelReason.UNFILLED)
    assert (v.available(BOB, "BTC"), v.held(BOB, "BTC")) == (SAT, 0)
    assert_closed(v, "m1")
    v.clearing.ledger.check()


def test_market_sell_partly_filled_releases_the_unfilled_rest() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("b1", ALICE, BUY, "48000", "0.2"))
    v.submit(market_sell("m1", BOB, "0.5"))
    assert (v.available(BOB, "BTC"), v.held(BOB, "BTC")) == (80_000_000, 0)
    assert v.available(BOB, "USDT") == 9_600 * USD
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (90_400 * USD, 0)
    assert_closed(v, "m1")
    assert_closed(v, "b1")
    v.clearing.ledger.check()


@pytest.mark.parametrize(("tif", "filled"), [(TimeInForce.IOC, 10_000_000),
                                             (TimeInForce.FOK, 0)])
def test_ioc_and_fok_remainders_are_released(tif: TimeInForce, filled: int) -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.1"))
    v.submit(limit("b1", ALICE, BUY, "50000", "0.5", tif=tif))
    assert v.held(ALICE, "USDT") == 0
    assert v.available(ALICE, "BTC") == filled
    assert v.available(ALICE, "USDT") == 100_000 * USD - filled * 49_000 * USD // SAT
    assert_closed(v, "b1")
    v.clearing.ledger.check()


def test_post_only_that_would_take_is_abandoned_and_releases_its_hold() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49000", "0.1"))
    events = v.submit(limit("b1", ALICE, BUY, "50000", "0.5", post_only=True))
    assert events == [OrderRejected("b1", ALICE, RejectCode.POST_ONLY_WOULD_TAKE)]
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (100_000 * USD, 0)
    assert_closed(v, "b1")
    v.clearing.ledger.check()


# -- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [
    limit("b1", ALICE, BUY, "50000", "0.0201"),  # 1005 USDT > 1000
    market_buy("m1", ALICE, "1000.000001"),
    market_sell("m2", ALICE, "0.0001"),  # no BTC at all
    limit("s1", ALICE, SELL, "50000", "0.0001"),
], ids=["limit-buy", "market-buy", "market-sell", "limit-sell"])
def test_insufficient_funds_is_rejected_and_changes_nothing(order: NewOrder) -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "1000")
    assert v.clearing.open(order) is RejectCode.INSUFFICIENT_FUNDS
    assert v.submit(order) is RejectCode.INSUFFICIENT_FUNDS
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (1_000 * USD, 0)
    assert v.held(ALICE, "BTC") == 0
    assert_closed(v, order.order_id)
    assert len(v.books[BTC_USDT]) == 0
    v.clearing.ledger.check()


def test_buy_costing_exactly_the_balance_is_accepted() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "1000")
    v.submit(limit("b1", ALICE, BUY, "50000", "0.02"))
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (0, 1_000 * USD)
    v.clearing.ledger.check()


@pytest.mark.parametrize(("order", "code"), [
    (limit("o", ALICE, BUY, "50000.001", "0.1"), RejectCode.PRICE_OFF_TICK),
    (limit("o", ALICE, BUY, "50000", "0.00001"), RejectCode.QUANTITY_OFF_LOT),
    (limit("o", ALICE, SELL, "50000", "0.00001"), RejectCode.QUANTITY_OFF_LOT),
    (limit("o", ALICE, BUY, "0", "0.1"), RejectCode.PRICE_NOT_POSITIVE),
    (limit("o", ALICE, BUY, "-1", "0.1"), RejectCode.PRICE_NOT_POSITIVE),
    (limit("o", ALICE, BUY, "50000", "0"), RejectCode.QUANTITY_NOT_POSITIVE),
    (limit("o", ALICE, BUY, "NaN", "0.1"), RejectCode.INVALID_NUMBER),
    (limit("o", ALICE, BUY, "1E+16", "0.1"), RejectCode.AMOUNT_TOO_LARGE),
    (market_buy("o", ALICE, "10.0000001"), RejectCode.BUDGET_OFF_GRID),
    (market_sell("o", ALICE, "0.00001"), RejectCode.QUANTITY_OFF_LOT),
    (NewOrder("o", ALICE, BTC_USDT, BUY, OrderType.MARKET, quantity=D("0.1")),
     RejectCode.INVALID_NUMBER),  # market buys are sized by budget
    (NewOrder("o", ALICE, BTC_USDT, SELL, OrderType.MARKET, budget=D("10")),
     RejectCode.INVALID_NUMBER),
    (limit("o", ALICE, BUY, "50000", "0.1", symbol="DOGE/USDT"), RejectCode.PAIR_NOT_FOUND),
])
def test_off_grid_input_is_rejected_with_the_grids_code_and_holds_nothing(
        order: NewOrder, code: RejectCode) -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(ALICE, "BTC", "1")
    assert v.clearing.open(order) is code
    assert v.held(ALICE, "USDT") == 0
    assert v.held(ALICE, "BTC") == 0
    assert_closed(v, "o")
    v.clearing.ledger.check()


# -- fees ------------------------------------------------------------------------------------


def test_fees_taker_buys() -> None:
    """Maker 0.1 %, taker 0.2 %, each charged on what the party receives, rounded down."""
    v = venue(maker_fee="0.001", taker_fee="0.002")
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "49999.99", "0.1234"))
    v.submit(limit("b1", ALICE, BUY, "50000", "0.1234"))
    base, quote = 12_340_000, 4_999_999 * 1_234  # 0.1234 BTC; 6169.998766 USDT
    buyer_fee, seller_fee = base * 2 // 1000, quote // 1000
    assert (buyer_fee, seller_fee) == (24_680, 6_169_998)  # 6169.998766 rounded down
    [trade] = v.trades
    assert (trade.base, trade.quote, trade.buyer_fee, trade.seller_fee) == (
        base, quote, buyer_fee, seller_fee)
    assert (trade.buyer_id, trade.seller_id) == (ALICE, BOB)
    assert v.available(ALICE, "BTC") == base - buyer_fee
    assert v.available(ALICE, "USDT") == 100_000 * USD - quote
    assert v.available(BOB, "USDT") == quote - seller_fee
    assert v.available(BOB, "BTC") == SAT - base
    assert v.available(FEE_ACCOUNT, "BTC") == buyer_fee
    assert v.available(FEE_ACCOUNT, "USDT") == seller_fee
    assert v.held(FEE_ACCOUNT, "BTC") == v.held(FEE_ACCOUNT, "USDT") == 0
    assert v.totals() == {"BTC": SAT, "USDT": 100_000 * USD}
    for user in (ALICE, BOB):
        assert v.held(user, "BTC") == v.held(user, "USDT") == 0
    v.clearing.ledger.check()


def test_fees_taker_sells() -> None:
    v = venue(maker_fee="0.001", taker_fee="0.002")
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("b1", ALICE, BUY, "50000.01", "0.0777"))
    v.submit(limit("s1", BOB, SELL, "49000", "0.0777"))  # fills at the maker's 50000.01
    base, quote = 7_770_000, 5_000_001 * 777  # 3885.000777 USDT
    buyer_fee, seller_fee = base // 1000, quote * 2 // 1000  # maker buys, taker sells
    assert seller_fee == 7_770_001  # 7.770001554 rounded down
    assert v.available(ALICE, "BTC") == base - buyer_fee
    assert v.available(BOB, "USDT") == quote - seller_fee
    assert v.available(FEE_ACCOUNT, "BTC") == buyer_fee
    assert v.available(FEE_ACCOUNT, "USDT") == seller_fee
    assert v.totals() == {"BTC": SAT, "USDT": 100_000 * USD}
    assert v.held(ALICE, "USDT") == v.held(BOB, "BTC") == 0
    v.clearing.ledger.check()


def test_fees_of_several_fills_add_up_per_trade() -> None:
    v = venue(maker_fee="0.001", taker_fee="0.002")
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(BOB, "BTC", "1")
    v.deposit(CAROL, "BTC", "1")
    v.submit(limit("s1", BOB, SELL, "30000.03", "0.0003"))
    v.submit(limit("s2", CAROL, SELL, "30000.07", "0.0005"))
    v.submit(market_buy("m1", ALICE, "1000"))
    q1, q2 = 3_000_003 * 3, 3_000_007 * 5
    assert [t.quote for t in v.trades] == [q1, q2]
    assert v.available(BOB, "USDT") == q1 - q1 // 1000
    assert v.available(CAROL, "USDT") == q2 - q2 // 1000
    assert v.available(FEE_ACCOUNT, "USDT") == q1 // 1000 + q2 // 1000
    assert v.available(FEE_ACCOUNT, "BTC") == 30_000 * 2 // 1000 + 50_000 * 2 // 1000
    assert v.available(ALICE, "USDT") == 100_000 * USD - q1 - q2
    assert v.totals() == {"BTC": 2 * SAT, "USDT": 100_000 * USD}
    v.clearing.ledger.check()


def test_fee_on_a_large_trade_quoted_in_an_18_decimal_asset_is_the_exact_floor() -> None:
    """Regression: in a 28-digit context this seller fee came out 50 units too high."""
    v = Venue()
    v.clearing.add_asset("BTC", 8)
    v.clearing.add_asset("ETH", 18)
    v.add_pair(PairTerms(PairSpec.derive("BTC/ETH", 8, 18), "BTC", "ETH",
                         maker_fee=D("0.001"), taker_fee=D("0.001")))
    price, quantity = "123456789.123451", "1234567.89012345"  # ≈ 1.5e14 ETH: under 10^15
    quote = 123_456_789_123_451 * 123_456_789_012_345 * 10**4
    v.deposit(ALICE, "ETH", str(v.clearing.amount("ETH", quote)))
    v.deposit(BOB, "BTC", quantity)
    v.submit(limit("s1", BOB, SELL, price, quantity, symbol="BTC/ETH"))
    v.submit(limit("b1", ALICE, BUY, price, quantity, symbol="BTC/ETH"))
    [trade] = v.trades
    assert trade.quote == quote
    v.clearing.ledger.check()  # conservation holds either way
    assert trade.seller_fee == quote // 1000
    assert v.available(BOB, "ETH") == quote - quote // 1000


# -- self-trade prevention -------------------------------------------------------------------


def test_stp_expire_maker_releases_the_expired_makers_reservation() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(ALICE, "BTC", "1")
    v.deposit(BOB, "BTC", "1")
    v.submit(limit("s-own", ALICE, SELL, "50000", "0.1"))
    v.submit(limit("s-bob", BOB, SELL, "50001", "0.1"))
    assert v.held(ALICE, "BTC") == 10_000_000
    events = v.submit(limit("b1", ALICE, BUY, "50001", "0.1", stp=StpMode.EXPIRE_MAKER))
    assert not isinstance(events, RejectCode)
    expired = [e for e in of(OrderUpdated, events) if e.order_id == "s-own"]
    assert [(e.status, e.reason) for e in expired] == [
        (OrderStatus.CANCELLED, CancelReason.SELF_TRADE)]
    assert_closed(v, "s-own")
    assert_closed(v, "b1")
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (SAT + 10_000_000, 0)
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (
        100_000 * USD - 5_000_100_000, 0)
    v.clearing.ledger.check()


def test_stp_expire_both_releases_maker_and_taker() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(ALICE, "BTC", "1")
    v.submit(limit("s-own", ALICE, SELL, "50000", "0.1"))
    v.submit(limit("b1", ALICE, BUY, "50001", "0.1", stp=StpMode.EXPIRE_BOTH))
    assert_closed(v, "s-own")
    assert_closed(v, "b1")
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (SAT, 0)
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (100_000 * USD, 0)
    assert len(v.books[BTC_USDT]) == 0
    v.clearing.ledger.check()


def test_stp_expire_taker_keeps_the_maker_and_releases_the_taker() -> None:
    v = venue()
    v.deposit(ALICE, "USDT", "100000")
    v.deposit(ALICE, "BTC", "1")
    v.submit(limit("s-own", ALICE, SELL, "50000", "0.1"))
    v.submit(market_buy("m1", ALICE, "10000"))
    assert_closed(v, "m1")
    assert v.clearing.ledger.reserved("s-own") == 10_000_000
    assert (v.available(ALICE, "USDT"), v.held(ALICE, "USDT")) == (100_000 * USD, 0)
    v.clearing.ledger.check()


# -- withdrawals -----------------------------------------------------------------------------


def test_withdrawal_request_holds_and_completion_removes_it_from_the_totals() -> None:
    v = venue()
    v.deposit(ALICE, "BTC", "1")
    assert v.clearing.request_withdrawal("w1", ALICE, "BTC", D("0.4")) == [
        Movement(ALICE, "BTC", -40_000_000, 40_000_000, "hold", "w1")]
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (60_000_000, 40_000_000)
    v.clearing.ledger.check()
    v.clearing.complete_withdrawal("w1")
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (60_000_000, 0)
    assert v.clearing.ledger.external["BTC"] == 60_000_000
    assert v.totals() == {"BTC": 60_000_000}
    assert v.clearing.ledger.reserved("w1") == 0
    v.clearing.ledger.check()


def test_cancelled_withdrawal_releases_the_hold() -> None:
    v = venue()
    v.deposit(ALICE, "BTC", "1")
    v.clearing.request_withdrawal("w1", ALICE, "BTC", D("0.00000001"))
    assert v.held(ALICE, "BTC") == 1
    v.clearing.cancel_withdrawal("w1")
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (SAT, 0)
    assert v.clearing.ledger.external["BTC"] == SAT
    v.clearing.ledger.check()


def test_held_funds_cannot_be_withdrawn() -> None:
    v = venue()
    v.deposit(ALICE, "BTC", "1")
    v.submit(limit("s1", ALICE, SELL, "50000", "0.7"))
    assert v.clearing.request_withdrawal("w1", ALICE, "BTC", D("0.30000001")) is (
        RejectCode.INSUFFICIENT_FUNDS)
    assert v.held(ALICE, "BTC") == 70_000_000
    v.clearing.request_withdrawal("w1", ALICE, "BTC", D("0.3"))
    assert (v.available(ALICE, "BTC"), v.held(ALICE, "BTC")) == (0, SAT)
    v.clearing.ledger.check()


@pytest.mark.parametrize(("amount", "code"), [
    ("0.000000001", RejectCode.AMOUNT_OFF_GRID),
    ("0", RejectCode.AMOUNT_NOT_POSITIVE),
    ("-1", RejectCode.AMOUNT_NOT_POSITIVE),
    ("NaN", RejectCode.INVALID_NUMBER),
])
def test_withdrawal_amount_is_validated(amount: str, code: RejectCode) -> None:
    v = venue()
    v.deposit(ALICE, "BTC", "1")
    assert v.clearing.request_withdrawal("w1", ALICE, "BTC", D(amount)) is code
    assert v.held(ALICE, "BTC") == 0
    v.clearing.ledger.check()


# -- deposits --------------------------------------------------------------------------------


@pytest.mark.parametrize(("asset", "amount", "code"), [
    ("BTC", "0.000000001", RejectCode.AMOUNT_OFF_GRID),
    ("USDT", "1.0000001", RejectCode.AMOUNT_OFF_GRID),
    ("ETH", "1E-19", RejectCode.AMOUNT_OFF_GRID),
    ("BTC", "0", RejectCode.AMOUNT_NOT_POSITIVE),
    ("BTC", "-0", RejectCode.AMOUNT_NOT_POSITIVE),
    ("BTC", "-1", RejectCode.AMOUNT_NOT_POSITIVE),
    ("BTC", "-0.000000001", RejectCode.AMOUNT_NOT_POSITIVE),
    ("BTC", "NaN", RejectCode.INVALID_NUMBER),
    ("BTC", "sNaN", RejectCode.INVALID_NUMBER),
    ("BTC", "Infinity", RejectCode.INVALID_NUMBER),
    ("BTC", "-Infinity", RejectCode.INVALID_NUMBER),
    ("DOGE", "1", RejectCode.ASSET_NOT_FOUND),
    ("USDT", "1000000000000000.000001", RejectCode.AMOUNT_TOO_LARGE),
])
def test_deposit_validation(asset: str, amount: str, code: RejectCode) -> None:
    v = venue()
    assert v.clearing.deposit(ALICE, asset, D(amount), "d1") is code
    assert not v.clearing.ledger.balances
    assert v.totals() == {}
    v.clearing.ledger.check()


@pytest.mark.parametrize(("asset", "amount", "units"), [
    ("BTC", "0.00000001", 1),
    ("BTC", "1.5E-7", 15),
    ("USDT", "1000000000000000", 10**21),  # the largest allowed
    ("USDT", "12.340000000", 12_340_000),  # trailing zeros are on the grid
    ("ETH", "123456789012345.123456789012345678", 123_456_789_012_345_123_456_789_012_345_678),
    ("ETH", "0.000000000000000001", 1),
])
def test_deposit_is_exact(asset: str, amount: str, units: int) -> None:
    v = venue()
    moves = v.clearing.deposit(ALICE, asset, D(amount), "d1")
    assert moves == [Movement(ALICE, asset, units, 0, "deposit", "d1")]
    assert v.available(ALICE, asset) == units
    assert v.clearing.amount(asset, units) == D(amount)
    assert str(v.clearing.amount("ETH", 123_456_789_012_345_123_456_789_012_345_678)) == (
        "123456789012345.123456789012345678")
    assert v.clearing.ledger.external[asset] == units
    v.clearing.ledger.check()
