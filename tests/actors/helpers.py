"""Shared helpers for the actor-core tests: users, balances, row counts, soundness checks,
and a recording subscriber."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, TypeVar

from excentra.actors.bridge import Rejected
from excentra.actors.journal import Commit, Committed
from excentra.db import Database
from excentra.db.audit import audit
from excentra.db.state import open_levels
from excentra.db.users import create_user
from excentra.engine import OrderType, RejectCode, Side
from excentra.engine.precision import units_to_decimal
from excentra.exchange import Exchange, Outcome

D = Decimal
T = TypeVar("T")
BTC_USDT, ETH_USDT = "BTC/USDT", "ETH/USDT"
ANSWER_TIMEOUT = 20.0
"""Seconds a request may take before a test calls it hung."""

TABLES = ("orders", "trades", "ledger_entries", "commands", "balances", "withdrawals")


async def new_user(ex: Exchange, tag: str = "user") -> str:
    """A fresh user (foreign keys need one before balances or orders)."""
    return str(await create_user(ex.db, f"{tag}-{uuid.uuid4().hex[:12]}@test.example"))


async def funded_user(ex: Exchange, **amounts: str) -> str:
    """A fresh user with deposits, e.g. ``funded_user(ex, USDT="1000", BTC="1")``."""
    user = await new_user(ex)
    for asset, amount in amounts.items():
        ok(await ex.deposit(user, asset, D(amount)))
    return user


def ok(outcome: T) -> T:
    """The outcome, asserting it is a result and not a rejection."""
    assert not isinstance(outcome, Rejected), outcome
    return outcome


def rejected(code: RejectCode) -> Rejected:
    return Rejected(code)


async def answered(awaitable: Awaitable[T], timeout: float = ANSWER_TIMEOUT) -> T:
    """Await with a deadline: a request must be answered, never hang."""
    return await asyncio.wait_for(awaitable, timeout)


async def limit(ex: Exchange, user: str, side: Side, price: str, quantity: str,
                symbol: str = BTC_USDT, **kw: Any) -> Outcome:
    return await ex.place_order(user, symbol, side, OrderType.LIMIT, price=D(price),
                                quantity=D(quantity), **kw)


async def balance(db: Database, user: str, asset: str) -> tuple[Decimal, Decimal]:
    """The committed (available, held) of one account; (0, 0) without a row."""
    row = await db.fetch_one(
        "SELECT available, held FROM balances WHERE user_id = :u AND asset = :a",
        {"u": uuid.UUID(user), "a": asset}, types={"available": Decimal, "held": Decimal})
    return (D(0), D(0)) if row is None else (row["available"], row["held"])


async def order_row(db: Database, order_id: str) -> dict[str, Any]:
    row = await db.fetch_one(
        "SELECT status, quantity, remaining_quantity, filled_quantity, reserved, "
        "client_order_id, user_id FROM orders WHERE id = :id", {"id": uuid.UUID(order_id)},
        types={"quantity": Decimal, "remaining_quantity": Decimal,
               "filled_quantity": Decimal, "reserved": Decimal})
    assert row is not None, f"order {order_id} is not in the database"
    return row


async def count(db: Database, table: str, where: str = "", **values: Any) -> int:
    assert table in TABLES
    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
    return int(await db.fetch_val(sql, values or None))


async def counts(db: Database) -> dict[str, int]:
    """Rows per table: to prove a rejected command wrote nothing."""
    return {t: await count(db, t) for t in TABLES}


async def in_memory_balances(ex: Exchange) -> dict[tuple[str, str], tuple[int, int]]:
    """The ledger actor's balances after its own invariant check passed."""
    outcome = await answered(ex.audit_ledger())
    assert isinstance(outcome, dict), f"in-memory audit failed: {outcome}"
    return outcome


async def durable_balances(db: Database) -> dict[tuple[str, str], tuple[int, int]]:
    """The ``balances`` table in minor units, keyed like ``audit_ledger()``."""
    decimals = {r["symbol"]: int(r["decimals"]) for r in
                await db.fetch_all("SELECT symbol, decimals FROM assets")}
    rows = await db.fetch_all("SELECT user_id, asset, available, held FROM balances",
                              types={"user_id": uuid.UUID, "available": Decimal,
                                     "held": Decimal})
    out = {}
    for r in rows:
        scale = D(10) ** decimals[r["asset"]]
        available, held = r["available"] * scale, r["held"] * scale
        assert available == available.to_integral_value(), r
        assert held == held.to_integral_value(), r
        out[(str(r["user_id"]), r["asset"])] = (int(available), int(held))
    return out


def _nonzero(b: dict[tuple[str, str], tuple[int, int]]) -> dict[tuple[str, str],
                                                                  tuple[int, int]]:
    return {k: v for k, v in b.items() if v != (0, 0)}


async def assert_sound(ex: Exchange) -> None:
    """In-memory ledger check, durable audit, and the two agree account by account."""
    memory = await in_memory_balances(ex)
    assert await audit(ex.db) == []
    assert _nonzero(await durable_balances(ex.db)) == _nonzero(memory)


def units(amount: str, decimals: int) -> int:
    scaled = D(amount).scaleb(decimals)
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def amount(units_: int, decimals: int) -> Decimal:
    return units_to_decimal(units_, decimals)


class Recorder:
    """A broadcaster subscriber that keeps every committed batch (called in the
    broadcaster's thread, read on the test's loop: hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[Committed] = []

    def deliver(self, batch: Committed) -> None:
        with self._lock:
            self._batches.append(batch)

    @property
    def batches(self) -> list[Committed]:
        with self._lock:
            return list(self._batches)

    @property
    def commands(self) -> list[Commit]:
        return [c for b in self.batches for c in b.commands]


async def stored_levels(db: Database, symbol: str) -> dict[str, list[dict[str, str]]]:
    """The book as the database says it is: open orders aggregated per price level, in the
    shape of ``Exchange.snapshot``'s ``bids``/``asks`` (numbers compared as Decimals)."""
    levels = await open_levels(db, symbol)
    return {side: [{"price": str(p.normalize()), "quantity": str(q.normalize())}
                   for p, q in levels[side]] for side in ("bids", "asks")}


def normalized(side: list[dict[str, str]]) -> list[dict[str, str]]:
    """Snapshot levels with numbers in one canonical spelling."""
    return [{k: str(D(v).normalize()) for k, v in lv.items()} for lv in side]


async def recovered(ex: Exchange, recoveries: int = 0, book_recoveries: int = 0,
                    timeout: float = 20) -> None:
    """Wait until the supervisor has finished its ``recoveries``-th whole-core rebuild and
    its ``book_recoveries``-th book rebuild — and assert it did no more than that."""
    sv = ex.supervisor
    assert sv is not None

    async def poll() -> None:
        while sv.recoveries < recoveries or sv.book_recoveries < book_recoveries:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)
    await asyncio.wait_for(sv.wait_recovered(), timeout)
    assert (sv.recoveries, sv.book_recoveries) == (recoveries, book_recoveries)
    assert not sv.recovering
    assert not sv.books_down
