"""Reading the durable state the actors are rebuilt from."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from excentra.db.database import Database
from excentra.db.eventlog import stored_result

log = logging.getLogger("excentra.db.state")


@dataclass(frozen=True, slots=True)
class AssetState:
    symbol: str
    decimals: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class PairState:
    id: uuid.UUID
    symbol: str
    base: str
    quote: str
    price_step: Decimal | None
    quantity_step: Decimal | None
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal
    is_active: bool
    book_seq: int
    """The seq of the last committed command that changed the pair's book (0: none)."""


@dataclass(frozen=True, slots=True)
class OpenOrderState:
    id: uuid.UUID
    user_id: uuid.UUID
    symbol: str
    side: str
    order_type: str
    price: Decimal
    quantity: Decimal
    remaining: Decimal
    reserved: Decimal
    seq: int
    client_order_id: str | None
    time_in_force: str
    post_only: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class State:
    assets: list[AssetState]
    pairs: list[PairState]
    balances: list[tuple[uuid.UUID, str, Decimal, Decimal]]
    open_orders: list[OpenOrderState]
    """Open and partially filled orders, in time priority (``seq``)."""
    pending_withdrawals: list[tuple[uuid.UUID, uuid.UUID, str, Decimal]]
    """(id, user, asset, amount + fee) of withdrawals still holding funds."""
    order_seq: int
    trade_seq: int
    chain_withdrawals: list[OpenWithdrawal] = field(default_factory=list)
    """On-chain withdrawals still holding funds (awaiting approval, queued, broadcast)."""
    credited_deposits: set[str] = field(default_factory=set)
    """Ids of chain deposits already credited (or credited and then reversed): the
    ledger refuses to credit one twice."""
    buy_fills: dict[uuid.UUID, list[tuple[Decimal, Decimal]]] = field(default_factory=dict)
    """(price, quantity) of every trade of each partly filled buy order on a pair with
    stored steps: its exact cost so far, which settlement's rounding rule continues from
    (``excentra.engine.precision``; pairs without stored steps never round)."""


@dataclass(frozen=True, slots=True)
class OpenWithdrawal:
    """What the ledger keeps of an on-chain withdrawal that still holds funds."""

    id: str
    user_id: str
    asset: str
    amount: Decimal
    fee: Decimal
    status: str


HOLDING_WITHDRAWALS = (
    "SELECT id, user_id, asset, amount, fee, status, chain FROM withdrawals "
    "WHERE status IN ('pending', 'pending_approval', 'queued', 'broadcast')")
"""The withdrawals that hold their amount + fee (the statuses in which they do)."""


async def load_state(db: Database) -> State:
    """Everything the core is rebuilt from (at start and after a failure); long on a big
    database, so it reports its progress."""
    started = time.monotonic()
    assets = [AssetState(r["symbol"], int(r["decimals"]), r["is_active"]) for r in
              await db.fetch_all("SELECT symbol, decimals, is_active FROM assets",
                                 types={"is_active": bool})]
    pairs = [PairState(**r) for r in await db.fetch_all(
        "SELECT id, symbol, base_asset AS base, quote_asset AS quote, price_step, "
        "quantity_step, maker_fee_rate, taker_fee_rate, is_active, book_seq "
        "FROM trading_pairs",
        types={"id": uuid.UUID, "price_step": Decimal, "quantity_step": Decimal,
               "maker_fee_rate": Decimal, "taker_fee_rate": Decimal, "is_active": bool,
               "book_seq": int})]
    balances = [(r["user_id"], r["asset"], r["available"], r["held"]) for r in
                await db.fetch_all("SELECT user_id, asset, available, held FROM balances",
                                   types={"user_id": uuid.UUID, "available": Decimal,
                                          "held": Decimal})]
    log.info("loading state: balances read; reading open orders",
             extra={"assets": len(assets), "pairs": len(pairs), "balances": len(balances),
                    "elapsed_seconds": round(time.monotonic() - started, 3)})
    orders = [OpenOrderState(**r) for r in await db.fetch_all(
        "SELECT o.id, o.user_id, p.symbol, o.side, o.order_type, o.price, o.quantity, "
        "o.remaining_quantity AS remaining, o.reserved, o.seq, o.client_order_id, "
        "o.time_in_force, o.post_only, o.created_at FROM orders o "
        "JOIN trading_pairs p ON p.id = o.pair_id "
        "WHERE o.status IN ('open', 'partially_filled') ORDER BY o.seq",
        types={"id": uuid.UUID, "user_id": uuid.UUID, "price": Decimal,
               "quantity": Decimal, "remaining": Decimal, "reserved": Decimal,
               "post_only": bool, "created_at": datetime})]
    holding = await db.fetch_all(HOLDING_WITHDRAWALS, types={
        "id": uuid.UUID, "user_id": uuid.UUID, "amount": Decimal, "fee": Decimal})
    withdrawals = [(r["id"], r["user_id"], r["asset"], r["amount"] + r["fee"])
                   for r in holding]
    chain_withdrawals = [OpenWithdrawal(str(r["id"]), str(r["user_id"]), r["asset"],
                                        r["amount"], r["fee"], r["status"])
                         for r in holding if r["chain"] is not None]
    credited = {str(r["id"]) for r in await db.fetch_all(
        "SELECT id FROM chain_deposits WHERE status IN ('credited', 'reversed')")}
    seqs: dict[str, Any] = await db.fetch_one(
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM orders) AS order_seq, "
        "(SELECT COALESCE(MAX(seq), 0) FROM trades) AS trade_seq") or {}
    state = State(assets, pairs, balances, orders, withdrawals,
                  int(seqs.get("order_seq") or 0), int(seqs.get("trade_seq") or 0),
                  chain_withdrawals, credited, await _buy_fills(db))
    log.info("loading state: done", extra={
        "open_orders": len(orders), "pending_withdrawals": len(withdrawals),
        "elapsed_seconds": round(time.monotonic() - started, 3)})
    return state


BUY_FILLS = (
    "SELECT t.buy_order_id, t.price, t.quantity FROM orders o "
    "JOIN trading_pairs p ON p.id = o.pair_id "
    # through the buyer's trades (an index), not a scan of all trades for the order id
    "JOIN trades t ON t.buyer_user_id = o.user_id AND t.buy_order_id = o.id "
    "WHERE o.side = 'buy' AND o.status = 'partially_filled' "
    "AND p.price_step IS NOT NULL AND p.quantity_step IS NOT NULL")


async def _buy_fills(db: Database) -> dict[uuid.UUID, list[tuple[Decimal, Decimal]]]:
    fills: dict[uuid.UUID, list[tuple[Decimal, Decimal]]] = {}
    for r in await db.fetch_all(BUY_FILLS, types={"buy_order_id": uuid.UUID,
                                                  "price": Decimal, "quantity": Decimal}):
        fills.setdefault(r["buy_order_id"], []).append((r["price"], r["quantity"]))
    return fills


def _in_list(prefix: str, count: int) -> tuple[str, list[str]]:
    names = [f"{prefix}{i}" for i in range(count)]
    return ", ".join(f":{n}" for n in names), names


async def command_results(db: Database, command_ids: list[str]) -> list[tuple[str, str]]:
    """``(command_id, stored result)`` for those of ``command_ids`` already committed:
    in the event log (durable, maybe not projected yet) or in ``commands`` (projected;
    the log may have been truncated behind it)."""
    placeholders, names = _in_list("c", len(command_ids))
    rows = await db.fetch_all(
        f"SELECT command_id, result, NULL AS body FROM commands "  # noqa: S608 (placeholders only)
        f"WHERE command_id IN ({placeholders}) UNION ALL "
        f"SELECT command_id, NULL AS result, body FROM event_log "
        f"WHERE command_id IN ({placeholders})",
        dict(zip(names, command_ids, strict=True)))
    found: dict[str, str] = {}
    for r in rows:
        if r["command_id"] not in found:
            found[r["command_id"]] = (str(r["result"]) if r["body"] is None
                                      else stored_result(bytes(r["body"])))
    return list(found.items())


async def open_levels(db: Database, symbol: str
                      ) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """The book as the database says it is: the pair's open orders aggregated per price,
    ``{"bids": [(price, quantity), ...best first], "asks": [...]}``. Used to check that a
    book rebuilt in memory equals what is stored."""
    rows = await db.fetch_all(
        "SELECT o.side, o.price, o.remaining_quantity FROM orders o JOIN trading_pairs p "
        "ON p.id = o.pair_id WHERE p.symbol = :s AND o.status IN ('open', "
        "'partially_filled')", {"s": symbol},
        types={"price": Decimal, "remaining_quantity": Decimal})
    sides: dict[str, dict[Decimal, Decimal]] = {"buy": {}, "sell": {}}
    for r in rows:
        level = sides[r["side"]]
        level[r["price"]] = level.get(r["price"], Decimal(0)) + r["remaining_quantity"]
    return {name: sorted(sides[side].items(), reverse=side == "buy")
            for name, side in (("bids", "buy"), ("asks", "sell"))}
