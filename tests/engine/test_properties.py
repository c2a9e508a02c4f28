"""Properties of OrderBook on random command sequences (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings

from excentra.engine import (
    LevelChanged,
    OrderAccepted,
    OrderBook,
    OrderStatus,
    OrderUpdated,
    TradeExecuted,
)
from tests.builders import btc_usdt
from tests.engine.commands import Command, apply, command_lists

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(command_lists())
def test_book_is_valid_and_never_crossed_after_every_operation(cmds: list[Command]) -> None:
    book = OrderBook(btc_usdt())
    for cmd in cmds:
        apply(book, cmd)
        book.validate()  # includes: best bid < best ask, FIFO, totals, indexes
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask


@SETTINGS
@given(command_lists())
def test_quantity_is_conserved_for_every_order(cmds: list[Command]) -> None:
    """filled + resting + cancelled = submitted, from the events and the book alike."""
    book = OrderBook(btc_usdt())
    submitted: dict[object, int] = {}
    budget: dict[object, int] = {}
    filled: dict[object, int] = defaultdict(int)
    spent: dict[object, int] = defaultdict(int)
    cancelled: dict[object, int] = defaultdict(int)
    k = book.spec.quote_per_tick_lot
    for cmd in cmds:
        for e in apply(book, cmd):
            if isinstance(e, OrderAccepted):
                submitted[e.order_id] = e.quantity
                if e.budget is not None:
                    budget[e.order_id] = e.budget
            elif isinstance(e, TradeExecuted):
                assert e.quantity > 0
                assert e.quote == e.price * e.quantity * k
                for oid in (e.maker_order_id, e.taker_order_id):
                    filled[oid] += e.quantity
                spent[e.taker_order_id] += e.quote
            elif isinstance(e, OrderUpdated):
                assert e.filled == filled[e.order_id]
                if e.order_id not in budget:
                    assert e.filled + e.remaining + e.cancelled == submitted[e.order_id]
                if e.status is OrderStatus.CANCELLED:
                    cancelled[e.order_id] += e.cancelled
    for oid, quantity in submitted.items():
        if oid in budget:
            assert spent[oid] <= budget[oid]
            continue
        resting = book.order(oid)
        left = resting.remaining if resting else 0
        assert filled[oid] + left + cancelled[oid] == quantity


@SETTINGS
@given(command_lists())
def test_fifo_older_orders_at_a_price_fill_first(cmds: list[Command]) -> None:
    book = OrderBook(btc_usdt())
    for cmd in cmds:
        events = apply(book, cmd)
        for t in (e for e in events if isinstance(e, TradeExecuted)):
            maker = t.maker_order_id
            older = [o for o in book.resting() if o.price == t.price
                     and o.order_id < maker and o.order_id != t.taker_order_id]  # type: ignore[operator]
            assert not older, f"{maker} filled before older {older}"


@SETTINGS
@given(command_lists())
def test_seq_grows_by_exactly_one_per_operation_that_changes_a_level(
        cmds: list[Command]) -> None:
    book = OrderBook(btc_usdt())
    for cmd in cmds:
        before = book.seq
        changes = [e for e in apply(book, cmd) if isinstance(e, LevelChanged)]
        assert book.seq == before + (1 if changes else 0)
        assert all(c.seq == book.seq for c in changes)


@SETTINGS
@given(command_lists())
def test_replaying_the_same_commands_gives_the_same_events_and_state(
        cmds: list[Command]) -> None:
    runs = []
    for _ in range(2):
        book = OrderBook(btc_usdt())
        events = [apply(book, cmd) for cmd in cmds]
        runs.append((events, book.state_hash(), book.snapshot(50)))
    assert runs[0] == runs[1]
