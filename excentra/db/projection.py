"""The tables the API reads, as a projection of the event log.

``Projection`` applies log entries to the tables in large batches (``JournalWriter``: one
transaction per batch, set-based statements) and records, in the same transaction, the
sequence number it reached (``projection_state``). So an entry is applied exactly once:
after a crash, what the tables lack is exactly the log after that watermark, and
``catch_up`` applies it — at start, before the core is rebuilt from the tables, and when a
restarted projector finds a gap.

Retention: the tables keep the history; the log can be truncated up to the watermark
(``EventLog.truncate``, ``excentra log truncate``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal

from excentra.db.database import Database
from excentra.db.eventlog import Entry, EventLog
from excentra.db.journal import BalanceKey, JournalWriter
from excentra.engine.precision import on_grid

log = logging.getLogger("excentra.db.projection")

CATCH_UP_BATCH = 2000
"""Entries read from the log and applied per transaction when catching up."""


def _units(amount: Decimal, decimals: int) -> int:
    units = on_grid(amount, (1, 10 ** decimals))
    if units is None:
        raise ValueError(f"stored amount {amount} is off its asset's grid")
    return units


class Projection:
    """The tables' projection of the log in ``db`` (one writer at a time: the projector
    actor, or the start-up catch-up before it exists)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.log = EventLog(db)
        self.done = 0
        """The last entry the tables show."""
        self._writer: JournalWriter | None = None

    async def open(self) -> int:
        """Connect, read the watermark and the projected balances; the watermark."""
        if not self.db.is_connected:
            await self.db.connect()
        self.done = await self.log.projected()
        decimals = {r["symbol"]: int(r["decimals"]) for r in
                    await self.db.fetch_all("SELECT symbol, decimals FROM assets")}
        balances: dict[BalanceKey, list[int]] = {
            (r["user_id"], r["asset"]): [_units(r["available"], decimals[r["asset"]]),
                                         _units(r["held"], decimals[r["asset"]])]
            for r in await self.db.fetch_all(
                "SELECT user_id, asset, available, held FROM balances",
                types={"user_id": uuid.UUID, "available": Decimal, "held": Decimal})}
        self._writer = JournalWriter(self.db, balances, decimals)
        return self.done

    async def apply(self, entries: Sequence[Entry]) -> int:
        """Write ``entries`` (consecutive, right after the watermark) in one transaction;
        the new watermark."""
        assert self._writer is not None, "Projection.open first"
        if entries[0].seq != self.done + 1:
            raise ValueError(f"projection: entry {entries[0].seq} does not follow "
                             f"{self.done}")
        await self._writer.write([e.writes for e in entries], entries[-1].seq)
        self.done = entries[-1].seq
        return self.done

    async def catch_up(self, upto: int | None = None) -> int:
        """Apply what the log holds after the watermark (up to ``upto``); the new
        watermark. Long after a crash under load, so it reports its progress."""
        started, applied, last_report = time.monotonic(), 0, time.monotonic()
        while True:
            entries = await self.log.after(self.done, CATCH_UP_BATCH, upto)
            if not entries:
                break
            await self.apply(entries)
            applied += len(entries)
            if time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                log.info("projecting the event log", extra={
                    "applied": applied, "at": self.done,
                    "elapsed_seconds": round(last_report - started, 3)})
        if applied:
            log.info("projection caught up with the event log", extra={
                "applied": applied, "at": self.done,
                "elapsed_seconds": round(time.monotonic() - started, 3)})
        return self.done

    async def close(self) -> None:
        await self.db.disconnect()
