"""Differential test: OrderBook against the naive list-scanning book, event for event."""

from __future__ import annotations

from hypothesis import given, settings

from excentra.engine import OrderBook, Side
from tests.builders import btc_usdt
from tests.engine.commands import USERS, Command, apply, command_lists
from tests.engine.naive_book import NaiveBook


@settings(max_examples=500, deadline=None)
@given(command_lists(max_size=80))
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
