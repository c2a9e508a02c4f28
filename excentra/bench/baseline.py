"""The yardstick of ``excentra bench engine``: a straightforward pure-Python order book.

What a careful engineer writes in an afternoon: a ``SortedDict`` of price levels per
side, each level a FIFO ``deque`` of ``[order id, remaining]`` entries, a dict from order
id to its entry, and lazy cancels (a cancelled entry is zeroed and skipped when matching
reaches it; a level whose last live order goes is removed at once, so the best price is
always live). Price-time priority; each fill is one trade at the resting order's price; a
market order's unfilled rest is dropped. No users, no events, no checks: only what the
workload needs, so the benchmark measures what the engine adds over the bare book.

The same code runs on ``Decimal`` prices and quantities or on integer ticks and lots
(:func:`as_ticks`): the numbers only need ``+``, ``-`` and comparisons.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedDict

if TYPE_CHECKING:  # the workload's generator runs this book to aim its cancels
    from excentra.bench.workload import Row

TickRow = tuple[int, int, bool, int | None, int | None]
"""A row on integer ticks and lots."""

PRICE_SCALE = 100
"""Integer ticks per price unit (prices have 2 decimals)."""
QTY_SCALE = 10_000
"""Integer lots per quantity unit (quantities have 4 decimals)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a replay must end in, whichever engine ran it."""

    trades: int
    """Fills (one trade each)."""
    traded: Decimal
    """Base quantity traded."""
    best_bid: Decimal | None
    """The final best bid (``None``: no bids)."""
    best_ask: Decimal | None
    """The final best ask (``None``: no asks)."""
    resting: int
    """Orders resting at the end."""

    @classmethod
    def from_expected(cls, expected: dict[str, Any]) -> Outcome:
        """An ``expected.json`` written beside a workload file (``trades``, ``traded_qty``,
        ``best_bid``, ``best_ask``, ``resting_orders``)."""
        return cls(int(expected["trades"]), Decimal(expected["traded_qty"]),
                   _decimal(expected["best_bid"]), _decimal(expected["best_ask"]),
                   int(expected["resting_orders"]))

    def differences(self, other: Outcome) -> dict[str, tuple[object, object]]:
        """The fields that differ, as (self, other); Decimals compare by value."""
        return {name: (getattr(self, name), getattr(other, name))
                for name in self.__slots__
                if getattr(self, name) != getattr(other, name)}


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class Book:
    """The order book (see the module's docstring)."""

    def __init__(self, zero: Any = 0) -> None:
        self.bids: SortedDict = SortedDict()  # best bid: the last key
        self.asks: SortedDict = SortedDict()  # best ask: the first key
        self.orders: dict[int, tuple[list[Any], Any, bool]] = {}  # id: entry, price, buy
        self.trades = 0
        self.traded: Any = zero

    def limit(self, oid: int, buy: bool, price: Any, qty: Any) -> None:
        qty = self._take(buy, price, qty)
        if qty:
            side = self.bids if buy else self.asks
            level = side.get(price)
            if level is None:
                level = side[price] = [deque(), 0]
            entry = [oid, qty]
            level[0].append(entry)
            level[1] += 1
            self.orders[oid] = (entry, price, buy)

    def market(self, buy: bool, qty: Any) -> None:
        self._take(buy, None, qty)

    def cancel(self, oid: int) -> None:
        found = self.orders.pop(oid, None)
        if found is None:
            return
        entry, price, buy = found
        entry[1] = 0
        side = self.bids if buy else self.asks
        level = side[price]
        level[1] -= 1
        if not level[1]:
            del side[price]

    def _take(self, buy: bool, limit: Any, qty: Any) -> Any:
        """Match ``qty`` against the other side up to ``limit``; the quantity left."""
        side = self.asks if buy else self.bids
        best = 0 if buy else -1
        while qty and side:
            price, level = side.peekitem(best)
            if limit is not None and (price > limit if buy else price < limit):
                break
            queue = level[0]
            while qty and level[1]:
                entry = queue[0]
                rest = entry[1]
                if not rest:  # cancelled
                    queue.popleft()
                    continue
                fill = rest if rest < qty else qty
                self.trades += 1
                self.traded += fill
                qty -= fill
                if fill == rest:
                    queue.popleft()
                    del self.orders[entry[0]]
                    level[1] -= 1
                else:
                    entry[1] = rest - fill
            if not level[1]:
                del side[price]
        return qty

    def outcome(self, price_scale: int = 1, qty_scale: int = 1) -> Outcome:
        """The book's outcome; the scales turn integer ticks and lots back into units."""
        bid = self.bids.peekitem(-1)[0] if self.bids else None
        ask = self.asks.peekitem(0)[0] if self.asks else None
        return Outcome(self.trades, Decimal(self.traded) / qty_scale,
                       None if bid is None else Decimal(bid) / price_scale,
                       None if ask is None else Decimal(ask) / price_scale,
                       len(self.orders))


def as_ticks(rows: Sequence[Row]) -> list[TickRow]:
    """The same operations on integer ticks and lots (the baseline's integer variant)."""
    return [(kind, oid, buy,
             None if price is None else int(price * PRICE_SCALE),
             None if qty is None else int(qty * QTY_SCALE))
            for kind, oid, buy, price, qty in rows]


def replay(rows: Sequence[Row] | Sequence[TickRow], zero: Any = 0) -> tuple[float, Book]:
    """One timed pass over the rows; the seconds it took and the book it left."""
    book = Book(zero)
    limit, market, cancel = book.limit, book.market, book.cancel
    t0 = time.perf_counter()
    for kind, oid, buy, price, qty in rows:
        if kind == 0:  # LIMIT; literals, as in the engine's timed loop
            limit(oid, buy, price, qty)
        elif kind == 1:  # MARKET
            market(buy, qty)
        else:
            cancel(oid)
    return time.perf_counter() - t0, book
