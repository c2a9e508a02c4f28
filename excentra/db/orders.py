"""Read-only order and balance queries for the API (committed state only).

SQL text is assembled from constant fragments only (column lists, placeholders, ASC/DESC);
every value travels as a parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from excentra.db.database import Database, Row

ORDER_TYPES = {"id": uuid.UUID, "price": Decimal, "quantity": Decimal,
               "remaining_quantity": Decimal, "filled_quantity": Decimal,
               "created_at": datetime, "updated_at": datetime, "post_only": bool}

_ORDER_COLUMNS = (
    "o.id, p.symbol, o.user_id, o.side, o.order_type, o.price, o.quantity, "
    "o.remaining_quantity, o.filled_quantity, o.status, o.client_order_id, "
    "o.time_in_force, o.post_only, o.created_at, o.updated_at")


async def order_by_id(db: Database, order_id: uuid.UUID) -> Row | None:
    return await db.fetch_one(
        f"SELECT {_ORDER_COLUMNS} FROM orders o JOIN trading_pairs p ON p.id = o.pair_id "  # noqa: S608
        "WHERE o.id = :id", {"id": order_id}, types=ORDER_TYPES)


async def list_orders(db: Database, user_id: uuid.UUID, *, statuses: Sequence[str] = (),
                      pair_id: uuid.UUID | None = None, page: int = 1, limit: int = 20,
                      descending: bool = True) -> tuple[list[Row], int]:
    """One page of the user's orders by creation time (arrival order breaks ties)."""
    where = ["o.user_id = :user_id"]
    values: dict[str, Any] = {"user_id": user_id}
    if statuses:
        names = [f"s{i}" for i in range(len(statuses))]
        where.append(f"o.status IN ({', '.join(':' + n for n in names)})")
        values.update(zip(names, statuses, strict=True))
    if pair_id is not None:
        where.append("o.pair_id = :pair_id")
        values["pair_id"] = pair_id
    clause = " AND ".join(where)
    direction = "DESC" if descending else "ASC"
    total = await db.fetch_val(f"SELECT COUNT(*) FROM orders o WHERE {clause}",  # noqa: S608
                               values,
                               as_type=int)
    rows = await db.fetch_all(
        f"SELECT {_ORDER_COLUMNS} FROM orders o JOIN trading_pairs p ON p.id = o.pair_id "  # noqa: S608
        f"WHERE {clause} ORDER BY o.created_at {direction}, o.seq {direction} "
        "LIMIT :limit OFFSET :offset",
        {**values, "limit": limit, "offset": (page - 1) * limit}, types=ORDER_TYPES)
    return rows, int(total or 0)


async def balances_of(db: Database, user_id: uuid.UUID,
                      asset: str | None = None) -> list[Row]:
    sql = "SELECT asset, available, held FROM balances WHERE user_id = :user_id"
    values: dict[str, Any] = {"user_id": user_id}
    if asset is not None:
        sql += " AND asset = :asset"
        values["asset"] = asset
    return await db.fetch_all(sql + " ORDER BY asset", values,
                              types={"available": Decimal, "held": Decimal})
