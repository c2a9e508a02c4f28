"""Read-only market data queries: trades, the 24h ticker, candles, pairs and assets.

Decimals are TEXT on SQLite and timestamps TEXT there too, so nothing here aggregates in
SQL (``MIN``/``MAX``/``SUM`` over TEXT would compare and add as strings): rows come from an
indexed range query (``idx_trades_pair_created``) and are folded in Python, exactly, with
``Decimal`` in the engine's wide context. Timestamps travel as aware ``datetime``
parameters; the database layer encodes them per dialect.

Trades of one command share ``created_at``; the global trade ``seq`` breaks those ties, so
"newest first" is ``created_at DESC, seq DESC`` everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from excentra.db.database import Database, Row
from excentra.engine.precision import EXACT

TRADE_TYPES = {"id": uuid.UUID, "price": Decimal, "quantity": Decimal,
               "created_at": datetime}
_TRADE_TYPES_SEQ = {**TRADE_TYPES, "seq": int}
PAIR_TYPES = {"id": uuid.UUID, "is_active": bool, "price_step": Decimal,
              "quantity_step": Decimal, "created_at": datetime, "base_decimals": int,
              "quote_decimals": int}
ASSET_TYPES = {"id": uuid.UUID, "is_active": bool, "decimals": int, "created_at": datetime}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANDLE_PAGE = 2000
"""Trades read per query while collecting candles (newest first, keyset-paged)."""


# -- trades ---------------------------------------------------------------------------------


async def recent_trades(db: Database, pair_id: uuid.UUID, limit: int) -> list[Row]:
    """The pair's latest ``limit`` trades, newest first."""
    return await db.fetch_all(
        "SELECT id, price, quantity, taker_side, created_at FROM trades "
        "WHERE pair_id = :pair_id ORDER BY created_at DESC, seq DESC LIMIT :limit",
        {"pair_id": pair_id, "limit": limit}, types=TRADE_TYPES)


async def user_trades(db: Database, user_id: uuid.UUID, *, pair_id: uuid.UUID | None = None,
                      page: int = 1, limit: int = 20,
                      descending: bool = True) -> tuple[list[Row], int]:
    """One page of the trades where the user bought or sold, and the count of all of them.

    ``side`` is the user's side; were the user on both sides it reads "buy" (the original
    reports by the buy order; self-trades are prevented, so this cannot happen).
    """
    where = "(t.buyer_user_id = :user_id OR t.seller_user_id = :user_id)"
    values: dict[str, Any] = {"user_id": user_id}
    if pair_id is not None:
        where += " AND t.pair_id = :pair_id"
        values["pair_id"] = pair_id
    total = await db.fetch_val(f"SELECT COUNT(*) FROM trades t WHERE {where}",  # noqa: S608
                               values, as_type=int)
    direction = "DESC" if descending else "ASC"
    rows = await db.fetch_all(
        "SELECT t.id, p.symbol, t.price, t.quantity, t.created_at, "  # noqa: S608
        "CASE WHEN t.buyer_user_id = :user_id THEN 'buy' ELSE 'sell' END AS side "
        "FROM trades t JOIN trading_pairs p ON p.id = t.pair_id "
        f"WHERE {where} ORDER BY t.created_at {direction}, t.seq {direction} "
        "LIMIT :limit OFFSET :offset",
        {**values, "limit": limit, "offset": (page - 1) * limit}, types=TRADE_TYPES)
    return rows, int(total or 0)


def _total(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


# -- candles --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candle:
    time: int
    """Bucket start, unix seconds: ``floor(t / interval) × interval``."""
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    """Sum of the bucket's trade quantities, in base units."""


def bucket_of(at: datetime, interval: int) -> int:
    """The start (unix seconds) of the ``interval``-second bucket holding ``at``; integer
    arithmetic on timedeltas, no float seconds."""
    return (at - _EPOCH) // timedelta(seconds=interval) * interval


async def candles(db: Database, pair_id: uuid.UUID, interval: int, limit: int) -> list[Candle]:
    """OHLCV of the most recent ``limit`` buckets that had trades, oldest first.

    Trades are read newest first a page at a time; a bucket is complete once a trade of
    an older bucket shows up, so reading stops when ``limit + 1`` buckets have been seen.
    """
    buckets: dict[int, list[Row]] = {}  # insertion order: newest bucket first
    cursor: Row | None = None
    while len(buckets) <= limit:
        page = await _trades_before(db, pair_id, cursor)
        for row in page:
            buckets.setdefault(bucket_of(row["created_at"], interval), []).append(row)
        if len(page) < _CANDLE_PAGE:
            break
        cursor = page[-1]
    newest = list(buckets.items())[:limit]
    return [_candle(start, rows[::-1]) for start, rows in reversed(newest)]


async def _trades_before(db: Database, pair_id: uuid.UUID, cursor: Row | None) -> list[Row]:
    """The next page of the pair's trades, newest first, strictly older than ``cursor``."""
    values: dict[str, Any] = {"pair_id": pair_id, "limit": _CANDLE_PAGE}
    where = "pair_id = :pair_id"
    if cursor is not None:
        where += (" AND (created_at < :at OR (created_at = :at AND seq < :seq))")
        values.update(at=cursor["created_at"], seq=cursor["seq"])
    return await db.fetch_all(
        f"SELECT id, price, quantity, created_at, seq FROM trades WHERE {where} "  # noqa: S608
        "ORDER BY created_at DESC, seq DESC LIMIT :limit", values, types=_TRADE_TYPES_SEQ)


def _candle(start: int, rows: list[Row]) -> Candle:
    """One bucket from its trades in trade order (oldest first)."""
    prices = [r["price"] for r in rows]
    return Candle(start, prices[0], max(prices), min(prices), prices[-1],
                  _total(r["quantity"] for r in rows))


# -- pairs and assets -----------------------------------------------------------------------

_PAIR_SELECT = (
    "SELECT p.id, p.base_asset, p.quote_asset, p.symbol, p.is_active, p.price_step, "
    "p.quantity_step, p.created_at, b.decimals AS base_decimals, "
    "q.decimals AS quote_decimals FROM trading_pairs p "
    "JOIN assets b ON b.symbol = p.base_asset JOIN assets q ON q.symbol = p.quote_asset")


async def list_pairs(db: Database, active: bool | None = None) -> list[Row]:
    """Trading pairs (all, or only active / inactive ones), oldest first; each row also
    carries its assets' decimals (for the default grid)."""
    if active is None:
        return await db.fetch_all(f"{_PAIR_SELECT} ORDER BY p.created_at, p.symbol",
                                  types=PAIR_TYPES)
    return await db.fetch_all(
        f"{_PAIR_SELECT} WHERE p.is_active = :active ORDER BY p.created_at, p.symbol",
        {"active": active}, types=PAIR_TYPES)


async def pair_by_symbol(db: Database, symbol: str) -> Row | None:
    return await db.fetch_one(f"{_PAIR_SELECT} WHERE p.symbol = :symbol", {"symbol": symbol},
                              types=PAIR_TYPES)


async def set_pair_active(db: Database, symbol: str, active: bool) -> bool:
    """Open or halt a pair's trading; ``False`` for an unknown pair."""
    found = await db.fetch_val(
        "UPDATE trading_pairs SET is_active = :active WHERE symbol = :symbol RETURNING id",
        {"active": active, "symbol": symbol})
    return found is not None


_ASSET_SELECT = ("SELECT id, symbol, name, decimals, is_active, coingecko_id, created_at "
                 "FROM assets")


async def list_assets(db: Database) -> list[Row]:
    """Every asset, active or not, oldest first."""
    return await db.fetch_all(f"{_ASSET_SELECT} ORDER BY created_at, symbol",
                              types=ASSET_TYPES)


async def asset_by_symbol(db: Database, symbol: str) -> Row | None:
    return await db.fetch_one(f"{_ASSET_SELECT} WHERE symbol = :symbol", {"symbol": symbol},
                              types=ASSET_TYPES)


# -- what the WebSocket feed loads at start ---------------------------------------------------


async def open_book_orders(db: Database) -> list[Row]:
    """Every open order (id, symbol, side, price, remaining), in arrival order."""
    return await db.fetch_all(
        "SELECT o.id, p.symbol, o.side, o.price, o.remaining_quantity FROM orders o "
        "JOIN trading_pairs p ON p.id = o.pair_id "
        "WHERE o.status IN ('open', 'partially_filled') ORDER BY o.seq",
        types={"id": uuid.UUID, "price": Decimal, "remaining_quantity": Decimal})


async def book_seqs(db: Database) -> dict[str, int]:
    """Per pair symbol, its book's stored seq (of the last committed command that changed
    the book)."""
    rows = await db.fetch_all("SELECT symbol, book_seq FROM trading_pairs",
                              types={"book_seq": int})
    return {r["symbol"]: r["book_seq"] for r in rows}


async def window_trades(db: Database, since: datetime) -> list[Row]:
    """Every trade at or after ``since`` (symbol, price, quantity, created_at), in order."""
    return await db.fetch_all(
        "SELECT p.symbol, t.price, t.quantity, t.created_at FROM trades t "
        "JOIN trading_pairs p ON p.id = t.pair_id WHERE t.created_at >= :since "
        "ORDER BY t.created_at, t.seq", {"since": since},
        types={"price": Decimal, "quantity": Decimal, "created_at": datetime})


async def last_prices_before(db: Database, since: datetime) -> dict[str, Decimal]:
    """Per pair symbol, the price of its latest trade before ``since``."""
    pairs = await db.fetch_all("SELECT id, symbol FROM trading_pairs",
                               types={"id": uuid.UUID})
    found: dict[str, Decimal] = {}
    for pair in pairs:
        price = await db.fetch_val(
            "SELECT price FROM trades WHERE pair_id = :pair_id AND created_at < :since "
            "ORDER BY created_at DESC, seq DESC LIMIT 1",
            {"pair_id": pair["id"], "since": since}, as_type=Decimal)
        if price is not None:
            found[pair["symbol"]] = price
    return found
