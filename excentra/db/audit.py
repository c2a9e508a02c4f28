"""Checking the durable state against the ledger's invariants (DESIGN.md invariant 6).

Money is added up in Python: SQLite stores it as text and would sum it as floats.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal

from excentra.db.database import Database
from excentra.db.state import HOLDING_WITHDRAWALS
from excentra.engine.precision import EXACT


async def audit(db: Database) -> list[str]:
    """Every broken invariant of the committed state, as readable lines (empty: sound)."""
    problems: list[str] = []
    dec = {"available": Decimal, "held": Decimal, "user_id": uuid.UUID}
    balances = await db.fetch_all("SELECT user_id, asset, available, held FROM balances",
                                  types=dec)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[tuple[uuid.UUID, str], Decimal] = {}
    for b in balances:
        if b["available"] < 0 or b["held"] < 0:
            problems.append(f"negative balance: {b}")
        totals[b["asset"]] = EXACT.add(totals[b["asset"]], b["available"] + b["held"])
        held[(b["user_id"], b["asset"])] = b["held"]
    entries = await db.fetch_all(
        "SELECT asset, kind, delta_available, delta_held FROM ledger_entries",
        types={"delta_available": Decimal, "delta_held": Decimal})
    external: dict[str, Decimal] = defaultdict(Decimal)
    for e in entries:
        external[e["asset"]] = EXACT.add(external[e["asset"]],
                                         EXACT.add(e["delta_available"], e["delta_held"]))
    for asset in sorted(set(totals) | set(external)):
        if totals[asset] != external[asset]:
            problems.append(f"{asset}: balances total {totals[asset]} != journal "
                            f"total {external[asset]} (deposits - withdrawals)")
    reserved: dict[tuple[uuid.UUID, str], Decimal] = defaultdict(Decimal)
    for o in await db.fetch_all(
            "SELECT o.user_id, o.side, o.reserved, p.base_asset, p.quote_asset FROM orders o "
            "JOIN trading_pairs p ON p.id = o.pair_id "
            "WHERE o.status IN ('open', 'partially_filled')",
            types={"user_id": uuid.UUID, "reserved": Decimal}):
        asset = o["quote_asset"] if o["side"] == "buy" else o["base_asset"]
        reserved[(o["user_id"], asset)] += o["reserved"]
    for w in await db.fetch_all(
            HOLDING_WITHDRAWALS,
            types={"user_id": uuid.UUID, "amount": Decimal, "fee": Decimal}):
        reserved[(w["user_id"], w["asset"])] += w["amount"] + w["fee"]
    for key in set(held) | set(reserved):
        if held.get(key, Decimal(0)) != reserved.get(key, Decimal(0)):
            problems.append(f"{key}: held {held.get(key)} != open reservations "
                            f"{reserved.get(key)}")
    closed = sum(1 for o in await db.fetch_all(
        "SELECT reserved FROM orders WHERE status IN ('filled', 'cancelled')",
        types={"reserved": Decimal}) if o["reserved"] != 0)
    if closed:
        problems.append(f"{closed} finished orders still hold funds")
    return problems
