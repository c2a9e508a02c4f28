"""Turning one command into the journal's ``Writes`` and the caller's result (the answer
as the API shows it, also stored for a replay).

Pure functions: the ledger actor calls them after settling, with the pair's terms.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from excentra.db.records import (
    AssetRow,
    DepositChange,
    MovementRow,
    OrderChange,
    OrderRow,
    PairRow,
    TradeRow,
    WithdrawalChange,
    WithdrawalRow,
    Writes,
)
from excentra.engine import Event, LevelChanged, OrderStatus, OrderUpdated, Side
from excentra.engine.precision import plain
from excentra.ledger import Movement, PairTerms, SettledTrade
from excentra.ledger.clearing import Clearing, OpenedOrder
from excentra.timefmt import api_time

Result = dict[str, Any]


def _stored(result: Result) -> str:
    """The answer as stored for a retry (JSON; orjson: ~1 µs where ``json.dumps`` took
    ~8, 11 % of the ledger's time in ``excentra bench pipeline``)."""
    return orjson.dumps(result).decode()

_as_uuid = functools.lru_cache(maxsize=65536)(uuid.UUID)
"""Ids travel as strings; users' and resting orders' ids recur in every command. A new
order's and a trade's own ids are parsed without it: each is seen once, and caching them
only evicted the ones that recur."""


def movement_rows(movements: Iterable[Movement]) -> tuple[MovementRow, ...]:
    return tuple(MovementRow(_as_uuid(m.user_id), m.asset, m.available, m.held, m.kind,
                             None if m.ref is None else _as_uuid(str(m.ref)))
                 for m in movements)


def _reserved(clearing: Clearing, pair: PairTerms, order_id: Hashable, side: Side) -> Decimal:
    asset = pair.quote if side is Side.BUY else pair.base
    return clearing.amount(asset, clearing.ledger.reserved(order_id))


def _last_updates(events: Iterable[Event]) -> dict[Hashable, OrderUpdated]:
    last: dict[Hashable, OrderUpdated] = {}
    for e in events:
        if isinstance(e, OrderUpdated):
            last[e.order_id] = e
    return last


def _book(pair_id: uuid.UUID, events: list[Event]) -> tuple[uuid.UUID, int] | None:
    """``(pair id, the book's new seq)`` if the command changed a level (every
    ``LevelChanged`` of one command carries the same seq; they sit near the end)."""
    for e in reversed(events):
        if isinstance(e, LevelChanged):
            return pair_id, e.seq
    return None


def placement(clearing: Clearing, pair_id: uuid.UUID, opened: OpenedOrder, seq: int,
              events: list[Event], movements: list[Movement], trades: list[SettledTrade],
              trade_seq: int, command_id: str, at: datetime) -> tuple[Writes, Result]:
    """The writes and result of a placed order (its own row, makers' changes, trades)."""
    order, pair = opened.order, clearing.pairs[opened.order.symbol]
    spec = pair.spec
    updates = _last_updates(events)
    mine = updates[order.order_id]
    if opened.budget is not None:  # market buy: quantity is the budget (the original's way)
        spent = sum(t.quote for t in trades if t.buy_order_id == order.order_id)
        quantity = spec.quote_amount(opened.budget)
        remaining = spec.quote_amount(opened.budget - spent)
    else:
        quantity = spec.quantity(opened.lots or 0)
        # A cancelled order keeps its unfilled part on record (the original's behaviour).
        remaining = spec.quantity(mine.cancelled if mine.status is OrderStatus.CANCELLED
                                  else mine.remaining)
    row = OrderRow(
        uuid.UUID(order.order_id), _as_uuid(order.user_id), pair_id, order.client_order_id,
        order.side.value, order.order_type.value, order.time_in_force.value, order.post_only,
        # at the pair's scale ("500.00"), as the book and trades show it, not as typed
        spec.price(opened.ticks) if opened.ticks is not None else None, quantity, remaining,
        spec.quantity(mine.filled), _reserved(clearing, pair, order.order_id, order.side),
        mine.status.value, seq, at)
    changes = tuple(_change(clearing, pair, u, at) for oid, u in updates.items()
                    if oid != order.order_id)
    trade_rows = tuple(_trade_row(pair, pair_id, t, trade_seq + i, at)
                       for i, t in enumerate(trades))
    result: Result = {
        "order_id": order.order_id,
        "status": mine.status.value,
        "filled_quantity": plain(spec.quantity(mine.filled)),
        "remaining_quantity": "0" if opened.budget is not None else plain(remaining),
        "trades": [{"price": plain(spec.price(t.event.price)),
                    "quantity": plain(spec.quantity(t.event.quantity))} for t in trades],
    }
    writes = Writes(command_id, "place_order", _as_uuid(order.user_id), _stored(result),
                    at, orders=(row,), order_changes=changes, trades=trade_rows,
                    movements=movement_rows(movements), book=_book(pair_id, events))
    return writes, result


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """What the ledger keeps of an order resting on a book: where it is, whose it is, and
    what a cancel's answer shows of it."""

    symbol: str
    user_id: str
    side: str
    order_type: str
    price: Decimal | None
    quantity: Decimal
    client_order_id: str | None
    time_in_force: str
    post_only: bool
    created_at: datetime

    @classmethod
    def of(cls, symbol: str, row: OrderRow) -> OpenOrder:
        return cls(symbol, str(row.user_id), row.side, row.order_type, row.price,
                   row.quantity, row.client_order_id, row.time_in_force, row.post_only,
                   row.created_at)


def cancellation(clearing: Clearing, order: OpenOrder, pair_id: uuid.UUID, user_id: str,
                 events: list[Event], movements: list[Movement], command_id: str,
                 at: datetime) -> tuple[Writes, Result]:
    """The writes of a cancel, and its answer: the cancelled order as ``GET /orders/{id}``
    shows it (its unfilled part kept as ``remaining_quantity``, the original's way)."""
    pair = clearing.pairs[order.symbol]
    spec = pair.spec
    updates = _last_updates(events)
    changes = tuple(_change(clearing, pair, u, at) for u in updates.values())
    cancelled = next(iter(updates.values()))
    result: Result = {
        "id": str(cancelled.order_id), "symbol": order.symbol, "side": order.side,
        "order_type": order.order_type,
        "price": None if order.price is None else plain(order.price),
        "quantity": plain(order.quantity),
        "remaining_quantity": plain(spec.quantity(cancelled.cancelled)),
        "filled_quantity": plain(spec.quantity(cancelled.filled)),
        "status": cancelled.status.value, "client_order_id": order.client_order_id,
        "time_in_force": order.time_in_force, "post_only": order.post_only,
        "created_at": api_time(order.created_at), "updated_at": api_time(at)}
    writes = Writes(command_id, "cancel_order", _as_uuid(user_id), _stored(result), at,
                    order_changes=changes, movements=movement_rows(movements),
                    book=_book(pair_id, events))
    return writes, result


def _change(clearing: Clearing, pair: PairTerms, u: OrderUpdated, at: datetime) -> OrderChange:
    spec = pair.spec
    # A cancelled order keeps its remaining quantity on record (the original's behaviour).
    remaining = u.cancelled if u.status is OrderStatus.CANCELLED else u.remaining
    return OrderChange(_as_uuid(str(u.order_id)), spec.quantity(remaining),
                       spec.quantity(u.filled), _reserved(clearing, pair, u.order_id, u.side),
                       u.status.value, at)


def _trade_row(pair: PairTerms, pair_id: uuid.UUID, t: SettledTrade, seq: int,
               at: datetime) -> TradeRow:
    spec, e = pair.spec, t.event
    buyer_fee, seller_fee = spec.base_amount(t.buyer_fee), spec.quote_amount(t.seller_fee)
    maker_is_buyer = e.taker_side is Side.SELL
    return TradeRow(
        uuid.UUID(t.trade_id), pair_id, _as_uuid(str(t.buy_order_id)),
        _as_uuid(str(t.sell_order_id)), _as_uuid(t.buyer_id), _as_uuid(t.seller_id),
        spec.price(e.price), spec.quantity(e.quantity), spec.quote_amount(t.quote),
        e.taker_side.value, buyer_fee if maker_is_buyer else seller_fee,
        seller_fee if maker_is_buyer else buyer_fee, seq, at)


def transfer(clearing: Clearing, command_id: str, kind: str, user_id: str, asset: str,
             moved: list[Movement], extra: Result,
             withdrawals: tuple[WithdrawalRow, ...] = ()) -> tuple[Writes, Result]:
    """A deposit or a withdrawal request: its answer shows the balance after it."""
    b = clearing.ledger.balance(user_id, asset)
    result = {**extra, "asset": asset, "available": plain(clearing.amount(asset, b.available)),
              "held": plain(clearing.amount(asset, b.held))}
    writes = Writes(command_id, kind, _as_uuid(user_id), _stored(result),
                    datetime.now(UTC), movements=movement_rows(moved), withdrawals=withdrawals)
    return writes, result


def withdrawal_settled(command_id: str, withdrawal_id: str, user_id: str, asset: str,
                       amount: Decimal, sent: bool, tx_hash: str | None,
                       moved: list[Movement]) -> tuple[Writes, Result]:
    """A pending withdrawal that left (``sent``) or will not (its funds released)."""
    at = datetime.now(UTC)
    status = "confirmed" if sent else "cancelled"
    change = WithdrawalChange(uuid.UUID(withdrawal_id), status, tx_hash, at)
    result = {"id": withdrawal_id, "status": status, "asset": asset, "amount": plain(amount)}
    writes = Writes(command_id, "settle_withdrawal", _as_uuid(user_id), _stored(result),
                    at, movements=movement_rows(moved), withdrawal_changes=(change,))
    return writes, result


def asset_added(command_id: str, row: AssetRow) -> tuple[Writes, Result]:
    """A new asset; its answer is the asset as ``GET /assets`` shows it."""
    result = {"id": str(row.id), "symbol": row.symbol, "name": row.name,
              "decimals": row.decimals, "is_active": True, "coingecko_id": row.coingecko_id,
              "created_at": api_time(row.created_at)}
    return Writes(command_id, "add_asset", None, _stored(result), row.created_at,
                  assets=(row,)), result


def pair_added(command_id: str, row: PairRow, terms: PairTerms) -> tuple[Writes, Result]:
    """A new pair; its answer is the pair as ``GET /pairs`` shows it (with its grid).

    The row stores the grid the pair trades on, also when the admin gave no steps: what
    a pair without steps gets may change, a listed pair's grid must not.
    """
    spec = terms.spec
    row = replace(row, price_step=spec.price_step, quantity_step=spec.quantity_step)
    result = {"id": str(row.id), "base_asset": terms.base, "quote_asset": terms.quote,
              "symbol": row.symbol, "is_active": True, "created_at": api_time(row.created_at),
              "price_step": plain(spec.price_step), "quantity_step": plain(spec.quantity_step)}
    return Writes(command_id, "add_pair", None, _stored(result), row.created_at,
                  pairs=(row,)), result


def chain_credit(clearing: Clearing, command_id: str, user_id: str, asset: str,
                 moved: list[Movement], change: DepositChange) -> tuple[Writes, Result]:
    """A chain deposit credited: the balance after it, and the deposit marked credited
    in the same transaction (so the two can never disagree)."""
    b = clearing.ledger.balance(user_id, asset)
    result = {"id": str(change.id), "status": change.status, "asset": asset,
              "available": plain(clearing.amount(asset, b.available)),
              "held": plain(clearing.amount(asset, b.held))}
    return Writes(command_id, "chain_deposit", _as_uuid(user_id), _stored(result),
                  change.updated_at, movements=movement_rows(moved),
                  deposit_changes=(change,)), result


def withdrawal_update(command_id: str, kind: str, user_id: str, result: Result, at: datetime,
                      moved: list[Movement] | None = None, *,
                      withdrawals: tuple[WithdrawalChange, ...] = (),
                      deposits: tuple[DepositChange, ...] = ()) -> tuple[Writes, Result]:
    """A custody status change (and the balance movements it makes, if any)."""
    return Writes(command_id, kind, _as_uuid(user_id), _stored(result), at,
                  movements=movement_rows(moved or ()), withdrawal_changes=withdrawals,
                  deposit_changes=deposits), result
