"""Events an ``OrderBook`` operation returns, in the order they happened.

Events are small immutable value classes. Compiled (see ``setup.py``), each is a C struct
whose ``Final`` fields cannot be assigned (``AttributeError``) and whose construction is a
direct call, about a third of a ``NamedTuple``'s — the matching loop creates several per
order. Interpreted, mypy's ``Final`` check is what keeps them immutable. Equality, hashing,
``repr`` and keyword ``match`` patterns work on the fields, as for a ``NamedTuple``.

Units: ``price`` is an integer number of the pair's price steps (ticks), ``quantity``,
``filled`` and ``remaining`` integer numbers of its quantity steps (lots), ``budget``
integer minor units of the quote asset, a trade's ``quote`` its exact cost in fine units of
the quote asset (``quote_unit / PairSpec.fine_per_unit``: minor units on a grid whose
tick × lot is whole minor units; settlement rounds it, see ``precision``). ``PairSpec``
converts them to ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar, Final

from excentra.engine.types import (
    CancelReason,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)


class _Event:
    """Value semantics over ``__match_args__`` (the fields, in order)."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def values(self) -> tuple[object, ...]:
        """The fields' values, in order."""
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Event)
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({fields})"


class OrderAccepted(_Event):
    """The book took the order; what follows (trades, a final status) belongs to it."""

    __slots__ = ("budget", "order_id", "order_type", "post_only", "price", "quantity", "side",
                 "time_in_force", "user_id")
    __match_args__ = ("order_id", "user_id", "side", "order_type", "price", "quantity",
                      "budget", "time_in_force", "post_only")
    order_id: Final[Hashable]
    user_id: Final[Hashable]
    side: Final[Side]
    order_type: Final[OrderType]
    price: Final[int | None]
    """Limit price in ticks; ``None`` for market orders."""
    quantity: Final[int]
    """Base quantity in lots; 0 for a market buy sized by ``budget``."""
    budget: Final[int | None]
    """Quote budget of a market buy, in quote minor units; otherwise ``None``."""
    time_in_force: Final[TimeInForce]
    post_only: Final[bool]

    def __init__(self, order_id: Hashable, user_id: Hashable, side: Side,
                 order_type: OrderType, price: int | None, quantity: int, budget: int | None,
                 time_in_force: TimeInForce, post_only: bool) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.side = side
        self.order_type = order_type
        self.price = price
        self.quantity = quantity
        self.budget = budget
        self.time_in_force = time_in_force
        self.post_only = post_only


class OrderRejected(_Event):
    """The book refused the order or cancel; nothing changed."""

    __slots__ = ("code", "order_id", "user_id")
    __match_args__ = ("order_id", "user_id", "code")
    order_id: Final[Hashable]
    user_id: Final[Hashable]
    code: Final[RejectCode]

    def __init__(self, order_id: Hashable, user_id: Hashable, code: RejectCode) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.code = code


class TradeExecuted(_Event):
    """One fill: a resting (maker) order met an incoming (taker) order at the maker's price."""

    __slots__ = ("maker_order_id", "maker_user_id", "price", "quantity", "quote",
                 "taker_order_id", "taker_side", "taker_user_id")
    __match_args__ = ("maker_order_id", "taker_order_id", "maker_user_id", "taker_user_id",
                      "taker_side", "price", "quantity", "quote")
    maker_order_id: Final[Hashable]
    taker_order_id: Final[Hashable]
    maker_user_id: Final[Hashable]
    taker_user_id: Final[Hashable]
    taker_side: Final[Side]
    price: Final[int]
    quantity: Final[int]
    quote: Final[int]
    """``price × quantity`` exactly, in fine units of the quote (``precision``)."""

    def __init__(self, maker_order_id: Hashable, taker_order_id: Hashable,
                 maker_user_id: Hashable, taker_user_id: Hashable, taker_side: Side,
                 price: int, quantity: int, quote: int) -> None:
        self.maker_order_id = maker_order_id
        self.taker_order_id = taker_order_id
        self.maker_user_id = maker_user_id
        self.taker_user_id = taker_user_id
        self.taker_side = taker_side
        self.price = price
        self.quantity = quantity
        self.quote = quote


class OrderUpdated(_Event):
    """An order's status after a change: a fill of a maker, a taker's final state, a cancel."""

    __slots__ = ("cancelled", "filled", "order_id", "reason", "remaining", "side", "status",
                 "user_id")
    __match_args__ = ("order_id", "user_id", "side", "status", "filled", "remaining",
                      "cancelled", "reason")
    order_id: Final[Hashable]
    user_id: Final[Hashable]
    side: Final[Side]
    status: Final[OrderStatus]
    filled: Final[int]
    """Lots filled so far."""
    remaining: Final[int]
    """Lots still open on the book; 0 once the order is done."""
    cancelled: Final[int]
    """Lots that will never fill because the order was cancelled or expired.

    ``filled + remaining + cancelled`` is always the order's quantity (for a market buy
    sized by budget, whose quantity is not known up front, ``remaining`` and
    ``cancelled`` are 0 and what it paid is settlement's business: ``precision``).
    """
    reason: Final[CancelReason | None]

    def __init__(self, order_id: Hashable, user_id: Hashable, side: Side, status: OrderStatus,
                 filled: int, remaining: int, cancelled: int,
                 reason: CancelReason | None) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.side = side
        self.status = status
        self.filled = filled
        self.remaining = remaining
        self.cancelled = cancelled
        self.reason = reason


class LevelChanged(_Event):
    """The aggregated quantity at one price level after an operation; 0 means removed."""

    __slots__ = ("orders", "price", "quantity", "seq", "side")
    __match_args__ = ("seq", "side", "price", "quantity", "orders")
    seq: Final[int]
    """The book's sequence number after the operation that made the change."""
    side: Final[Side]
    price: Final[int]
    quantity: Final[int]
    orders: Final[int]

    def __init__(self, seq: int, side: Side, price: int, quantity: int, orders: int) -> None:
        self.seq = seq
        self.side = side
        self.price = price
        self.quantity = quantity
        self.orders = orders


Event = OrderAccepted | OrderRejected | TradeExecuted | OrderUpdated | LevelChanged
