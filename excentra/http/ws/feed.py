"""Committed commands → the original's WebSocket events, in its order (reference §3.7):
per trade a ``trade`` then the maker's ``order_status``; then the taker's
``order_status``; then one ``order_book`` snapshot if the book changed. A cancel gives the
cancelled order's ``order_status`` and the ``order_book``.

The feed also keeps what those events need and the engine's events do not carry: a mirror
of each book (for snapshots and ``seq``), the 24 h ticker window of each pair, and the
price/side/type of every resting order (a maker's update names only its id). All of it is
built from committed data only, loaded from the database at start (each mirror's ``seq``
from its pair's stored ``book_seq``, so it never goes back across a restart).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from excentra.actors.journal import Commit
from excentra.engine import (
    LevelChanged,
    OrderAccepted,
    OrderStatus,
    OrderUpdated,
    Side,
    TradeExecuted,
)
from excentra.engine.precision import PairSpec, plain
from excentra.http.render import ts
from excentra.http.ws import channels as ch
from excentra.market import BookMirror, Ticker24h, TickerStats

BOOK_DEPTH = 20
"""Levels per side in an ``order_book`` event (the original's)."""

Routed = tuple[str, dict[str, Any]]
"""A channel name and the event's ``data``."""


@dataclass(frozen=True, slots=True)
class Resting:
    """What an ``order_status`` of a resting order needs beyond the engine's update."""

    symbol: str
    side: str
    order_type: str
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An open order as loaded at start."""

    order_id: str
    symbol: str
    side: str
    price: Decimal
    remaining: Decimal


class Feed:
    def __init__(self, lookup: Callable[[str], PairSpec | None] = lambda _symbol: None
                 ) -> None:
        self.lookup = lookup
        """Finds the grid of a pair added after start."""
        self.specs: dict[str, PairSpec] = {}
        self.mirrors: dict[str, BookMirror] = {}
        self.tickers: dict[str, Ticker24h] = {}
        self.resting: dict[str, Resting] = {}

    # -- loading ------------------------------------------------------------------------

    def add_pair(self, spec: PairSpec) -> None:
        if spec.symbol not in self.specs:
            self.specs[spec.symbol] = spec
            self.mirrors[spec.symbol] = BookMirror(spec)
            self.tickers[spec.symbol] = Ticker24h()

    def load_orders(self, orders: list[OpenOrder]) -> None:
        for o in orders:
            spec = self.specs.get(o.symbol)
            if spec is None:
                continue
            ticks, lots = spec.to_ticks(o.price), spec.to_lots(o.remaining)
            if ticks is None or lots is None:
                raise ValueError(f"open order {o.order_id} is off its pair's grid")
            self.mirrors[o.symbol].load([(Side(o.side), ticks, lots)])
            self.resting[o.order_id] = Resting(o.symbol, o.side, "limit", o.price)

    def load_seqs(self, seqs: Mapping[str, int]) -> None:
        """Each pair's stored ``book_seq`` (symbol → seq), before any command is applied."""
        for symbol, seq in seqs.items():
            mirror = self.mirrors.get(symbol)
            if mirror is not None:
                mirror.seq = seq

    def knows(self, symbol: str) -> bool:
        """Whether the pair is followed; a pair added since start is taken on here (its
        mirror starts empty at seq 0: a new pair has no orders before its first commit)."""
        if symbol not in self.specs:
            found = self.lookup(symbol)
            if found is None:
                return False
            self.add_pair(found)
        return True

    # -- reading ------------------------------------------------------------------------

    def book_event(self, symbol: str) -> dict[str, Any]:
        mirror = self.mirrors[symbol]
        return {"type": ch.ORDER_BOOK_EVENT, "symbol": symbol, "seq": mirror.seq,
                "snapshot": mirror.snapshot(BOOK_DEPTH)}

    def ticker(self, symbol: str, now_second: int) -> TickerStats | None:
        window = self.tickers.get(symbol)
        return None if window is None else window.stats(now_second)

    # -- translating --------------------------------------------------------------------

    def translate(self, commit: Commit) -> list[Routed]:
        symbol = commit.symbol
        if symbol is None or not commit.events or not self.knows(symbol):
            return []
        spec = self.specs[symbol]
        at = commit.writes.at
        taker = _taker(commit)
        out: list[Routed] = []
        changes: list[LevelChanged] = []
        mine: OrderUpdated | None = None
        for e in commit.events:
            if isinstance(e, TradeExecuted):
                out.append(self._trade(symbol, spec, e, at))
            elif isinstance(e, OrderUpdated):
                if taker is not None and e.order_id == taker.order_id:
                    mine = e
                else:
                    out.append(self._status(spec, e, self.resting.get(str(e.order_id))))
            elif isinstance(e, LevelChanged):
                changes.append(e)
        if mine is not None and taker is not None:
            out.append(self._taker_status(symbol, commit, mine, taker))
        if self.mirrors[symbol].apply(changes):
            out.append((f"{ch.ORDERBOOK}:{symbol}", self.book_event(symbol)))
        return out

    def _trade(self, symbol: str, spec: PairSpec, e: TradeExecuted, at: datetime) -> Routed:
        price, quantity = spec.price(e.price), spec.quantity(e.quantity)
        self.tickers[symbol].add(int(at.timestamp()), price, quantity)
        return (f"{ch.TRADES}:{symbol}", {
            "type": ch.TRADE_EVENT, "symbol": symbol, "price": plain(price),
            "quantity": plain(quantity), "taker_side": e.taker_side.value,
            "created_at": ts(at)})

    def _status(self, spec: PairSpec, u: OrderUpdated, info: Resting | None) -> Routed:
        order_id = str(u.order_id)
        if u.status in (OrderStatus.FILLED, OrderStatus.CANCELLED):
            self.resting.pop(order_id, None)
        remaining = u.cancelled if u.status is OrderStatus.CANCELLED else u.remaining
        return (f"{ch.ORDERS}:{u.user_id}", {
            "type": ch.ORDER_STATUS_EVENT, "user_id": str(u.user_id), "order_id": order_id,
            "status": u.status.value,
            "quantity": plain(spec.quantity(u.filled + u.remaining + u.cancelled)),
            "remaining_quantity": plain(spec.quantity(remaining)),
            "symbol": info.symbol if info else spec.symbol,
            "side": info.side if info else u.side.value,
            "order_type": info.order_type if info else "limit",
            "price": plain(info.price) if info and info.price is not None else None})

    def _taker_status(self, symbol: str, commit: Commit, u: OrderUpdated,
                      accepted: OrderAccepted) -> Routed:
        row = commit.writes.orders[0]  # the placed order, with the API's quantities
        if u.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
            self.resting[str(row.id)] = Resting(symbol, row.side, row.order_type, row.price)
        return (f"{ch.ORDERS}:{u.user_id}", {
            "type": ch.ORDER_STATUS_EVENT, "user_id": str(u.user_id),
            "order_id": str(row.id), "status": row.status,
            "quantity": plain(row.quantity),
            "remaining_quantity": plain(row.remaining_quantity), "symbol": symbol,
            "side": accepted.side.value, "order_type": accepted.order_type.value,
            "price": None if row.price is None else plain(row.price)})


def _taker(commit: Commit) -> OrderAccepted | None:
    """The placed order of a placement (``None`` for a cancel)."""
    if not commit.writes.orders:
        return None
    first = commit.events[0]
    return first if isinstance(first, OrderAccepted) else None
