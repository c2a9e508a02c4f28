"""One trading pair's order book: price-time priority matching in integers.

Pure and deterministic: no threads, no I/O, no clocks, no floats. Every operation returns
the list of events it caused (see ``events.py``); nothing outside the book is mutated.

Shape: per side, a dict ``price -> _Level``, the best price cached, and a binary heap of
prices (``heapq``, in C; bids negated) that finds the next best price when the best level
empties. Heap entries of emptied levels below the top are left in place and skipped when
they surface (the heap is rebuilt when stale entries outnumber live ones). This replaced a
``SortedList`` whose Python-level insert/remove, paid on every new or emptied level, was
the largest single cost on the shared workload. Sorted views (snapshots, scans through a
limit) sort on demand: O(levels), off the matching path.

A level is a FIFO ``deque`` of ``_Order``s. Cancels are O(1): the order's ``remaining`` is
set to 0 (dead), its level's totals adjusted, and the deque entry is dropped lazily when it
reaches the head (or with the level, when its last live order goes). ``_orders`` indexes
live orders by id, ``_by_user`` by user and id (for the self-cross pre-check).

The hot paths (``place_limit``, ``_take``, ``cancel``) are written for CPython: locals
hoisted, the common case inline, events built with ``tuple.__new__`` (a third of a
``NamedTuple`` call). The shared benchmark is the judge of every such line (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal

from excentra.engine._state import (
    BookIntegrityError,
    BookLevel,
    BookSnapshot,
    BookState,
    RestingOrder,
    _Order,
)
from excentra.engine.events import (
    Event,
    LevelChanged,
    OrderAccepted,
    OrderRejected,
    OrderUpdated,
    TradeExecuted,
)
from excentra.engine.precision import CONVERSION_ERRORS
from excentra.engine.types import (
    CancelReason,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)

__all__ = ["BookIntegrityError", "BookLevel", "BookSnapshot", "OrderBook", "RestingOrder"]

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
OPEN, PARTIAL = OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED
FILLED, CANCELLED = OrderStatus.FILLED, OrderStatus.CANCELLED
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
EXPIRE_TAKER, EXPIRE_MAKER = StpMode.EXPIRE_TAKER, StpMode.EXPIRE_MAKER
SELF_TRADE, UNFILLED = CancelReason.SELF_TRADE, CancelReason.UNFILLED
_new = tuple.__new__


# Why matching stopped (plain ints: compared on every order).
_STOP_SIZE = 1
"""The taker's quantity (or budget, to the last affordable lot) is used up."""
_STOP_BOOK = 2
"""No more liquidity within the limit."""
_STOP_SELF_TRADE = 3
"""Self-trade prevention stopped it."""



class OrderBook(BookState):
    """The order book and matching engine of one pair."""

    # -- commands ------------------------------------------------------------------------

    def place_limit(
        self,
        order_id: Hashable,
        user_id: Hashable,
        side: Side,
        price: Decimal,
        quantity: Decimal,
        time_in_force: TimeInForce = GTC,
        post_only: bool = False,
        stp: StpMode = EXPIRE_TAKER,
    ) -> list[Event]:
        """Match a limit order; a GTC remainder rests at ``price`` behind that level's queue.

        Post-only orders that would take are rejected; IOC remainders are cancelled; FOK
        orders fill entirely or not at all.
        """
        spec = self.spec
        try:  # exact: price = n/d is on the grid iff price/step = n·pnum / (d·pden) is whole
            n, d = price.as_integer_ratio()
            n, d = n * self._pnum, d * self._pden
            ticks = n // d
            off_grid = n % d
            n, d = quantity.as_integer_ratio()
            n, d = n * self._qnum, d * self._qden
            lots = n // d
            off_grid |= n % d
        except CONVERSION_ERRORS:
            return [self._reject_limit(order_id, user_id, price, quantity)]
        if (off_grid or not 0 < ticks <= spec.max_ticks
                or not 0 < lots <= spec.max_lots or order_id in self._orders):
            return [self._reject_limit(order_id, user_id, price, quantity)]
        if side is BUY:
            best = self._best_ask
            crosses = best is not None and best <= ticks
        else:
            best = self._best_bid
            crosses = best is not None and best >= ticks
        accepted = _new(OrderAccepted, (
            order_id, user_id, side, LIMIT, ticks, lots, None, time_in_force, post_only))
        if not crosses and time_in_force is GTC:
            # The common case, inline: a new order joins the back of its level's queue.
            self._arrivals = arrival = self._arrivals + 1
            o = _Order(order_id, user_id, side, ticks, lots, lots, arrival)
            levels = self._bids if side is BUY else self._asks
            level = levels.get(ticks)
            if level is None:
                level = self._add_level(side, ticks)
            level.orders.append(o)
            level.total = total = level.total + lots
            level.count = count = level.count + 1
            self._orders[order_id] = o
            own = self._by_user.get(user_id)
            if own is None:
                self._by_user[user_id] = {order_id: o}
            else:
                own[order_id] = o
            self.seq = seq = self.seq + 1
            return [
                accepted,
                _new(LevelChanged, (seq, side, ticks, total, count)),
                _new(OrderUpdated, (order_id, user_id, side, OPEN, 0, lots, 0, None)),
            ]
        if crosses and post_only:
            return [_new(OrderRejected, (order_id, user_id, RejectCode.POST_ONLY_WOULD_TAKE))]
        events: list[Event] = [accepted]
        left, filled, stop = lots, 0, _STOP_BOOK
        if crosses:
            if time_in_force is FOK and self._fillable(user_id, side, ticks, lots, stp) < lots:
                events.append(_new(OrderUpdated, (order_id, user_id, side, CANCELLED, 0, 0,
                                                  lots, CancelReason.FOK_UNFILLABLE)))
                return events
            left, filled, stop = self._take(order_id, user_id, side, ticks, lots, None, stp,
                                            events)
        update: tuple[object, ...]
        if left == 0:
            update = (order_id, user_id, side, FILLED, filled, 0, 0, None)
        elif time_in_force is GTC and stop is not _STOP_SELF_TRADE:
            self._rest(order_id, user_id, side, ticks, lots, left, events)
            update = (order_id, user_id, side, PARTIAL if filled else OPEN, filled, left, 0,
                      None)
        else:
            # IOC/FOK remainders never rest. Neither does one blocked by its own user's order:
            # resting it would cross the book, so every STP mode cancels it (README, STP).
            reason = SELF_TRADE if stop is _STOP_SELF_TRADE else (
                CancelReason.FOK_UNFILLABLE if time_in_force is FOK else UNFILLED)
            update = (order_id, user_id, side, CANCELLED, filled, 0, left, reason)
        events.append(_new(OrderUpdated, update))
        if len(events) > 2:  # anything between accept and final status changed a level
            self.seq += 1
        return events

    def place_market(
        self,
        order_id: Hashable,
        user_id: Hashable,
        side: Side,
        quantity: Decimal | None = None,
        budget: Decimal | None = None,
        stp: StpMode = EXPIRE_TAKER,
    ) -> list[Event]:
        """Match a market order sized by base ``quantity``, or (buys only) by quote ``budget``.

        Market orders never rest: whatever is not filled is cancelled (immediate or cancel).
        A budget buys whole lots only; the leftover, less than one lot at the price where it
        stopped, is unspent (and released by whoever reserved it).
        """
        checked = self.spec.market_amounts(side, quantity, budget)
        if isinstance(checked, RejectCode):
            return [_new(OrderRejected, (order_id, user_id, checked))]
        if order_id in self._orders:
            return [_new(OrderRejected, (order_id, user_id, RejectCode.DUPLICATE_ORDER_ID))]
        lots, units = checked
        events: list[Event] = [_new(OrderAccepted, (
            order_id, user_id, side, MARKET, None, lots or 0, units, IOC, False))]
        left, filled, stop = self._take(order_id, user_id, side, None, lots or 0, units, stp,
                                        events)
        update: tuple[object, ...]
        if stop is _STOP_SIZE and filled:
            update = (order_id, user_id, side, FILLED, filled, 0, 0, None)
        else:
            reason = SELF_TRADE if stop is _STOP_SELF_TRADE else UNFILLED
            update = (order_id, user_id, side, CANCELLED, filled, 0,
                      0 if units is not None else left, reason)
        events.append(_new(OrderUpdated, update))
        if len(events) > 2:  # anything between accept and final status changed a level
            self.seq += 1
        return events

    def cancel(self, order_id: Hashable, user_id: Hashable = None) -> list[Event]:
        """Cancel a resting order. ``user_id``, when given, must own it (else not found)."""
        o = self._orders.get(order_id)
        if o is None or (user_id is not None and o.user != user_id):
            return [_new(OrderRejected, (order_id, user_id, RejectCode.ORDER_NOT_FOUND))]
        self.seq = seq = self.seq + 1
        del self._orders[order_id]
        own = self._by_user[o.user]  # self._disown, inline on the hot path
        del own[order_id]
        if not own:
            del self._by_user[o.user]
        side, price, left = o.side, o.price, o.remaining
        o.remaining = 0
        level = (self._bids if side is BUY else self._asks)[price]
        level.total = total = level.total - left
        level.count = count = level.count - 1
        if count == 0:
            self._drop_level(side, price)
        return [
            _new(OrderUpdated, (order_id, o.user, side, CANCELLED, o.quantity - left, 0, left,
                                CancelReason.USER)),
            _new(LevelChanged, (seq, side, price, total, count)),
        ]

    def restore(self, order: RestingOrder) -> None:
        """Put an order back on the book without matching (rebuilding from storage, in time
        priority). Raises ``BookIntegrityError`` if it would cross or duplicate."""
        side, price = order.side, order.price
        best = self._best_ask if side is BUY else self._best_bid
        if best is not None and (best <= price if side is BUY else best >= price):
            raise BookIntegrityError(f"restoring {order.order_id!r} would cross the book")
        if order.order_id in self._orders or not 0 < order.remaining <= order.quantity:
            raise BookIntegrityError(f"cannot restore {order!r}")
        self._rest(order.order_id, order.user_id, side, price, order.quantity,
                   order.remaining, [])

    # -- internals -----------------------------------------------------------------------

    def _reject_limit(
        self, order_id: Hashable, user_id: Hashable, price: Decimal, quantity: Decimal
    ) -> OrderRejected:
        """The slow path: find the first precise reason a limit order is refused."""
        checked = self.spec.limit_amounts(price, quantity)
        code = checked if isinstance(checked, RejectCode) else RejectCode.DUPLICATE_ORDER_ID
        return OrderRejected(order_id, user_id, code)

    def _rest(
        self,
        order_id: Hashable,
        user_id: Hashable,
        side: Side,
        price: int,
        quantity: int,
        remaining: int,
        events: list[Event],
    ) -> None:
        self._arrivals += 1
        o = _Order(order_id, user_id, side, price, quantity, remaining, self._arrivals)
        level = (self._bids if side is BUY else self._asks).get(price)
        if level is None:
            level = self._add_level(side, price)
        level.orders.append(o)
        level.total += remaining
        level.count += 1
        self._orders[order_id] = o
        self._by_user.setdefault(user_id, {})[order_id] = o
        events.append(_new(LevelChanged, (self.seq + 1, side, price, level.total, level.count)))

    def _take(
        self,
        taker_id: Hashable,
        taker_user: Hashable,
        side: Side,
        limit: int | None,
        lots: int,
        budget: int | None,
        stp: StpMode,
        events: list[Event],
    ) -> tuple[int, int, int]:
        """Match against the opposite side up to ``limit`` (``None``: no limit).

        Sized by ``lots`` or, when ``budget`` is given, by quote minor units. Returns what
        is left (lots, or quote units when sized by budget), the lots filled, and why
        matching stopped.
        """
        buy = side is BUY
        maker_side = SELL if buy else BUY
        levels = self._asks if buy else self._bids
        orders, by_user = self._orders, self._by_user
        k = self.spec.quote_per_tick_lot
        by_budget = budget is not None
        left: int = budget if budget is not None else lots
        append = events.append
        seq = self.seq + 1
        filled = 0
        stop = _STOP_SIZE
        while left:
            px = self._best_ask if buy else self._best_bid
            if px is None or (limit is not None and (px > limit if buy else px < limit)):
                stop = _STOP_BOOK
                break
            level = levels[px]
            queue = level.orders
            before = level.total
            cost = px * k  # quote units per lot at this level
            if by_budget and left < cost:
                break  # not one more whole lot is affordable: the budget is used up
            while left and queue:
                maker = queue[0]
                have = maker.remaining
                if not have:
                    queue.popleft()  # cancelled earlier: dropped lazily
                    continue
                mid, muser = maker.id, maker.user
                if muser == taker_user:
                    if stp is not EXPIRE_TAKER:
                        queue.popleft()
                        self._disown(maker)
                        del orders[mid]
                        maker.remaining = 0
                        level.total -= have
                        level.count -= 1
                        append(_new(OrderUpdated, (mid, muser, maker_side, CANCELLED,
                                                   maker.quantity - have, 0, have, SELF_TRADE)))
                        if stp is EXPIRE_MAKER:
                            continue
                    stop = _STOP_SELF_TRADE
                    break
                if by_budget:
                    fill = have if have * cost <= left else left // cost
                    if fill == 0:
                        break
                    left -= fill * cost
                else:
                    fill = have if have <= left else left
                    left -= fill
                filled += fill
                append(_new(TradeExecuted, (mid, taker_id, muser, taker_user, side, px, fill,
                                            fill * cost)))
                level.total -= fill
                if fill == have:
                    queue.popleft()
                    maker.remaining = 0
                    level.count -= 1
                    del orders[mid]
                    own = by_user[muser]  # self._disown, inline on the hot path
                    del own[mid]
                    if not own:
                        del by_user[muser]
                    append(_new(OrderUpdated, (mid, muser, maker_side, FILLED, maker.quantity,
                                               0, 0, None)))
                else:
                    have -= fill
                    maker.remaining = have
                    append(_new(OrderUpdated, (mid, muser, maker_side, PARTIAL,
                                               maker.quantity - have, have, 0, None)))
            if level.total != before:  # STP may stop at the level's first order, untouched
                append(_new(LevelChanged, (seq, maker_side, px, level.total, level.count)))
            if level.count == 0:
                self._drop_level(maker_side, px)
            if stop is _STOP_SELF_TRADE or (left and level.count):
                break  # stopped inside this level: by STP, or a budget too small for a lot
        return left, filled, stop

    def _fillable(self, user: Hashable, side: Side, limit: int, lots: int, stp: StpMode) -> int:
        """How many lots (up to ``lots``) a taker could fill now, honouring STP."""
        buy = side is BUY
        total = 0
        for px, level in self._sorted(SELL if buy else BUY):
            if px > limit if buy else px < limit:
                break
            for o in level.orders:
                if not o.remaining:
                    continue
                if o.user == user:
                    if stp is EXPIRE_MAKER:
                        continue
                    return total
                total += o.remaining
                if total >= lots:
                    return total
        return total
