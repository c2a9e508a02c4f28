"""Differential test: OrderBook against the naive list-scanning book, event for event."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import example, given, settings

from excentra.engine import (
    BookLevel,
    OrderBook,
    OrderStatus,
    OrderUpdated,
    Side,
    StpMode,
    TimeInForce,
)
from tests.builders import btc_usdt
from tests.engine.commands import USERS, Command, Limit, Market, apply, command_lists
from tests.engine.naive_book import NaiveBook


def _budget_left_below_a_lot_before_an_own_order(stp: StpMode) -> list[Command]:
    """A budget buy partly fills another user's ask, leaving less than one lot's cost, with
    its own ask next in the queue: it is used up there (filled); STP is never reached."""
    def ask(oid: int, user: str, quantity: str) -> Limit:
        return Limit(oid, user, Side.SELL, Decimal("100.00"), Decimal(quantity),
                     TimeInForce.GTC, False, StpMode.EXPIRE_TAKER)

    # One lot at 100.00 costs 0.01 USDT: the budget 0.015 buys one lot, 0.005 is unspent.
    return [ask(1, "u1", "0.0002"), ask(2, "u0", "0.0001"),
            Market(3, "u0", Side.BUY, None, Decimal("0.015"), stp)]


def _budget_used_up_by_a_whole_maker_before_an_own_order(stp: StpMode) -> list[Command]:
    """The same, but the other user's ask is filled whole: the budget left is below one
    lot at the level, so the order is used up there too, whoever rests next."""
    def ask(oid: int, user: str, quantity: str) -> Limit:
        return Limit(oid, user, Side.SELL, Decimal("100.00"), Decimal(quantity),
                     TimeInForce.GTC, False, StpMode.EXPIRE_TAKER)

    return [ask(1, "u1", "0.0001"), ask(2, "u0", "0.0001"),
            Market(3, "u0", Side.BUY, None, Decimal("0.015"), stp)]


@pytest.mark.parametrize(("scenario", "own_ask_left"), [
    (_budget_left_below_a_lot_before_an_own_order, BookLevel(10_000, 2, 2)),
    (_budget_used_up_by_a_whole_maker_before_an_own_order, BookLevel(10_000, 1, 1)),
])
def test_a_used_up_budget_is_filled_before_self_trade_prevention(
        scenario: Callable[[StpMode], list[Command]], own_ask_left: BookLevel) -> None:
    """Issue 10. A budget buy left with less than one lot's cost is used up (FILLED)
    whoever rests next: its own ask behind is untouched, in every STP mode. The naive
    book used to skip past a partly filled maker to the own order and apply STP; the
    engine checked the budget once per level, so after filling a maker whole it reached
    the own order and applied STP (the taker cancelled as a self-trade, or the own order
    cancelled)."""
    for stp in StpMode:
        real, naive = OrderBook(btc_usdt()), NaiveBook(btc_usdt())
        for cmd in scenario(stp):
            events = apply(naive, cmd)
            assert apply(real, cmd) == events, (stp, cmd)
        assert events[-1] == OrderUpdated(3, "u0", Side.BUY, OrderStatus.FILLED, 1, 0, 0,
                                          None), stp
        assert naive.snapshot().asks == (own_ask_left,), stp  # own ask kept


@settings(max_examples=500, deadline=None)
@given(command_lists(max_size=80))
@example(_budget_left_below_a_lot_before_an_own_order(StpMode.EXPIRE_TAKER))
@example(_budget_left_below_a_lot_before_an_own_order(StpMode.EXPIRE_MAKER))
@example(_budget_left_below_a_lot_before_an_own_order(StpMode.EXPIRE_BOTH))
def test_book_and_naive_book_emit_identical_events(cmds: list[Command]) -> None:
    real, naive = OrderBook(btc_usdt()), NaiveBook(btc_usdt())
    for cmd in cmds:
        assert apply(real, cmd) == apply(naive, cmd), cmd
        assert real.snapshot(100) == naive.snapshot(100)
        for user in USERS:
            for side in (Side.BUY, Side.SELL):
                for price in (9_990, 10_000, 10_010):
                    assert real.would_self_cross(user, side, price) == (
                        naive.would_self_cross(user, side, price))
