"""Read-only custody queries for the API: chain deposits and withdrawals, a user's own or
(for admins) everyone's, paginated.

SQL text is assembled from constant fragments only (column lists, placeholders, ASC/DESC);
every value travels as a parameter. ``raw_tx`` (a signed transaction) is never selected:
nothing here can leak it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from excentra.db.database import Database, Row

DEPOSIT_TYPES: dict[str, Any] = {"id": uuid.UUID, "user_id": uuid.UUID, "amount": Decimal,
                                 "created_at": datetime, "credited_at": datetime}
WITHDRAWAL_TYPES: dict[str, Any] = {"id": uuid.UUID, "user_id": uuid.UUID,
                                    "amount": Decimal, "fee": Decimal,
                                    "created_at": datetime, "updated_at": datetime}

_DEPOSIT_COLUMNS = (
    "d.id, d.user_id, d.chain, d.asset, d.amount, d.status, d.confirmations, d.tx_hash, "
    "d.log_index, d.block_number, d.address, d.created_at, d.credited_at")
_WITHDRAWAL_COLUMNS = (
    "w.id, w.user_id, w.chain, w.asset, w.amount, w.fee, w.to_address, w.status, "
    "w.tx_hash, w.nonce, w.reason, w.created_at, w.updated_at")


@dataclass(frozen=True, slots=True)
class Query:
    """Which rows a list shows: empty filters do not narrow it."""

    user_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()
    asset: str | None = None
    page: int = 1
    limit: int = 20
    descending: bool = True
    with_email: bool = False
    """Add the owner's e-mail (the admin lists)."""


async def list_deposits(db: Database, q: Query) -> tuple[list[Row], int]:
    """One page of chain deposits (every status: pending, credited, ignored, orphaned,
    reversed) by the time they were first seen, and how many match."""
    return await _page(db, "chain_deposits", "d", _DEPOSIT_COLUMNS, DEPOSIT_TYPES, q)


async def list_withdrawals(db: Database, q: Query) -> tuple[list[Row], int]:
    """One page of withdrawals, on-chain and simulated (``chain`` NULL) alike, by request
    time, and how many match."""
    return await _page(db, "withdrawals", "w", _WITHDRAWAL_COLUMNS, WITHDRAWAL_TYPES, q)


async def _page(db: Database, table: str, alias: str, columns: str, types: dict[str, Any],
                q: Query) -> tuple[list[Row], int]:
    where = ["1 = 1"]
    values: dict[str, Any] = {}
    if q.user_id is not None:
        where.append(f"{alias}.user_id = :user_id")
        values["user_id"] = q.user_id
    if q.statuses:
        names = [f"s{i}" for i in range(len(q.statuses))]
        where.append(f"{alias}.status IN ({', '.join(':' + n for n in names)})")
        values.update(zip(names, q.statuses, strict=True))
    if q.asset is not None:
        where.append(f"{alias}.asset = :asset")
        values["asset"] = q.asset
    clause = " AND ".join(where)
    direction = "DESC" if q.descending else "ASC"
    total = await db.fetch_val(
        f"SELECT COUNT(*) FROM {table} {alias} WHERE {clause}",  # noqa: S608
        values, as_type=int)
    join = ""
    if q.with_email:
        columns += ", u.email"
        join = f" JOIN users u ON u.id = {alias}.user_id"
    rows = await db.fetch_all(
        f"SELECT {columns} FROM {table} {alias}{join} WHERE {clause} "  # noqa: S608
        f"ORDER BY {alias}.created_at {direction}, {alias}.id {direction} "
        "LIMIT :limit OFFSET :offset",
        {**values, "limit": q.limit, "offset": (q.page - 1) * q.limit}, types=types)
    return rows, int(total or 0)


async def withdrawal_status(db: Database, withdrawal_id: uuid.UUID) -> str | None:
    """A withdrawal's stored status (``None``: no such withdrawal)."""
    row = await db.fetch_one("SELECT status FROM withdrawals WHERE id = :id",
                             {"id": withdrawal_id})
    return None if row is None else str(row["status"])
