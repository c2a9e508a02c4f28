"""The order book's state: its value types, indexes, queries and integrity checks.

``OrderBook`` (``book.py``) adds the commands — placing, matching, cancelling — on top of
``BookState``; the split keeps each module readable. See ``book.py`` for the shape.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Hashable, Iterator
from decimal import Decimal
from typing import Final, NamedTuple

from excentra.engine.precision import CONVERSION_ERRORS, PairSpec
from excentra.engine.types import BookIntegrityError, Side

BUY: Final = Side.BUY
SELL: Final = Side.SELL
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_ratio: Final = Decimal.as_integer_ratio


class _Order:
    __slots__ = ("arrival", "id", "price", "quantity", "remaining", "side", "user")

    def __init__(
        self,
        order_id: Hashable,
        user: Hashable,
        side: Side,
        price: int,
        quantity: int,
        remaining: int,
        arrival: int,
    ) -> None:
        self.id = order_id
        self.user = user
        self.side = side
        self.price = price
        self.quantity = quantity
        self.remaining = remaining
        """Lots still open; 0 marks an order that left the book (filled or cancelled)."""
        self.arrival = arrival


class _Level:
    """One price level: a FIFO queue of orders as a list read from ``head`` on.

    Orders before ``head`` have left the book (filled or expired while matching); cancelled
    orders stay in place with ``remaining == 0`` until matching passes over them, or until
    they outnumber the live ones (``OrderBook.cancel`` compacts the queue then). A list
    and an index rather than a ``deque``: compiled, list indexing is a C array access.
    """

    __slots__ = ("count", "head", "orders", "total")

    def __init__(self) -> None:
        self.orders: list[_Order] = []
        self.head = 0
        self.total = 0
        self.count = 0


class RestingOrder(NamedTuple):
    """A read-only view of an order on the book."""

    order_id: Hashable
    user_id: Hashable
    side: Side
    price: int
    quantity: int
    remaining: int


class BookLevel(NamedTuple):
    price: int
    quantity: int
    orders: int


class BookSnapshot(NamedTuple):
    """Top levels per side, best first, and the sequence number they belong to."""

    seq: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]


class BookState:
    """Levels, indexes and the sequence number of one pair's book, and reading them."""

    def __init__(self, spec: PairSpec) -> None:
        self.spec = spec
        self.seq = 0
        """Grows by one with each operation that changes any price level."""
        self._bid_heap: list[int] = []  # negated prices
        self._ask_heap: list[int] = []
        self._bids: dict[int, _Level] = {}
        self._asks: dict[int, _Level] = {}
        self._best_bid: int | None = None
        self._best_ask: int | None = None
        self._orders: dict[Hashable, _Order] = {}
        self._by_user: dict[Hashable, dict[Hashable, _Order]] = {}
        self._arrivals = 0
        # price / price_step in integers: ticks = n·pnum / (d·pden) for price = n/d
        self._pden, self._pnum = spec.price_ratio
        self._qden, self._qnum = spec.quantity_ratio
        self._max_ticks = spec.max_ticks
        self._max_lots = spec.max_lots
        self._quote_per_tick_lot = spec.quote_per_tick_lot
        self._fine_per_unit = spec.fine_per_unit

    # -- input on the grid (the hot path's checks; PairSpec finds the reason to reject) ---

    def _ticks(self, price: Decimal) -> int:
        """``price`` in ticks if it is a valid limit price on this grid, else 0."""
        try:  # exact: price = n/d is on the grid iff price/step = n·pnum / (d·pden) is whole
            n, d = _ratio(price)
        except CONVERSION_ERRORS:
            return 0
        n, d = n * self._pnum, d * self._pden
        ticks = n // d
        return ticks if n % d == 0 and 0 < ticks <= self._max_ticks else 0

    def _lots(self, quantity: Decimal) -> int:
        """``quantity`` in lots if it is a valid order size on this grid, else 0."""
        try:
            n, d = _ratio(quantity)
        except CONVERSION_ERRORS:
            return 0
        n, d = n * self._qnum, d * self._qden
        lots = n // d
        return lots if n % d == 0 and 0 < lots <= self._max_lots else 0

    # -- queries -------------------------------------------------------------------------

    def _sorted(self, side: Side) -> list[tuple[int, _Level]]:
        """One side's levels, best first."""
        levels = self._bids if side is BUY else self._asks
        return sorted(levels.items(), reverse=side is BUY)

    def best_bid(self) -> int | None:
        return self._best_bid

    def best_ask(self) -> int | None:
        return self._best_ask

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: Hashable) -> bool:
        return order_id in self._orders

    def order(self, order_id: Hashable) -> RestingOrder | None:
        o = self._orders.get(order_id)
        return None if o is None else _view(o)

    def would_self_cross(self, user_id: Hashable, side: Side, price: int) -> bool:
        """Would a limit order at ``price`` cross one of this user's own resting orders?

        The original's pre-check (reference §3.6, layer 1): O(the user's resting orders).
        """
        for o in self._by_user.get(user_id, {}).values():
            if o.side is not side and (o.price <= price if side is BUY else o.price >= price):
                return True
        return False

    def orders_of(self, user_id: Hashable) -> list[RestingOrder]:
        """The user's resting orders in time priority."""
        own = self._by_user.get(user_id, {}).values()
        return [_view(o) for o in sorted(own, key=lambda o: o.arrival)]

    def snapshot(self, depth: int = 20) -> BookSnapshot:
        return BookSnapshot(self.seq, self._top(BUY, depth), self._top(SELL, depth))

    def _top(self, side: Side, depth: int) -> tuple[BookLevel, ...]:
        levels = self._bids if side is BUY else self._asks
        if depth <= 0:
            return ()
        pick = heapq.nlargest if side is BUY else heapq.nsmallest
        return tuple(BookLevel(p, levels[p].total, levels[p].count)
                     for p in pick(depth, levels))

    def resting(self) -> Iterator[RestingOrder]:
        """Every resting order: bids best first, then asks best first, FIFO within a level."""
        for side in (BUY, SELL):
            for _, level in self._sorted(side):
                for o in level.orders:
                    if o.remaining:
                        yield _view(o)

    def _add_level(self, side: Side, price: int) -> _Level:
        level = _Level()
        if side is BUY:
            self._bids[price] = level
            _heappush(self._bid_heap, -price)
            if self._best_bid is None or price > self._best_bid:
                self._best_bid = price
        else:
            self._asks[price] = level
            _heappush(self._ask_heap, price)
            if self._best_ask is None or price < self._best_ask:
                self._best_ask = price
        return level

    def _drop_level(self, side: Side, price: int) -> None:
        if side is BUY:
            levels, heap = self._bids, self._bid_heap
            del levels[price]
            if price == self._best_bid:
                while heap and -heap[0] not in levels:
                    _heappop(heap)
                self._best_bid = -heap[0] if heap else None
        else:
            levels, heap = self._asks, self._ask_heap
            del levels[price]
            if price == self._best_ask:
                while heap and heap[0] not in levels:
                    _heappop(heap)
                self._best_ask = heap[0] if heap else None
        if len(heap) > 2 * len(levels) + 64:  # mostly stale entries: rebuild
            heap[:] = [-p for p in levels] if side is BUY else list(levels)
            heapq.heapify(heap)

    def _disown(self, o: _Order) -> None:
        own = self._by_user[o.user]
        del own[o.id]
        if not own:
            del self._by_user[o.user]

    # -- integrity -----------------------------------------------------------------------

    def validate(self) -> None:
        """Check every internal invariant; raise ``BookIntegrityError`` on the first broken."""
        seen: dict[Hashable, _Order] = {}
        for side in (BUY, SELL):
            levels = self._bids if side is BUY else self._asks
            heap = [-p for p in self._bid_heap] if side is BUY else self._ask_heap
            _require(set(levels) <= set(heap), f"{side} level missing from the price heap")
            for p, level in self._sorted(side):
                _require(not any(o.remaining for o in level.orders[:level.head]),
                         f"{side} level {p}: a live order before the queue's head")
                live = [o for o in level.orders if o.remaining]
                _require(bool(live), f"{side} level {p} is empty")
                _require(level.count == len(live), f"{side} level {p} count")
                _require(level.total == sum(o.remaining for o in live), f"{side} {p} total")
                arrivals = [o.arrival for o in live]
                _require(arrivals == sorted(arrivals), f"{side} level {p} not FIFO")
                for o in live:
                    _require(o.side is side and o.price == p, f"{o.id!r} misfiled")
                    _require(0 < o.remaining <= o.quantity, f"{o.id!r} remaining")
                    _require(o.id not in seen, f"{o.id!r} rests twice")
                    seen[o.id] = o
        _require(seen == self._orders, "order index differs from the levels")
        owned = {oid: o for own in self._by_user.values() for oid, o in own.items()}
        _require(owned == self._orders, "user index differs from the levels")
        _require(all(o.user == u for u, own in self._by_user.items() for o in own.values()),
                 "user index misfiled")
        _require(self._best_bid == max(self._bids, default=None), "stale best bid")
        _require(self._best_ask == min(self._asks, default=None), "stale best ask")
        bid, ask = self._best_bid, self._best_ask
        _require(bid is None or ask is None or bid < ask, f"crossed book: {bid} >= {ask}")

    def state_hash(self) -> str:
        """A fingerprint of the resting orders and their priority.

        Not of ``seq``: a book rebuilt from storage has the same hash as the book it
        replaces, although its sequence numbers start again.
        """
        h = hashlib.sha256(self.spec.symbol.encode())
        for o in self.resting():
            h.update(repr(tuple(o)).encode())
        return h.hexdigest()


def _view(o: _Order) -> RestingOrder:
    return RestingOrder(o.id, o.user, o.side, o.price, o.quantity, o.remaining)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BookIntegrityError(message)
