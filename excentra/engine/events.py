"""Events an ``OrderBook`` operation returns, in the order they happened.

Events are ``NamedTuple``s rather than frozen dataclasses: they are immutable all the same,
but cost a third as much to create, and the matching loop creates several per order.

Units: ``price`` is an integer number of the pair's price steps (ticks), ``quantity``,
``filled`` and ``remaining`` integer numbers of its quantity steps (lots), ``quote`` and
``budget`` integer minor units of the quote asset. ``PairSpec`` converts them to ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

from excentra.engine.types import (
    CancelReason,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)


class OrderAccepted(NamedTuple):
    """The book took the order; what follows (trades, a final status) belongs to it."""

    order_id: Hashable
    user_id: Hashable
    side: Side
    order_type: OrderType
    price: int | None
    """Limit price in ticks; ``None`` for market orders."""
    quantity: int
    """Base quantity in lots; 0 for a market buy sized by ``budget``."""
    budget: int | None
    """Quote budget of a market buy, in quote minor units; otherwise ``None``."""
    time_in_force: TimeInForce
    post_only: bool


class OrderRejected(NamedTuple):
    """The book refused the order or cancel; nothing changed."""

    order_id: Hashable
    user_id: Hashable
    code: RejectCode


class TradeExecuted(NamedTuple):
    """One fill: a resting (maker) order met an incoming (taker) order at the maker's price."""

    maker_order_id: Hashable
    taker_order_id: Hashable
    maker_user_id: Hashable
    taker_user_id: Hashable
    taker_side: Side
    price: int
    quantity: int
    quote: int
    """``price × quantity`` in quote minor units (exact on the pair's grid)."""


class OrderUpdated(NamedTuple):
    """An order's status after a change: a fill of a maker, a taker's final state, a cancel."""

    order_id: Hashable
    user_id: Hashable
    side: Side
    status: OrderStatus
    filled: int
    """Lots filled so far."""
    remaining: int
    """Lots still open on the book; 0 once the order is done."""
    cancelled: int
    """Lots that will never fill because the order was cancelled or expired.

    ``filled + remaining + cancelled`` is always the order's quantity (for a market buy
    sized by budget, whose quantity is not known up front, ``remaining`` and
    ``cancelled`` are 0 and the unspent budget is ``budget`` minus its trades' ``quote``).
    """
    reason: CancelReason | None


class LevelChanged(NamedTuple):
    """The aggregated quantity at one price level after an operation; 0 means removed."""

    seq: int
    """The book's sequence number after the operation that made the change."""
    side: Side
    price: int
    quantity: int
    orders: int


Event = OrderAccepted | OrderRejected | TradeExecuted | OrderUpdated | LevelChanged
