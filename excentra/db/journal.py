"""The projection's writes: many commands' ``Writes`` into the tables in one transaction.

The event log (``excentra.db.eventlog``) is the durable record of a command; the tables
the API reads are its projection, written here by the projector
(``excentra.actors.projector``) in large batches, each transaction also recording the
log sequence number it reached (``projection_state``), so a batch is applied exactly once.

Balances are written as absolute values. The projector is the only writer, so it keeps a
mirror of the projected balances in minor units, applies each batch's movements to it in
order, and upserts the touched rows; SQLite stores money as text and cannot add it in SQL.

Each pair's ``book_seq`` is set to the highest seq its book reached in the batch (from the
commands' ``Writes.book``), after the batch's new pairs are inserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

from excentra.db import journal_pg
from excentra.db.database import Database
from excentra.db.eventlog import PROJECTION
from excentra.db.records import Writes
from excentra.engine.precision import units_to_decimal
from excentra.ids import new_id

_SQL = {
    "commands": "INSERT INTO commands (command_id, kind, user_id, result, created_at) "
                "VALUES (:command_id, :kind, :user_id, :result, :created_at)",
    "assets": "INSERT INTO assets (id, symbol, name, decimals, is_active, coingecko_id, "
              "created_at) VALUES (:id, :symbol, :name, :decimals, TRUE, :coingecko_id, "
              ":created_at)",
    "pairs": "INSERT INTO trading_pairs (id, base_asset, quote_asset, symbol, is_active, "
             "price_step, quantity_step, maker_fee_rate, taker_fee_rate, created_at) "
             "VALUES (:id, :base_asset, :quote_asset, :symbol, TRUE, :price_step, "
             ":quantity_step, :maker_fee_rate, :taker_fee_rate, :created_at)",
    "book_seqs": "UPDATE trading_pairs SET book_seq = :book_seq WHERE id = :id",
    "orders": "INSERT INTO orders (id, user_id, pair_id, client_order_id, side, order_type, "
              "time_in_force, post_only, price, quantity, remaining_quantity, "
              "filled_quantity, reserved, status, seq, created_at, updated_at) VALUES (:id, "
              ":user_id, :pair_id, :client_order_id, :side, :order_type, :time_in_force, "
              ":post_only, :price, :quantity, :remaining_quantity, :filled_quantity, "
              ":reserved, :status, :seq, :created_at, :created_at)",
    "order_changes": "UPDATE orders SET remaining_quantity = :remaining_quantity, "
                     "filled_quantity = :filled_quantity, reserved = :reserved, "
                     "status = :status, updated_at = :updated_at WHERE id = :id",
    "trades": "INSERT INTO trades (id, pair_id, buy_order_id, sell_order_id, buyer_user_id, "
              "seller_user_id, price, quantity, quote_amount, taker_side, maker_fee, "
              "taker_fee, seq, created_at) VALUES (:id, :pair_id, :buy_order_id, "
              ":sell_order_id, :buyer_user_id, :seller_user_id, :price, :quantity, "
              ":quote_amount, :taker_side, :maker_fee, :taker_fee, :seq, :created_at)",
    "withdrawals": "INSERT INTO withdrawals (id, user_id, asset, amount, fee, to_address, "
                   "status, chain, created_at, updated_at) VALUES (:id, :user_id, :asset, "
                   ":amount, :fee, :to_address, :status, :chain, :created_at, :created_at)",
    "withdrawal_changes": "UPDATE withdrawals SET status = :status, "
                          "tx_hash = COALESCE(:tx_hash, tx_hash), "
                          "nonce = COALESCE(:nonce, nonce), raw_tx = COALESCE(:raw_tx, raw_tx), "
                          "reason = COALESCE(:reason, reason), updated_at = :updated_at "
                          "WHERE id = :id",
    "deposit_changes": "UPDATE chain_deposits SET status = :status, "
                       "confirmations = :confirmations, "
                       "credited_at = COALESCE(:credited_at, credited_at), "
                       "updated_at = :updated_at WHERE id = :id",
    "entries": "INSERT INTO ledger_entries (command_id, seq, user_id, asset, "
               "delta_available, delta_held, kind, ref_id, created_at) VALUES (:command_id, "
               ":seq, :user_id, :asset, :delta_available, :delta_held, :kind, :ref_id, "
               ":created_at)",
    "balances": "INSERT INTO balances (id, user_id, asset, available, held, updated_at) "
                "VALUES (:id, :user_id, :asset, :available, :held, :updated_at) "
                "ON CONFLICT (user_id, asset) DO UPDATE SET available = excluded.available, "
                "held = excluded.held, updated_at = excluded.updated_at",
    "projection": "UPDATE projection_state SET seq = :seq WHERE name = :name",
}

BalanceKey = tuple[uuid.UUID, str]
_KEPT = uuid.UUID(int=0)
"""Placeholder id for an upsert that updates an existing balance row (never inserted)."""
_FIELDS: dict[type, tuple[str, ...]] = {}


def _row(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, shallow (``dataclasses.asdict`` deep-copies)."""
    names = _FIELDS.get(type(record))
    if names is None:
        names = _FIELDS[type(record)] = tuple(f.name for f in fields(record))
    return {n: getattr(record, n) for n in names}


class JournalWriter:
    """Writes batches of ``Writes``; owns the mirror of committed balances."""

    def __init__(self, db: Database, balances: dict[BalanceKey, list[int]],
                 decimals: dict[str, int]) -> None:
        self.db = db
        self.balances = balances
        """``(user_id, asset) -> [available, held]`` in minor units, as committed."""
        self.decimals = decimals

    async def write(self, batch: list[Writes], projected: int) -> None:
        """Commit every command of ``batch``, in order, in one transaction, with the
        projection's watermark set to ``projected`` (the log seq of the last one)."""
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in _SQL}
        mirror = {k: list(v) for k, v in self._touched(batch)}
        stamps: dict[BalanceKey, datetime] = {}
        """When each balance last moved: its command's time (not the batch's), so the
        tables do not depend on how the log was cut into batches."""
        books: dict[uuid.UUID, int] = {}
        for w in batch:
            self._collect(w, rows, mirror)
            for m in w.movements:
                stamps[(m.user_id, m.asset)] = w.at
            if w.book is not None:
                pair_id, seq = w.book
                books[pair_id] = max(seq, books.get(pair_id, seq))
        rows["book_seqs"] = [{"id": k, "book_seq": v} for k, v in books.items()]
        rows["balances"] = self._balance_rows(mirror, stamps)
        rows["projection"] = [{"name": PROJECTION, "seq": projected}]
        if self.db.dialect == "postgresql":  # the whole batch in one round trip
            await self.db.execute_positional(*journal_pg.statement(rows))
        else:
            await self.db.write_batches([(sql, rows[name]) for name, sql in _SQL.items()])
        self.balances.update(mirror)  # only once the transaction is in

    def _touched(self, batch: list[Writes]) -> Iterable[tuple[BalanceKey, list[int]]]:
        keys = {(m.user_id, m.asset) for w in batch for m in w.movements}
        return ((k, self.balances.get(k, [0, 0])) for k in keys)

    def _collect(self, w: Writes, rows: dict[str, list[dict[str, Any]]],
                 mirror: dict[BalanceKey, list[int]]) -> None:
        at = w.at
        rows["commands"].append({"command_id": w.command_id, "kind": w.kind,
                                 "user_id": w.user_id, "result": w.result, "created_at": at})
        for name in ("assets", "pairs", "orders", "order_changes", "trades", "withdrawals",
                     "withdrawal_changes", "deposit_changes"):
            rows[name] += [_row(r) for r in getattr(w, name)]
        for a in w.assets:
            self.decimals[a.symbol] = a.decimals
        for seq, m in enumerate(w.movements):
            dec = self.decimals[m.asset]
            rows["entries"].append({
                "command_id": w.command_id, "seq": seq, "user_id": m.user_id,
                "asset": m.asset, "delta_available": units_to_decimal(m.available, dec),
                "delta_held": units_to_decimal(m.held, dec), "kind": m.kind,
                "ref_id": m.ref_id, "created_at": at})
            b = mirror[(m.user_id, m.asset)]
            b[0] += m.available
            b[1] += m.held
            if b[0] < 0 or b[1] < 0:
                raise ValueError(f"journal: negative balance {m.user_id} {m.asset}: {b}")

    def _balance_rows(self, mirror: dict[BalanceKey, list[int]],
                      stamps: dict[BalanceKey, datetime]) -> list[dict[str, Any]]:
        out = []
        for (user_id, asset), (available, held) in mirror.items():
            dec = self.decimals[asset]
            # The id only matters for a new row (an existing one keeps its own). A key is in
            # ``self.balances`` only if its row exists: the mirror is loaded from the table
            # and only ever extended after a transaction that upserted the row committed.
            row_id = uuid.UUID(new_id()) if (user_id, asset) not in self.balances else _KEPT
            out.append({"id": row_id, "user_id": user_id, "asset": asset,
                        "available": units_to_decimal(available, dec),
                        "held": units_to_decimal(held, dec),
                        "updated_at": stamps[(user_id, asset)]})
        return out
