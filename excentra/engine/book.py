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

A level is a FIFO queue of ``_Order``s: a list read from a head index. Cancels are O(1):
the order's ``remaining`` is set to 0 (dead), its level's totals adjusted, and matching
passes over the dead entry when it reaches the head (or it goes with the level, when the
level's last live order goes). ``_orders`` indexes live orders by id, ``_by_user`` by user
and id (for the self-cross pre-check).

This module, ``_state`` and ``events`` are compiled with mypyc at install time (setup.py):
the annotations are what makes that fast — ``int`` locals become C integers, ``_Order`` and
``_Level`` C structs, module constants ``Final`` C statics, list indexing a C array access.
The hot paths (``place_limit``, ``_take``, ``cancel``) keep the common case inline. The
shared benchmark is the judge of every such line (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal
from typing import Final

from excentra.engine._state import (
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
from excentra.engine.types import (
    BookIntegrityError,
    CancelReason,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)

__all__ = ["BookIntegrityError", "BookLevel", "BookSnapshot", "OrderBook", "RestingOrder"]

# Module constants are ``Final``: compiled (see setup.py), each is a C static instead of a
# lookup in the module's dict on every use.
BUY: Final = Side.BUY
SELL: Final = Side.SELL
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
OPEN: Final = OrderStatus.OPEN
PARTIAL: Final = OrderStatus.PARTIALLY_FILLED
FILLED: Final = OrderStatus.FILLED
CANCELLED: Final = OrderStatus.CANCELLED
GTC: Final = TimeInForce.GTC
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
EXPIRE_TAKER: Final = StpMode.EXPIRE_TAKER
EXPIRE_MAKER: Final = StpMode.EXPIRE_MAKER
SELF_TRADE: Final = CancelReason.SELF_TRADE
UNFILLED: Final = CancelReason.UNFILLED
USER: Final = CancelReason.USER


# Why matching stopped (plain ints: compared on every order).
_STOP_SIZE: Final = 1
"""The taker's quantity (or budget, to the last affordable lot) is used up."""
_STOP_BOOK: Final = 2
"""No more liquidity within the limit."""
_STOP_SELF_TRADE: Final = 3
"""Self-trade prevention stopped it."""

_COMPACT_AFTER: Final = 32
"""A level's queue drops its passed-over front once that is this long and over half of it."""


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
        ticks = self._ticks(price)
        lots = self._lots(quantity)
        if not ticks or not lots or order_id in self._orders:
            return [self._reject_limit(order_id, user_id, price, quantity)]
        if side is BUY:
            best = self._best_ask
            crosses = best is not None and best <= ticks
        else:
            best = self._best_bid
            crosses = best is not None and best >= ticks
        accepted = OrderAccepted(
            order_id, user_id, side, LIMIT, ticks, lots, None, time_in_force, post_only)
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
                LevelChanged(seq, side, ticks, total, count),
                OrderUpdated(order_id, user_id, side, OPEN, 0, lots, 0, None),
            ]
        if crosses and post_only:
            return [OrderRejected(order_id, user_id, RejectCode.POST_ONLY_WOULD_TAKE)]
        events: list[Event] = [accepted]
        left, filled, stop = lots, 0, _STOP_BOOK
        if crosses:
            if time_in_force is FOK and self._fillable(user_id, side, ticks, lots, stp) < lots:
                events.append(OrderUpdated(order_id, user_id, side, CANCELLED, 0, 0, lots,
                                           CancelReason.FOK_UNFILLABLE))
                return events
            left, filled, stop = self._take(order_id, user_id, side, ticks, lots, None, stp,
                                            events)
        if left == 0:
            update = OrderUpdated(order_id, user_id, side, FILLED, filled, 0, 0, None)
        elif time_in_force is GTC and stop != _STOP_SELF_TRADE:
            self._rest(order_id, user_id, side, ticks, lots, left, events)
            update = OrderUpdated(order_id, user_id, side, PARTIAL if filled else OPEN, filled,
                                  left, 0, None)
        else:
            # IOC/FOK remainders never rest. Neither does one blocked by its own user's order:
            # resting it would cross the book, so every STP mode cancels it (README, STP).
            reason = SELF_TRADE if stop == _STOP_SELF_TRADE else (
                CancelReason.FOK_UNFILLABLE if time_in_force is FOK else UNFILLED)
            update = OrderUpdated(order_id, user_id, side, CANCELLED, filled, 0, left, reason)
        events.append(update)
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
        A budget buys whole lots only, their exact cost at most the budget (in fine units,
        ``precision``); the leftover, less than one lot at the price where it stopped, is
        unspent (and released by whoever reserved it).
        """
        # The common case inline: sized by a valid quantity. Otherwise the spec finds the
        # first precise reason to reject, or converts the budget.
        lots: int | None = self._lots(quantity) if budget is None and quantity is not None else 0
        units: int | None = None
        if not lots:
            checked = self.spec.market_amounts(side, quantity, budget)
            if isinstance(checked, RejectCode):
                return [OrderRejected(order_id, user_id, checked)]
            lots, units = checked
        if order_id in self._orders:
            return [OrderRejected(order_id, user_id, RejectCode.DUPLICATE_ORDER_ID)]
        events: list[Event] = [OrderAccepted(
            order_id, user_id, side, MARKET, None, lots or 0, units, IOC, False)]
        left, filled, stop = self._take(order_id, user_id, side, None, lots or 0, units, stp,
                                        events)
        if stop == _STOP_SIZE and filled:
            update = OrderUpdated(order_id, user_id, side, FILLED, filled, 0, 0, None)
        else:
            reason = SELF_TRADE if stop == _STOP_SELF_TRADE else UNFILLED
            update = OrderUpdated(order_id, user_id, side, CANCELLED, filled, 0,
                                  0 if units is not None else left, reason)
        events.append(update)
        if len(events) > 2:  # anything between accept and final status changed a level
            self.seq += 1
        return events

    def cancel(self, order_id: Hashable, user_id: Hashable = None) -> list[Event]:
        """Cancel a resting order. ``user_id``, when given, must own it (else not found)."""
        o = self._orders.get(order_id)
        if o is None or (user_id is not None and o.user != user_id):
            return [OrderRejected(order_id, user_id, RejectCode.ORDER_NOT_FOUND)]
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
        elif len(level.orders) - level.head > 2 * count + 64:
            # A cancelled order stays in its queue (remaining 0) until matching passes
            # it; behind a first order that stays, churn would grow the queue without
            # bound. Compacted once the dead outnumber the live: amortised O(1).
            level.orders = [x for x in level.orders[level.head:] if x.remaining]
            level.head = 0
        return [
            OrderUpdated(order_id, o.user, side, CANCELLED, o.quantity - left, 0, left, USER),
            LevelChanged(seq, side, price, total, count),
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
        events.append(LevelChanged(self.seq + 1, side, price, level.total, level.count))

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
        is left (lots, or fine units of the quote when sized by budget), the lots filled,
        and why matching stopped. Trades carry their exact cost in fine units.
        """
        buy = side is BUY
        maker_side = SELL if buy else BUY
        levels = self._asks if buy else self._bids
        orders, by_user = self._orders, self._by_user
        k = self._quote_per_tick_lot
        by_budget = budget is not None
        left: int = budget * self._fine_per_unit if budget is not None else lots
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
            head = level.head
            end = len(queue)
            before = level.total
            cost = px * k  # fine units per lot at this level
            if by_budget and left < cost:
                break  # not one more whole lot is affordable: the budget is used up
            while left and head < end:
                if by_budget and left < cost:
                    break  # the budget is used up (below one lot), whoever rests next
                maker = queue[head]
                have = maker.remaining
                if not have:
                    head += 1  # cancelled earlier: passed over lazily
                    continue
                mid, muser = maker.id, maker.user
                if muser == taker_user:
                    if stp is not EXPIRE_TAKER:
                        head += 1
                        self._disown(maker)
                        del orders[mid]
                        maker.remaining = 0
                        level.total -= have
                        level.count -= 1
                        append(OrderUpdated(mid, muser, maker_side, CANCELLED,
                                            maker.quantity - have, 0, have, SELF_TRADE))
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
                append(TradeExecuted(mid, taker_id, muser, taker_user, side, px, fill,
                                     fill * cost))
                level.total -= fill
                if fill == have:
                    head += 1
                    maker.remaining = 0
                    level.count -= 1
                    del orders[mid]
                    own = by_user[muser]  # self._disown, inline on the hot path
                    del own[mid]
                    if not own:
                        del by_user[muser]
                    append(OrderUpdated(mid, muser, maker_side, FILLED, maker.quantity, 0, 0,
                                        None))
                else:
                    have -= fill
                    maker.remaining = have
                    append(OrderUpdated(mid, muser, maker_side, PARTIAL,
                                        maker.quantity - have, have, 0, None))
            if head > _COMPACT_AFTER and 2 * head > end:
                del queue[:head]  # drop the passed-over front: amortised O(1) per order
                head = 0
            level.head = head
            if level.total != before:  # STP may stop at the level's first order, untouched
                append(LevelChanged(seq, maker_side, px, level.total, level.count))
            if level.count == 0:
                self._drop_level(maker_side, px)
            if stop == _STOP_SELF_TRADE or (left and level.count):
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
