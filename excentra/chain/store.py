"""The chain tables: what the watcher reads and writes directly, and deposit addresses.

The watcher writes its *observations* here (blocks processed, deposits seen and their
confirmation counts, sweep transactions) on its own connection. Everything that moves
money or changes a withdrawal — a credit, a withdrawal sent, confirmed or failed — is a
journaled ledger command instead (``excentra.actors.custody``), never written here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from excentra.db.database import Database, IntegrityError
from excentra.db.reading import unfenced
from excentra.ids import new_id

KEEP_BLOCKS = 256
"""Processed block hashes kept per chain: how deep a reorganisation can be noticed."""


@dataclass(frozen=True, slots=True)
class SeenDeposit:
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    address: str
    user_id: str
    asset: str
    amount: Decimal
    status: str
    """``pending``, or ``ignored`` (below the asset's minimum)."""


@dataclass(frozen=True, slots=True)
class PendingDeposit:
    id: str
    tx_hash: str
    log_index: int
    block_number: int
    user_id: str
    asset: str
    amount: Decimal
    confirmations: int
    address: str


@dataclass(frozen=True, slots=True)
class ChainWithdrawal:
    id: str
    user_id: str
    asset: str
    amount: Decimal
    to_address: str
    status: str
    nonce: int | None
    tx_hash: str | None
    raw_tx: str | None
    updated_at: datetime


class ChainStore:
    def __init__(self, db: Database, chain: str) -> None:
        self.db = db
        self.chain = chain

    # -- addresses -----------------------------------------------------------------------

    async def addresses(self, after_index: int = 0) -> list[tuple[str, str, int]]:
        """``(address, user id, derivation index)`` of the chain's deposit addresses
        derived after ``after_index``."""
        rows = await self.db.fetch_all(
            "SELECT address, user_id, derivation_index FROM deposit_addresses "
            "WHERE chain = :c AND derivation_index > :i ORDER BY derivation_index",
            {"c": self.chain, "i": after_index})
        return [(r["address"], str(r["user_id"]), int(r["derivation_index"])) for r in rows]

    # -- blocks and deposits -------------------------------------------------------------

    async def blocks(self) -> dict[int, str]:
        rows = await self.db.fetch_all(
            "SELECT number, hash FROM chain_blocks WHERE chain = :c", {"c": self.chain})
        return {int(r["number"]): r["hash"] for r in rows}

    async def processed(self, blocks: dict[int, str], seen: Sequence[SeenDeposit]) -> None:
        """Blocks scanned and the deposits found in them, in one transaction: the cursor
        never moves past a deposit that was not recorded (a deposit seen twice, after a
        crash between the two, is recorded once)."""
        now = datetime.now(UTC)
        async with self.db.transaction():
            for d in seen:
                exists = await self.db.fetch_one(
                    "SELECT id FROM chain_deposits WHERE tx_hash = :t AND log_index = :l",
                    {"t": d.tx_hash, "l": d.log_index})
                if exists is not None:  # the same event seen again (a rescan): keep it,
                    await self.db.execute(  # with the block it is now in
                        "UPDATE chain_deposits SET block_number = :n, block_hash = :h, "
                        "status = CASE WHEN status = 'orphaned' THEN :s ELSE status END, "
                        "updated_at = :now WHERE id = :id",
                        {"n": d.block_number, "h": d.block_hash, "s": d.status, "now": now,
                         "id": exists["id"]})
                    continue
                await self.db.execute(
                    "INSERT INTO chain_deposits (id, tx_hash, log_index, block_number, "
                    "address, user_id, asset, amount, confirmations, status, created_at, "
                    "updated_at, chain, block_hash) VALUES (:id, :t, :l, :n, :a, :u, :asset, "
                    ":amount, 0, :s, :now, :now, :c, :h)",
                    {"id": uuid.UUID(new_id()), "t": d.tx_hash, "l": d.log_index,
                     "n": d.block_number, "a": d.address, "u": uuid.UUID(d.user_id),
                     "asset": d.asset, "amount": d.amount, "s": d.status, "now": now,
                     "c": self.chain, "h": d.block_hash})
            await self.db.execute_many(
                "INSERT INTO chain_blocks (chain, number, hash) VALUES (:c, :n, :h) "
                "ON CONFLICT (chain, number) DO UPDATE SET hash = excluded.hash",
                [{"c": self.chain, "n": n, "h": h} for n, h in sorted(blocks.items())])
            if blocks:
                await self.db.execute(
                    "DELETE FROM chain_blocks WHERE chain = :c AND number < :n",
                    {"c": self.chain, "n": max(blocks) - KEEP_BLOCKS})

    async def rewind(self, fork: int) -> list[tuple[str, str, str]]:
        """Forget the blocks above ``fork`` (no longer canonical): their pending deposits
        become ``orphaned`` (a rescan that finds one again on the new branch revives it);
        returns those ``(id, user, tx hash)``."""
        now = datetime.now(UTC)
        async with self.db.transaction():
            orphaned = await self.db.fetch_all(
                "SELECT id, user_id, tx_hash FROM chain_deposits WHERE chain = :c "
                "AND block_number > :n AND status = 'pending'", {"c": self.chain, "n": fork})
            await self.db.execute(
                "UPDATE chain_deposits SET status = 'orphaned', updated_at = :now "
                "WHERE chain = :c AND block_number > :n AND status IN ('pending', 'ignored')",
                {"c": self.chain, "n": fork, "now": now})
            await self.db.execute("DELETE FROM chain_blocks WHERE chain = :c AND number > :n",
                                  {"c": self.chain, "n": fork})
        return [(str(r["id"]), str(r["user_id"]), r["tx_hash"]) for r in orphaned]

    async def credited_since(self, first: int) -> list[tuple[str, str, int, str]]:
        """``(id, user, block number, block hash)`` of credited deposits from block
        ``first`` on (those a reorganisation could still take away)."""
        rows = await self.db.fetch_all(
            "SELECT id, user_id, block_number, block_hash FROM chain_deposits "
            "WHERE chain = :c AND status = 'credited' AND block_number >= :n",
            {"c": self.chain, "n": first})
        return [(str(r["id"]), str(r["user_id"]), int(r["block_number"]), r["block_hash"])
                for r in rows]

    async def pending(self) -> list[PendingDeposit]:
        rows = await self.db.fetch_all(
            "SELECT id, tx_hash, log_index, block_number, user_id, asset, amount, "
            "confirmations, address FROM chain_deposits WHERE chain = :c AND status = 'pending' "
            "ORDER BY block_number, log_index", {"c": self.chain},
            types={"amount": Decimal})
        return [PendingDeposit(str(r["id"]), r["tx_hash"], int(r["log_index"]),
                               int(r["block_number"]), str(r["user_id"]), r["asset"],
                               r["amount"], int(r["confirmations"]), r["address"])
                for r in rows]

    async def confirmations(self, counts: dict[str, int]) -> None:
        if counts:
            await self.db.execute_many(
                "UPDATE chain_deposits SET confirmations = :n, updated_at = :now "
                "WHERE id = :id AND status = 'pending'",
                [{"id": uuid.UUID(i), "n": n, "now": datetime.now(UTC)}
                 for i, n in counts.items()])

    async def credited_addresses(self) -> set[str]:
        rows = await self.db.fetch_all(
            "SELECT DISTINCT address FROM chain_deposits WHERE chain = :c "
            "AND status = 'credited'", {"c": self.chain})
        return {r["address"] for r in rows}

    # -- withdrawals and other transactions ----------------------------------------------

    async def withdrawals(self) -> list[ChainWithdrawal]:
        """The chain's withdrawals still to send or to follow, oldest first."""
        rows = await self.db.fetch_all(
            "SELECT id, user_id, asset, amount, to_address, status, nonce, tx_hash, "
            "raw_tx, updated_at FROM withdrawals WHERE chain = :c "
            "AND status IN ('queued', 'broadcast') ORDER BY created_at, id",
            {"c": self.chain}, types={"amount": Decimal, "updated_at": datetime})
        return [ChainWithdrawal(str(r["id"]), str(r["user_id"]), r["asset"], r["amount"],
                                r["to_address"], r["status"],
                                None if r["nonce"] is None else int(r["nonce"]),
                                r["tx_hash"], r["raw_tx"], r["updated_at"]) for r in rows]

    async def sent_hashes(self, withdrawal_id: str) -> list[str]:
        """Every transaction hash recorded for a withdrawal (replacements included)."""
        rows = await self.db.fetch_all(
            "SELECT command_id FROM commands WHERE kind = 'withdrawal_sent' "
            "AND command_id LIKE :p", {"p": f"withdrawal-sent:{withdrawal_id}:%"})
        return [r["command_id"].rsplit(":", 1)[1] for r in rows]

    async def last_nonce(self, sender: str) -> int | None:
        """The highest nonce recorded for ``sender`` (withdrawals and other sends)."""
        row = await self.db.fetch_one(
            "SELECT (SELECT MAX(nonce) FROM withdrawals WHERE chain = :c) AS w, "
            "(SELECT MAX(nonce) FROM chain_transactions WHERE chain = :c "
            "AND from_address = :a) AS t", {"c": self.chain, "a": sender.lower()})
        found = [int(v) for v in (row or {}).values() if v is not None]
        return max(found) if found else None

    async def record_transaction(self, purpose: str, sender: str, to: str, asset: str,
                                 amount: Decimal, nonce: int, tx_hash: str,
                                 raw_tx: str) -> None:
        """A sweep or gas transaction, recorded before it is broadcast."""
        now = datetime.now(UTC)
        await self.db.execute(
            "INSERT INTO chain_transactions (id, chain, purpose, from_address, to_address, "
            "asset, amount, nonce, tx_hash, raw_tx, status, created_at, updated_at) VALUES "
            "(:id, :c, :p, :f, :t, :a, :amount, :n, :h, :r, 'broadcast', :now, :now)",
            {"id": uuid.UUID(new_id()), "c": self.chain, "p": purpose, "f": sender.lower(),
             "t": to.lower(), "a": asset, "amount": amount, "n": nonce, "h": tx_hash,
             "r": raw_tx, "now": now})

    async def open_transactions(self) -> list[dict[str, Any]]:
        return await self.db.fetch_all(
            "SELECT id, purpose, from_address, to_address, asset, nonce, tx_hash, raw_tx "
            "FROM chain_transactions WHERE chain = :c AND status = 'broadcast'",
            {"c": self.chain})

    async def transaction_done(self, tx_id: Any, ok: bool) -> None:
        await self.db.execute(
            "UPDATE chain_transactions SET status = :s, updated_at = :now WHERE id = :id",
            {"s": "confirmed" if ok else "failed", "now": datetime.now(UTC), "id": tx_id})


@unfenced
async def deposit_address(db: Database, user_id: str, chain: str,
                          derive: Callable[[int], str]) -> str:
    """The user's deposit address on ``chain``: the stored one, or a new one at the next
    unused derivation index (never reused: an index is taken by one user for good; two
    requests racing for one index retry with the next)."""
    for _ in range(20):
        row = await db.fetch_one(
            "SELECT address FROM deposit_addresses WHERE user_id = :u AND chain = :c",
            {"u": uuid.UUID(user_id), "c": chain})
        if row is not None:
            return str(row["address"])
        last = await db.fetch_val("SELECT MAX(derivation_index) FROM deposit_addresses")
        index = int(last or 0) + 1  # 0 is the hot wallet
        address = (await asyncio.to_thread(derive, index)).lower()  # ~7 ms of EC math
        try:
            await db.execute(
                "INSERT INTO deposit_addresses (id, user_id, chain, address, "
                "derivation_index, created_at) VALUES (:id, :u, :c, :a, :i, :now)",
                {"id": uuid.UUID(new_id()), "u": uuid.UUID(user_id), "c": chain,
                 "a": address, "i": index, "now": datetime.now(UTC)})
        except IntegrityError:
            continue  # another request took this index (or gave this user an address)
        return address
    raise RuntimeError("could not allocate a deposit address")
