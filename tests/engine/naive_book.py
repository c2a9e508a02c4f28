"""A deliberately naive order book: one list of resting orders, linear scans for everything.

It shares nothing with ``excentra.engine.book`` but the event types and the grid spec, and
exists only so the differential test can compare the two event for event. Clarity over
speed: every decision is made by scanning the whole list.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from excentra.engine import (
    BookLevel,
    BookSnapshot,
    CancelReason,
    Event,
    LevelChanged,
    OrderAccepted,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PairSpec,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)


@dataclass
class Resting:
    order_id: Hashable
    user_id: Hashable
    side: Side
    price: int
    quantity: int
    remaining: int


def _ticks(value: object, step: Decimal) -> int | None:
    """Exact conversion by ``Fraction`` arithmetic (the real book uses integer ratios)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    scaled = Fraction(value) / Fraction(step)
    return int(scaled) if scaled.denominator == 1 else None


def _code(units: int | None, raw: object, maximum: int, off: RejectCode,
          not_positive: RejectCode) -> RejectCode | None:
    if units is None:
        if not isinstance(raw, Decimal) or not raw.is_finite():
            return RejectCode.INVALID_NUMBER
        return off if raw > 0 else not_positive
    if units <= 0:
        return not_positive
    if units > maximum:
        return RejectCode.AMOUNT_TOO_LARGE
    return None


class NaiveBook:
    def __init__(self, spec: PairSpec) -> None:
        self.spec = spec
        self.seq = 0
        self.book: list[Resting] = []  # every resting order, in arrival order

    # -- helpers -------------------------------------------------------------------------

    def _level(self, side: Side, price: int) -> tuple[int, int]:
        here = [o for o in self.book if o.side is side and o.price == price]
        return sum(o.remaining for o in here), len(here)

    def _best(self, side: Side) -> int | None:
        prices = [o.price for o in self.book if o.side is side]
        if not prices:
            return None
        return max(prices) if side is Side.BUY else min(prices)

    def _crosses(self, side: Side, limit: int | None, price: int) -> bool:
        if limit is None:
            return True
        return price <= limit if side is Side.BUY else price >= limit

    def _queue(self, side: Side, price: int) -> list[Resting]:
        return [o for o in self.book if o.side is side and o.price == price]

    # -- matching ------------------------------------------------------------------------

    def _match(self, oid: Hashable, uid: Hashable, side: Side, limit: int | None,
               size: int, by_budget: bool, stp: StpMode,
               events: list[Event]) -> tuple[int, int, str]:
        maker_side = Side.SELL if side is Side.BUY else Side.BUY
        # A budget is counted as an exact amount of the quote asset, independently of the
        # engine's fine units (which only name the trade's ``quote``).
        left: Fraction = Fraction(size, 10 ** self.spec.quote_decimals) if by_budget else (
            Fraction(size))
        filled = 0
        while left:
            px = self._best(maker_side)
            if px is None or not self._crosses(side, limit, px):
                return int(left), filled, "book"
            lot = Fraction(self.spec.price(px)) * Fraction(self.spec.quantity_step)
            if by_budget and left < lot:
                return int(left), filled, "size"
            touched, stop = False, None
            for maker in self._queue(maker_side, px):
                if not left:
                    break
                if by_budget and left < lot:
                    # The budget is used up (below one lot here): the order is done,
                    # whoever rests next — an own order behind is never looked at (no STP).
                    stop = "size"
                    break
                if maker.user_id == uid:
                    if stp is not StpMode.EXPIRE_TAKER:
                        self.book.remove(maker)
                        touched = True
                        events.append(OrderUpdated(
                            maker.order_id, maker.user_id, maker_side, OrderStatus.CANCELLED,
                            maker.quantity - maker.remaining, 0, maker.remaining,
                            CancelReason.SELF_TRADE))
                        if stp is StpMode.EXPIRE_MAKER:
                            continue
                    stop = "self"
                    break
                if by_budget:
                    fill = min(maker.remaining, int(left // lot))
                    if fill == 0:
                        stop = "size"
                        break
                    left -= fill * lot
                else:
                    fill = min(maker.remaining, int(left))
                    left -= fill
                filled += fill
                touched = True
                events.append(TradeExecuted(maker.order_id, oid, maker.user_id, uid, side,
                                            px, fill, self._fine(fill * lot)))
                maker.remaining -= fill
                if maker.remaining == 0:
                    self.book.remove(maker)
                status = OrderStatus.FILLED if maker.remaining == 0 else (
                    OrderStatus.PARTIALLY_FILLED)
                events.append(OrderUpdated(maker.order_id, maker.user_id, maker_side, status,
                                           maker.quantity - maker.remaining, maker.remaining,
                                           0, None))
                if maker.remaining:
                    # Partly filled, the maker is still the next resting order: nothing
                    # behind it is reached. The taker is used up (its quantity, or a budget
                    # now below one lot here), so matching stops for size, and an own
                    # order further back in the queue is never looked at (no STP).
                    stop = "size"
                    break
            if touched:
                total, count = self._level(maker_side, px)
                events.append(LevelChanged(self.seq + 1, maker_side, px, total, count))
            if stop is not None:
                return int(left), filled, stop
        return int(left), filled, "size"

    def _fine(self, amount: Fraction) -> int:
        """An exact quote amount in the engine's fine units (it must be a whole number)."""
        fine = amount * 10 ** self.spec.quote_decimals * self.spec.fine_per_unit
        assert fine.denominator == 1, amount
        return int(fine)

    def _fillable(self, uid: Hashable, side: Side, limit: int, stp: StpMode) -> int:
        maker_side = Side.SELL if side is Side.BUY else Side.BUY
        candidates = [o for o in self.book if o.side is maker_side
                      and self._crosses(side, limit, o.price)]
        candidates.sort(key=lambda o: -o.price if side is Side.SELL else o.price)  # stable
        total = 0
        for o in candidates:
            if o.user_id == uid:
                if stp is StpMode.EXPIRE_MAKER:
                    continue
                break
            total += o.remaining
        return total

    # -- commands ------------------------------------------------------------------------

    def place_limit(self, oid: Hashable, uid: Hashable, side: Side, price: Decimal,
                    quantity: Decimal, time_in_force: TimeInForce = TimeInForce.GTC,
                    post_only: bool = False,
                    stp: StpMode = StpMode.EXPIRE_TAKER) -> list[Event]:
        spec = self.spec
        ticks, lots = _ticks(price, spec.price_step), _ticks(quantity, spec.quantity_step)
        code = _code(ticks, price, spec.max_ticks, RejectCode.PRICE_OFF_TICK,
                     RejectCode.PRICE_NOT_POSITIVE)
        code = code or _code(lots, quantity, spec.max_lots, RejectCode.QUANTITY_OFF_LOT,
                             RejectCode.QUANTITY_NOT_POSITIVE)
        if code is None and any(o.order_id == oid for o in self.book):
            code = RejectCode.DUPLICATE_ORDER_ID
        if code is None and post_only:
            best = self._best(Side.SELL if side is Side.BUY else Side.BUY)
            if best is not None and self._crosses(side, ticks, best):
                code = RejectCode.POST_ONLY_WOULD_TAKE
        if code is not None:
            return [OrderRejected(oid, uid, code)]
        assert ticks is not None
        assert lots is not None
        events: list[Event] = [OrderAccepted(oid, uid, side, OrderType.LIMIT, ticks, lots,
                                             None, time_in_force, post_only)]
        if time_in_force is TimeInForce.FOK and self._fillable(uid, side, ticks, stp) < lots:
            events.append(OrderUpdated(oid, uid, side, OrderStatus.CANCELLED, 0, 0, lots,
                                       CancelReason.FOK_UNFILLABLE))
            return events
        left, filled, stop = self._match(oid, uid, side, ticks, lots, False, stp, events)
        if left == 0:
            events.append(OrderUpdated(oid, uid, side, OrderStatus.FILLED, filled, 0, 0, None))
        elif time_in_force is TimeInForce.GTC and stop != "self":
            self.book.append(Resting(oid, uid, side, ticks, lots, left))
            total, count = self._level(side, ticks)
            events.append(LevelChanged(self.seq + 1, side, ticks, total, count))
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
            events.append(OrderUpdated(oid, uid, side, status, filled, left, 0, None))
        else:
            if stop == "self":
                reason = CancelReason.SELF_TRADE
            elif time_in_force is TimeInForce.FOK:
                reason = CancelReason.FOK_UNFILLABLE
            else:
                reason = CancelReason.UNFILLED
            events.append(OrderUpdated(oid, uid, side, OrderStatus.CANCELLED, filled, 0, left,
                                       reason))
        self._commit(events)
        return events

    def place_market(self, oid: Hashable, uid: Hashable, side: Side,
                     quantity: Decimal | None = None, budget: Decimal | None = None,
                     stp: StpMode = StpMode.EXPIRE_TAKER) -> list[Event]:
        spec = self.spec
        if (quantity is None) == (budget is None) or (budget is not None and side is Side.SELL):
            return [OrderRejected(oid, uid, RejectCode.INVALID_NUMBER)]
        if quantity is not None:
            size = _ticks(quantity, spec.quantity_step)
            code = _code(size, quantity, spec.max_lots, RejectCode.QUANTITY_OFF_LOT,
                         RejectCode.QUANTITY_NOT_POSITIVE)
        else:
            size = _ticks(budget, Decimal(1).scaleb(-spec.quote_decimals))
            code = _code(size, budget, spec.max_budget, RejectCode.BUDGET_OFF_GRID,
                         RejectCode.QUANTITY_NOT_POSITIVE)
        if code is None and any(o.order_id == oid for o in self.book):
            code = RejectCode.DUPLICATE_ORDER_ID
        if code is not None:
            return [OrderRejected(oid, uid, code)]
        assert size is not None
        by_budget = budget is not None
        events: list[Event] = [OrderAccepted(
            oid, uid, side, OrderType.MARKET, None, 0 if by_budget else size,
            size if by_budget else None, TimeInForce.IOC, False)]
        left, filled, stop = self._match(oid, uid, side, None, size, by_budget, stp, events)
        if stop == "size" and filled:
            events.append(OrderUpdated(oid, uid, side, OrderStatus.FILLED, filled, 0, 0, None))
        else:
            reason = CancelReason.SELF_TRADE if stop == "self" else CancelReason.UNFILLED
            events.append(OrderUpdated(oid, uid, side, OrderStatus.CANCELLED, filled, 0,
                                       0 if by_budget else left, reason))
        self._commit(events)
        return events

    def cancel(self, oid: Hashable, uid: Hashable = None) -> list[Event]:
        mine = [o for o in self.book if o.order_id == oid and (uid is None or o.user_id == uid)]
        if not mine:
            return [OrderRejected(oid, uid, RejectCode.ORDER_NOT_FOUND)]
        o = mine[0]
        self.book.remove(o)
        total, count = self._level(o.side, o.price)
        self.seq += 1
        return [
            OrderUpdated(oid, o.user_id, o.side, OrderStatus.CANCELLED,
                         o.quantity - o.remaining, 0, o.remaining, CancelReason.USER),
            LevelChanged(self.seq, o.side, o.price, total, count),
        ]

    def _commit(self, events: list[Event]) -> None:
        if any(isinstance(e, LevelChanged) for e in events):
            self.seq += 1

    # -- queries -------------------------------------------------------------------------

    def would_self_cross(self, uid: Hashable, side: Side, price: int) -> bool:
        return any(o.user_id == uid and o.side is not side and self._crosses(side, price,
                                                                              o.price)
                   for o in self.book)

    def snapshot(self, depth: int = 20) -> BookSnapshot:
        def side_levels(side: Side) -> tuple[BookLevel, ...]:
            prices = sorted({o.price for o in self.book if o.side is side},
                            reverse=side is Side.BUY)[:max(depth, 0)]
            return tuple(BookLevel(p, *self._level(side, p)) for p in prices)

        return BookSnapshot(self.seq, side_levels(Side.BUY), side_levels(Side.SELL))
