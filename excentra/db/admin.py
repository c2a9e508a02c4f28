"""Operator-side reads: the admin pages (users with balances, stats, 24h volume) and the
startup seeder's view of pairs and of the system user's resting orders.

Money is never summed by SQLite (it stores decimals as TEXT and would add them as
floats): there the rows come back and Python adds ``Decimal``s; PostgreSQL sums its exact
``NUMERIC`` itself.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from excentra.db.accounts import SYSTEM_ROLE, USER_TYPES
from excentra.db.database import Database, Row
from excentra.engine.precision import EXACT

_USER_COLUMNS = "id, email, role, username, is_suspended, created_at, updated_at"
_USERS_ONLY = f"WHERE role <> '{SYSTEM_ROLE}'"
"""The users the admin pages list and count: system accounts hold money but are not users."""


async def users_page(db: Database, *, page: int, limit: int, descending: bool
                     ) -> tuple[list[Row], dict[uuid.UUID, list[Row]], int]:
    """One page of the users (system accounts left out: they are not users) by creation
    time, each user's balance rows, and the total number of users."""
    direction = "DESC" if descending else "ASC"
    total = await db.fetch_val(f"SELECT COUNT(*) FROM users {_USERS_ONLY}",  # noqa: S608
                               as_type=int)
    users = await db.fetch_all(
        f"SELECT {_USER_COLUMNS} FROM users {_USERS_ONLY} "  # noqa: S608 (constants only)
        f"ORDER BY created_at {direction}, id {direction} LIMIT :limit OFFSET :offset",
        {"limit": limit, "offset": (page - 1) * limit}, types=USER_TYPES)
    return users, await _balances_of([u["id"] for u in users], db), int(total or 0)


async def _balances_of(user_ids: list[uuid.UUID], db: Database
                       ) -> dict[uuid.UUID, list[Row]]:
    if not user_ids:
        return {}
    names = [f"u{i}" for i in range(len(user_ids))]
    rows = await db.fetch_all(
        "SELECT user_id, asset, available, held FROM balances "  # noqa: S608
        f"WHERE user_id IN ({', '.join(':' + n for n in names)}) ORDER BY asset",
        dict(zip(names, user_ids, strict=True)),
        types={"user_id": uuid.UUID, "available": Decimal, "held": Decimal})
    out: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for row in rows:
        out[row["user_id"]].append(row)
    return out


@dataclass(frozen=True, slots=True)
class Counts:
    users: int
    trades: int


async def counts(db: Database) -> Counts:
    """Users (not system accounts) and trades."""
    users = await db.fetch_val(f"SELECT COUNT(*) FROM users {_USERS_ONLY}",  # noqa: S608
                               as_type=int)
    trades = await db.fetch_val("SELECT COUNT(*) FROM trades", as_type=int)
    return Counts(int(users or 0), int(trades or 0))


async def volume_since(db: Database, since: datetime) -> list[tuple[str, Decimal]]:
    """``(symbol, base volume)`` per active pair with trades at or after ``since``, by
    symbol."""
    join = ("FROM trades t JOIN trading_pairs p ON p.id = t.pair_id "
            "WHERE p.is_active = :yes AND t.created_at >= :since")
    values = {"yes": True, "since": since}
    if db.dialect == "postgresql":
        rows = await db.fetch_all(
            f"SELECT p.symbol, SUM(t.quantity) AS volume {join} "
            "GROUP BY p.symbol ORDER BY p.symbol", values, types={"volume": Decimal})
        return [(r["symbol"], r["volume"]) for r in rows]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in await db.fetch_all(f"SELECT p.symbol, t.quantity {join}",
                                values, types={"quantity": Decimal}):
        totals[r["symbol"]] = EXACT.add(totals[r["symbol"]], r["quantity"])
    return sorted(totals.items())


def day_before(now: datetime) -> datetime:
    return now - timedelta(hours=24)


# -- the startup seeder ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedPair:
    """An active pair whose active base asset has a CoinGecko id."""

    symbol: str
    base: str
    quote: str
    coingecko_id: str


async def seedable_pairs(db: Database) -> list[SeedPair]:
    rows = await db.fetch_all(
        "SELECT p.symbol, p.base_asset, p.quote_asset, b.coingecko_id "
        "FROM trading_pairs p JOIN assets b ON b.symbol = p.base_asset "
        "WHERE p.is_active = :yes AND b.is_active = :yes AND b.coingecko_id IS NOT NULL "
        "ORDER BY p.symbol", {"yes": True})
    return [SeedPair(r["symbol"], r["base_asset"], r["quote_asset"], r["coingecko_id"])
            for r in rows]


async def pairs_with_open_orders(db: Database, user_id: uuid.UUID) -> set[str]:
    """Symbols of the pairs where ``user_id`` has an open or partially filled order."""
    rows = await db.fetch_all(
        "SELECT DISTINCT p.symbol FROM orders o JOIN trading_pairs p ON p.id = o.pair_id "
        "WHERE o.user_id = :user_id AND o.status IN ('open', 'partially_filled')",
        {"user_id": user_id})
    return {r["symbol"] for r in rows}
