"""Unit tests of OrderBook: the original's engine behaviours (reference §3) and ours."""

from __future__ import annotations

import dataclasses
import itertools
import os

import pytest

from excentra.engine import (
    COMPILED,
    BookIntegrityError,
    BookLevel,
    CancelReason,
    LevelChanged,
    OrderAccepted,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    RejectCode,
    RestingOrder,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)
from tests.builders import D, book, of, one

BUY, SELL = Side.BUY, Side.SELL


def test_limit_without_match_rests_open() -> None:
    b = book()
    events = b.place_limit("b1", "alice", BUY, D("50000"), D("0.5"))
    assert events == [
        OrderAccepted("b1", "alice", BUY, OrderType.LIMIT, 5_000_000, 5000, None,
                      TimeInForce.GTC, False),
        LevelChanged(1, BUY, 5_000_000, 5000, 1),
        OrderUpdated("b1", "alice", BUY, OrderStatus.OPEN, 0, 5000, 0, None),
    ]
    assert b.best_bid() == 5_000_000
    assert b.best_ask() is None
    assert b.order("b1") == RestingOrder("b1", "alice", BUY, 5_000_000, 5000, 5000)


def test_best_bid_and_ask_track_the_extremes() -> None:
    b = book()
    for i, px in enumerate(["100", "101", "99"]):
        b.place_limit(f"b{i}", "u", BUY, D(px), D("1"))
    for i, px in enumerate(["105", "103", "104"]):
        b.place_limit(f"s{i}", "v", SELL, D(px), D("1"))
    assert (b.best_bid(), b.best_ask()) == (10100, 10300)
    b.cancel("b1")
    b.cancel("s1")
    assert (b.best_bid(), b.best_ask()) == (10000, 10400)
    b.validate()


def test_fifo_within_a_level() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "b", SELL, D("100"), D("1"))
    b.place_limit("s3", "c", SELL, D("100"), D("1"))
    trades = of(TradeExecuted, b.place_limit("t", "d", BUY, D("100"), D("2.5")))
    assert [(t.maker_order_id, t.quantity) for t in trades] == [
        ("s1", 10000), ("s2", 10000), ("s3", 5000)]
    assert b.order("s3") == RestingOrder("s3", "c", SELL, 10000, 10000, 5000)


def test_taker_partially_fills_a_maker_which_keeps_its_place() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("2"))
    b.place_limit("s2", "b", SELL, D("100"), D("1"))
    events = b.place_limit("t", "c", BUY, D("100"), D("0.5"))
    assert one(TradeExecuted, events).quantity == 5000
    maker = [u for u in of(OrderUpdated, events) if u.order_id == "s1"]
    assert maker == [OrderUpdated("s1", "a", SELL, OrderStatus.PARTIALLY_FILLED, 5000, 15000,
                                  0, None)]
    assert of(OrderUpdated, events)[-1].status is OrderStatus.FILLED
    # s1 is still first in the queue
    nxt = of(TradeExecuted, b.place_limit("t2", "c", BUY, D("100"), D("0.1")))
    assert nxt[0].maker_order_id == "s1"


def test_taker_partially_filled_rests_the_remainder() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    events = b.place_limit("t", "c", BUY, D("100"), D("3"))
    assert one(TradeExecuted, events).quantity == 10000
    assert of(OrderUpdated, events)[-1] == OrderUpdated(
        "t", "c", BUY, OrderStatus.PARTIALLY_FILLED, 10000, 20000, 0, None)
    assert b.order("t") == RestingOrder("t", "c", BUY, 10000, 30000, 20000)
    assert (b.best_bid(), b.best_ask()) == (10000, None)


def test_trade_price_is_the_makers_and_taker_side_recorded() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "a", SELL, D("101"), D("1"))
    trades = of(TradeExecuted, b.place_limit("t", "c", BUY, D("105"), D("2")))
    assert [(t.price, t.quantity, t.quote, t.taker_side) for t in trades] == [
        (10000, 10000, 100_000000, BUY), (10100, 10000, 101_000000, BUY)]
    assert trades[0].maker_user_id == "a"
    assert trades[0].taker_user_id == "c"


def test_sell_walks_bids_from_the_highest() -> None:
    b = book()
    b.place_limit("b1", "a", BUY, D("99"), D("1"))
    b.place_limit("b2", "a", BUY, D("101"), D("1"))
    b.place_limit("b3", "a", BUY, D("100"), D("1"))
    trades = of(TradeExecuted, b.place_limit("t", "c", SELL, D("100"), D("5")))
    assert [t.maker_order_id for t in trades] == ["b2", "b3"]
    assert b.order("t") == RestingOrder("t", "c", SELL, 10000, 50000, 30000)
    assert (b.best_bid(), b.best_ask()) == (9900, 10000)


def test_market_sell_by_quantity_cancels_the_unfilled_rest() -> None:
    b = book()
    b.place_limit("b1", "a", BUY, D("100"), D("1"))
    events = b.place_market("m", "c", SELL, quantity=D("1.5"))
    assert one(TradeExecuted, events).quantity == 10000
    assert of(OrderUpdated, events)[-1] == OrderUpdated(
        "m", "c", SELL, OrderStatus.CANCELLED, 10000, 0, 5000, CancelReason.UNFILLED)
    assert len(b) == 0


def test_market_buy_by_quantity_fills_across_levels() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "a", SELL, D("200"), D("1"))
    events = b.place_market("m", "c", BUY, quantity=D("1.5"))
    assert [t.quantity for t in of(TradeExecuted, events)] == [10000, 5000]
    assert of(OrderUpdated, events)[-1].status is OrderStatus.FILLED


def test_market_buy_by_budget_buys_whole_lots_and_reports_unspent() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))  # costs 100
    b.place_limit("s2", "a", SELL, D("300"), D("1"))
    events = b.place_market("m", "c", BUY, budget=D("250"))
    trades = of(TradeExecuted, events)
    # 100 buys s1 whole; 150 left buys 0.5 BTC at 300 exactly
    assert [(t.price, t.quantity, t.quote) for t in trades] == [
        (10000, 10000, 100_000000), (30000, 5000, 150_000000)]
    assert of(OrderUpdated, events)[-1] == OrderUpdated(
        "m", "c", BUY, OrderStatus.FILLED, 15000, 0, 0, None)
    accepted = one(OrderAccepted, events)
    assert accepted.budget == 250_000000
    assert accepted.quantity == 0


def test_market_buy_budget_leftover_below_one_lot_counts_as_filled() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("300"), D("1"))
    events = b.place_market("m", "c", BUY, budget=D("100.02"))  # 0.3334 BTC = 100.02
    assert one(TradeExecuted, events).quote == 100_020000
    events = b.place_market("m2", "c", BUY, budget=D("100.01"))  # 0.3333 BTC = 99.99
    trade = one(TradeExecuted, events)
    assert (trade.quantity, trade.quote) == (3333, 99_990000)
    assert of(OrderUpdated, events)[-1].status is OrderStatus.FILLED


def test_market_buy_budget_exhausting_the_book_is_cancelled() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    events = b.place_market("m", "c", BUY, budget=D("500"))
    assert one(TradeExecuted, events).quote == 100_000000
    assert of(OrderUpdated, events)[-1].reason is CancelReason.UNFILLED


def test_market_order_on_an_empty_book_is_cancelled_without_changing_it() -> None:
    b = book()
    events = b.place_market("m", "c", SELL, quantity=D("1"))
    assert events[-1] == OrderUpdated("m", "c", SELL, OrderStatus.CANCELLED, 0, 0, 10000,
                                      CancelReason.UNFILLED)
    assert b.seq == 0


def test_budget_too_small_for_one_lot_is_cancelled_unfilled() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("50000"), D("1"))  # one lot costs 5 USDT
    events = b.place_market("m", "c", BUY, budget=D("4.99"))
    assert not of(TradeExecuted, events)
    assert events[-1].status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_market_order_sizing_must_be_exactly_one_of_quantity_or_budget() -> None:
    b = book()
    for kwargs in ({}, {"quantity": D(1), "budget": D(1)}):
        assert b.place_market("m", "c", BUY, **kwargs)[0].code is RejectCode.INVALID_NUMBER  # type: ignore[union-attr]
    sell_budget = b.place_market("m", "c", SELL, budget=D(1))
    assert sell_budget == [OrderRejected("m", "c", RejectCode.INVALID_NUMBER)]


def test_cancel_removes_the_order_and_reports_the_level() -> None:
    b = book()
    b.place_limit("b1", "a", BUY, D("100"), D("1"))
    b.place_limit("b2", "a", BUY, D("100"), D("2"))
    events = b.cancel("b1")
    assert events == [
        OrderUpdated("b1", "a", BUY, OrderStatus.CANCELLED, 0, 0, 10000, CancelReason.USER),
        LevelChanged(3, BUY, 10000, 20000, 1),
    ]
    assert "b1" not in b
    assert b.cancel("b1") == [OrderRejected("b1", None, RejectCode.ORDER_NOT_FOUND)]
    b.validate()


def test_cancel_of_a_partially_filled_order_reports_filled_and_cancelled() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("t", "c", BUY, D("100"), D("0.4"))
    events = b.cancel("s1")
    assert events[0] == OrderUpdated("s1", "a", SELL, OrderStatus.CANCELLED, 4000, 0, 6000,
                                     CancelReason.USER)
    assert events[1] == LevelChanged(b.seq, SELL, 10000, 0, 0)


def test_cancel_by_another_user_is_not_found() -> None:
    b = book()
    b.place_limit("b1", "alice", BUY, D("100"), D("1"))
    assert b.cancel("b1", "mallory") == [
        OrderRejected("b1", "mallory", RejectCode.ORDER_NOT_FOUND)]
    assert "b1" in b
    assert b.cancel("b1", "alice")[0].status is OrderStatus.CANCELLED  # type: ignore[union-attr]


# -- self-trade prevention ------------------------------------------------------------------


def _stp_book() -> object:
    b = book()
    b.place_limit("s1", "other", SELL, D("100"), D("1"))
    b.place_limit("s2", "me", SELL, D("101"), D("1"))
    b.place_limit("s3", "other", SELL, D("102"), D("1"))
    return b


def test_stp_expire_taker_stops_at_own_order_and_cancels_the_rest() -> None:
    b = _stp_book()
    events = b.place_limit("t", "me", BUY, D("105"), D("3"))  # type: ignore[attr-defined]
    assert [t.maker_order_id for t in of(TradeExecuted, events)] == ["s1"]
    assert events[-1] == OrderUpdated("t", "me", BUY, OrderStatus.CANCELLED, 10000, 0, 20000,
                                      CancelReason.SELF_TRADE)
    assert "s2" in b  # type: ignore[operator]
    assert "t" not in b  # type: ignore[operator]
    b.validate()  # type: ignore[attr-defined]


def test_stp_expire_taker_market_order_stops_at_own_order() -> None:
    b = _stp_book()
    events = b.place_market("m", "me", BUY, quantity=D("3"))  # type: ignore[attr-defined]
    assert [t.maker_order_id for t in of(TradeExecuted, events)] == ["s1"]
    assert events[-1].reason is CancelReason.SELF_TRADE


def test_stp_expire_maker_cancels_own_resting_order_and_continues() -> None:
    b = _stp_book()
    events = b.place_limit("t", "me", BUY, D("105"), D("3"),  # type: ignore[attr-defined]
                           stp=StpMode.EXPIRE_MAKER)
    assert [t.maker_order_id for t in of(TradeExecuted, events)] == ["s1", "s3"]
    expired = [u for u in of(OrderUpdated, events) if u.order_id == "s2"]
    assert expired == [OrderUpdated("s2", "me", SELL, OrderStatus.CANCELLED, 0, 0, 10000,
                                    CancelReason.SELF_TRADE)]
    assert events[-1].status is OrderStatus.PARTIALLY_FILLED
    assert b.order("t").remaining == 10000  # type: ignore[attr-defined]
    b.validate()  # type: ignore[attr-defined]


def test_stp_expire_both_cancels_maker_and_taker_remainder() -> None:
    b = _stp_book()
    events = b.place_limit("t", "me", BUY, D("105"), D("3"),  # type: ignore[attr-defined]
                           stp=StpMode.EXPIRE_BOTH)
    assert [t.maker_order_id for t in of(TradeExecuted, events)] == ["s1"]
    assert "s2" not in b  # type: ignore[operator]
    assert "s3" in b  # type: ignore[operator]
    assert events[-1].reason is CancelReason.SELF_TRADE
    levels = of(LevelChanged, events)
    assert [(lc.price, lc.quantity) for lc in levels] == [(10000, 0), (10100, 0)]


def test_stp_at_the_first_order_of_a_level_reports_no_change_for_it() -> None:
    b = book()
    b.place_limit("s1", "me", SELL, D("100"), D("1"))
    seq = b.seq
    events = b.place_market("m", "me", BUY, quantity=D("1"))
    assert not of(LevelChanged, events)
    assert b.seq == seq


def test_would_self_cross_is_the_originals_precheck() -> None:
    b = book()
    b.place_limit("s1", "me", SELL, D("100"), D("1"))
    b.place_limit("b1", "me", BUY, D("90"), D("1"))
    assert b.would_self_cross("me", BUY, 10000)
    assert not b.would_self_cross("me", BUY, 9999)
    assert b.would_self_cross("me", SELL, 9000)
    assert not b.would_self_cross("me", SELL, 9001)
    assert not b.would_self_cross("you", BUY, 10**9)
    assert [o.order_id for o in b.orders_of("me")] == ["s1", "b1"]


# -- time in force and post-only --------------------------------------------------------


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    events = b.place_limit("t", "c", BUY, D("100"), D("2"), TimeInForce.IOC)
    assert one(TradeExecuted, events).quantity == 10000
    assert events[-1] == OrderUpdated("t", "c", BUY, OrderStatus.CANCELLED, 10000, 0, 10000,
                                      CancelReason.UNFILLED)
    assert len(b) == 0


def test_ioc_that_does_not_cross_never_rests() -> None:
    b = book()
    events = b.place_limit("t", "c", BUY, D("100"), D("2"), TimeInForce.IOC)
    assert events[-1].status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert len(b) == 0
    assert b.seq == 0


def test_fok_fills_entirely_or_not_at_all() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "a", SELL, D("101"), D("1"))
    killed = b.place_limit("k", "c", BUY, D("101"), D("2.5"), TimeInForce.FOK)
    assert not of(TradeExecuted, killed)
    assert killed[-1].reason is CancelReason.FOK_UNFILLABLE  # type: ignore[union-attr]
    assert len(b) == 2
    filled = b.place_limit("f", "c", BUY, D("101"), D("2"), TimeInForce.FOK)
    assert len(of(TradeExecuted, filled)) == 2
    assert filled[-1].status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_fok_counts_liquidity_up_to_the_takers_own_order_only() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "me", SELL, D("100"), D("1"))
    b.place_limit("s3", "a", SELL, D("100"), D("1"))
    killed = b.place_limit("k", "me", BUY, D("100"), D("2"), TimeInForce.FOK)
    assert killed[-1].reason is CancelReason.FOK_UNFILLABLE  # type: ignore[union-attr]
    assert len(b) == 3  # nothing expired either: FOK is all or nothing
    ok = b.place_limit("k2", "me", BUY, D("100"), D("2"), TimeInForce.FOK,
                       stp=StpMode.EXPIRE_MAKER)
    assert ok[-1].status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert len(b) == 0


def test_post_only_is_rejected_if_it_would_take() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    assert b.place_limit("p", "c", BUY, D("100"), D("1"), post_only=True) == [
        OrderRejected("p", "c", RejectCode.POST_ONLY_WOULD_TAKE)]
    rested = b.place_limit("p", "c", BUY, D("99.99"), D("1"), post_only=True)
    assert rested[0].post_only  # type: ignore[union-attr]
    assert rested[-1].status is OrderStatus.OPEN  # type: ignore[union-attr]


# -- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "quantity", "code"),
    [
        (D("100.001"), D("1"), RejectCode.PRICE_OFF_TICK),
        (D("0"), D("1"), RejectCode.PRICE_NOT_POSITIVE),
        (D("-5"), D("1"), RejectCode.PRICE_NOT_POSITIVE),
        (D("NaN"), D("1"), RejectCode.INVALID_NUMBER),
        (D("Infinity"), D("1"), RejectCode.INVALID_NUMBER),
        (D("1e16"), D("1"), RejectCode.AMOUNT_TOO_LARGE),
        (D("100"), D("0.00001"), RejectCode.QUANTITY_OFF_LOT),
        (D("100"), D("0"), RejectCode.QUANTITY_NOT_POSITIVE),
        (D("100"), D("-0.0001"), RejectCode.QUANTITY_NOT_POSITIVE),
        (D("100"), D("sNaN"), RejectCode.INVALID_NUMBER),
        (D("100"), D("1000000000000000.0001"), RejectCode.AMOUNT_TOO_LARGE),
    ],
)
def test_off_grid_or_out_of_range_input_is_rejected(price: D, quantity: D,
                                                    code: RejectCode) -> None:
    b = book()
    assert b.place_limit("x", "u", BUY, price, quantity) == [OrderRejected("x", "u", code)]
    assert len(b) == 0


def test_market_budget_off_the_quote_grid_is_rejected() -> None:
    b = book()
    got = b.place_market("m", "u", BUY, budget=D("1.0000001"))
    assert got == [OrderRejected("m", "u", RejectCode.BUDGET_OFF_GRID)]


def test_duplicate_resting_order_id_is_rejected() -> None:
    b = book()
    b.place_limit("x", "u", BUY, D("1"), D("1"))
    assert b.place_limit("x", "u", BUY, D("2"), D("1")) == [
        OrderRejected("x", "u", RejectCode.DUPLICATE_ORDER_ID)]
    assert b.place_market("x", "u", SELL, quantity=D("1"))[0].code is (  # type: ignore[union-attr]
        RejectCode.DUPLICATE_ORDER_ID)


# -- snapshot, seq, integrity -----------------------------------------------------------------


def test_snapshot_aggregates_top_levels_best_first() -> None:
    b = book()
    for i, (px, qty) in enumerate([("100", "1"), ("100", "2"), ("99", "1"), ("98", "1")]):
        b.place_limit(f"b{i}", "u", BUY, D(px), D(qty))
    b.place_limit("s", "v", SELL, D("101"), D("1"))
    snap = b.snapshot(depth=2)
    assert snap.bids == (BookLevel(10000, 30000, 2), BookLevel(9900, 10000, 1))
    assert snap.asks == (BookLevel(10100, 10000, 1),)
    assert snap.seq == b.seq == 5
    assert b.snapshot(depth=0).bids == ()


def test_seq_grows_by_one_per_book_change_only() -> None:
    b = book()
    b.place_limit("s1", "a", SELL, D("100"), D("1"))
    b.place_limit("s2", "a", SELL, D("101"), D("1"))
    assert b.seq == 2
    events = b.place_limit("t", "c", BUY, D("101"), D("1.5"))  # touches two levels: one step
    assert {lc.seq for lc in of(LevelChanged, events)} == {3}
    assert b.seq == 3
    b.place_limit("bad", "c", BUY, D("-1"), D("1"))
    b.cancel("nope")
    b.place_market("m", "c", SELL, quantity=D("1"))  # no bids: nothing changes
    assert b.seq == 3


def test_events_are_immutable() -> None:
    if not COMPILED:
        pytest.skip("interpreted engine (EXCENTRA_PURE=1): mypy's Final check guards events; "
                    "CI runs compiled (test_ci_runs_the_compiled_engine)")
    event = book().place_limit("b", "u", BUY, D("1"), D("1"))[0]
    with pytest.raises(AttributeError):
        event.price = 5  # type: ignore[misc]


def test_ci_runs_the_compiled_engine() -> None:
    if not os.environ.get("CI"):
        pytest.skip("outside CI the engine may be installed interpreted (EXCENTRA_PURE=1)")
    assert COMPILED


def test_pair_spec_is_immutable() -> None:
    spec = book().spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.price_step = D(1)  # type: ignore[misc]


def test_validate_detects_a_corrupted_book() -> None:
    b = book()
    b.place_limit("b1", "u", BUY, D("100"), D("1"))
    b.validate()
    b._bids[10000].total += 1  # simulate a bug
    with pytest.raises(BookIntegrityError):
        b.validate()


def test_state_hash_reflects_priority_and_content() -> None:
    def build(order: list[str]) -> str:
        b = book()
        for oid in order:
            b.place_limit(oid, "u", BUY, D("100"), D("1"))
        return b.state_hash()

    assert build(["a", "b"]) == build(["a", "b"])
    assert build(["a", "b"]) != build(["b", "a"])


def test_restore_rebuilds_priority_without_matching() -> None:
    b = book()
    b.restore(RestingOrder("s1", "a", SELL, 10000, 20000, 5000))
    b.restore(RestingOrder("s2", "b", SELL, 10000, 10000, 10000))
    assert b.snapshot().asks == (BookLevel(10000, 15000, 2),)
    with pytest.raises(BookIntegrityError):
        b.restore(RestingOrder("b1", "c", BUY, 10000, 1, 1))  # would cross
    with pytest.raises(BookIntegrityError):
        b.restore(RestingOrder("s1", "a", SELL, 10100, 1, 1))  # duplicate
    trades = of(TradeExecuted, b.place_limit("t", "c", BUY, D("100"), D("1")))
    assert [t.maker_order_id for t in trades] == ["s1", "s2"]


def test_events_compare_hash_and_print_by_their_fields() -> None:
    a = OrderRejected("o", "u", RejectCode.ORDER_NOT_FOUND)
    same = OrderRejected(order_id="o", user_id="u", code=RejectCode.ORDER_NOT_FOUND)
    assert a == same
    assert hash(a) == hash(same)
    assert a != OrderRejected("o", "v", RejectCode.ORDER_NOT_FOUND)
    assert a != ("o", "u", RejectCode.ORDER_NOT_FOUND)  # not a tuple: no accidental equality
    assert repr(a) == ("OrderRejected(order_id='o', user_id='u', "
                       "code=<RejectCode.ORDER_NOT_FOUND: 'order_not_found'>)")
    assert a.values() == ("o", "u", RejectCode.ORDER_NOT_FOUND)
    match LevelChanged(7, SELL, 101, 5, 2):
        case LevelChanged(seq, side, price=p, orders=n):
            assert (seq, side, p, n) == (7, SELL, 101, 2)
        case _:
            pytest.fail("positional and keyword patterns follow the fields")


def test_a_busy_level_keeps_fifo_and_drops_its_passed_over_front() -> None:
    """Matching passes over filled and cancelled orders; the queue sheds them in bulk."""
    b = book()
    for i in range(200):
        b.place_limit(f"a{i}", f"m{i}", SELL, D("100"), D("1"))
        if i % 3 == 0:
            b.cancel(f"a{i}")
    sizes = []
    for i in range(1, 199):
        if i % 3 == 0:
            continue
        trade = one(TradeExecuted, b.place_market(f"t{i}", "taker", BUY, quantity=D("1")))
        assert trade.maker_order_id == f"a{i}"  # FIFO: the oldest live order each time
        b.validate()
        sizes.append(len(b._asks[10000].orders))  # the level lives throughout
    assert len(b) == 1
    assert b.order("a199") is not None
    shrinks = sum(after < before for before, after in itertools.pairwise(sizes))
    assert shrinks >= 2  # the passed-over front was dropped, more than once
    assert sizes[-1] <= 2 * 32  # and what is left is bounded by the compaction rule
