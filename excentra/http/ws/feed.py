"""Committed commands → the original's WebSocket events, in its order (reference §3.7):
per trade a ``trade`` then the maker's ``order_status``; then the taker's
``order_status``; then one ``order_book`` snapshot if the book changed. A cancel gives the
cancelled order's ``order_status`` and the ``order_book``.

What those events need and the engine's events do not carry (book mirrors, ticker
windows, resting orders' details) is the ``MarketView`` (``excentra/market/view.py``),
which the REST market-data routes read too; the feed advances it as it translates.

Custody commands (a chain deposit credited or reversed, an on-chain withdrawal requested,
reviewed, sent or settled) go to their user's private channel as ``deposit_update`` /
``withdrawal_update`` events whose ``data`` is the command's result, as stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from excentra.actors.journal import Commit
from excentra.engine import (
    LevelChanged,
    OrderAccepted,
    OrderStatus,
    OrderUpdated,
    TradeExecuted,
)
from excentra.engine.precision import PairSpec, plain
from excentra.http.render import ts
from excentra.http.ws import channels as ch
from excentra.market.view import MarketView, Resting

BOOK_DEPTH = 20
"""Levels per side in an ``order_book`` event (the original's)."""

Routed = tuple[str, dict[str, Any]]
"""A channel name and the event's ``data``."""

DEPOSIT_KINDS = frozenset({"chain_deposit", "deposit_reversed"})
WITHDRAWAL_KINDS = frozenset({"review_withdrawal", "withdrawal_sent", "withdrawal_done"})
ON_CHAIN_REQUESTED = frozenset({"queued", "pending_approval"})
"""A ``withdraw`` command's statuses when it is on chain (a simulated one is ``pending``
or, at once, ``confirmed``: those have no event, as before)."""


class Feed:
    """Translates committed commands into events, advancing the ``MarketView`` as it goes
    (it is the view's only writer)."""

    def __init__(self, view: MarketView) -> None:
        self.view = view

    def book_event(self, symbol: str) -> dict[str, Any]:
        mirror = self.view.mirrors[symbol]
        return {"type": ch.ORDER_BOOK_EVENT, "symbol": symbol, "seq": mirror.seq,
                "snapshot": mirror.snapshot(BOOK_DEPTH)}

    # -- translating --------------------------------------------------------------------

    def translate(self, commit: Commit) -> list[Routed]:
        custody = _custody(commit)
        if custody is not None:
            return [custody]
        symbol = commit.symbol
        view = self.view
        if symbol is None or not commit.events or not view.knows(symbol):
            return []
        spec = view.specs[symbol]
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
                    out.append(self._status(spec, e, view.resting.get(str(e.order_id))))
            elif isinstance(e, LevelChanged):
                changes.append(e)
        if mine is not None and taker is not None:
            out.append(self._taker_status(symbol, commit, mine, taker))
        if view.mirrors[symbol].apply(changes):
            out.append((f"{ch.ORDERBOOK}:{symbol}", self.book_event(symbol)))
        return out

    def _trade(self, symbol: str, spec: PairSpec, e: TradeExecuted, at: datetime) -> Routed:
        price, quantity = spec.price(e.price), spec.quantity(e.quantity)
        self.view.tickers[symbol].add(int(at.timestamp()), price, quantity)
        return (f"{ch.TRADES}:{symbol}", {
            "type": ch.TRADE_EVENT, "symbol": symbol, "price": plain(price),
            "quantity": plain(quantity), "taker_side": e.taker_side.value,
            "created_at": ts(at)})

    def _status(self, spec: PairSpec, u: OrderUpdated, info: Resting | None) -> Routed:
        order_id = str(u.order_id)
        if u.status in (OrderStatus.FILLED, OrderStatus.CANCELLED):
            self.view.resting.pop(order_id, None)
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
            self.view.resting[str(row.id)] = Resting(symbol, row.side, row.order_type,
                                                     row.price)
        return (f"{ch.ORDERS}:{u.user_id}", {
            "type": ch.ORDER_STATUS_EVENT, "user_id": str(u.user_id),
            "order_id": str(row.id), "status": row.status,
            "quantity": plain(row.quantity),
            "remaining_quantity": plain(row.remaining_quantity), "symbol": symbol,
            "side": accepted.side.value, "order_type": accepted.order_type.value,
            "price": None if row.price is None else plain(row.price)})


def _custody(commit: Commit) -> Routed | None:
    """The private event of a custody command (``None``: not one)."""
    writes, result = commit.writes, commit.result
    if writes.user_id is None or not isinstance(result, dict):
        return None
    if writes.kind in DEPOSIT_KINDS:
        kind = ch.DEPOSIT_UPDATE_EVENT
    elif writes.kind in WITHDRAWAL_KINDS or (
            writes.kind == "withdraw" and result.get("status") in ON_CHAIN_REQUESTED):
        kind = ch.WITHDRAWAL_UPDATE_EVENT
    else:
        return None
    return f"{ch.ORDERS}:{writes.user_id}", {"type": kind, "data": result}


def _taker(commit: Commit) -> OrderAccepted | None:
    """The placed order of a placement (``None`` for a cancel)."""
    if not commit.writes.orders:
        return None
    first = commit.events[0]
    return first if isinstance(first, OrderAccepted) else None
