"""JournalActor: the single writer. Group commit, then acknowledge, then broadcast.

It receives every state change in pipeline order and keeps them in ``pending``; the first
``Commit`` of a batch tells the actor itself a ``Flush``, which queues behind whatever
arrived meanwhile, so one transaction takes everything waiting (up to ``max_batch``).
Only after the transaction commits is the batch handed to the broadcaster, which delivers
it to the subscribers and then resolves the replies (DESIGN.md invariant 3: acknowledge
after durable).

The database is reached through ``databases`` on an event loop private to this actor's
thread: no lock or connection is shared with the HTTP loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pykka

from excentra.actors.bridge import Reply
from excentra.actors.supervised import Supervised
from excentra.db import Database
from excentra.db.journal import BalanceKey, JournalWriter
from excentra.db.records import Writes
from excentra.engine import Event
from excentra.ledger import SettledTrade

log = logging.getLogger("excentra.journal")


@dataclass(frozen=True, slots=True)
class Commit:
    """One command's writes; ``result`` goes to ``reply`` once they are durable."""

    writes: Writes
    result: Any
    reply: Reply | None
    symbol: str | None
    events: tuple[Event, ...]
    trades: tuple[SettledTrade, ...]


@dataclass(frozen=True, slots=True)
class Flush:
    """Write everything pending (sent by the journal to itself)."""


@dataclass(frozen=True, slots=True)
class Barrier:
    """Resolve ``reply`` once everything received before it is durable."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Hold:
    """Tests only: stop writing until ``Release`` (commands queue up meanwhile)."""


@dataclass(frozen=True, slots=True)
class Release:
    pass


@dataclass(frozen=True, slots=True)
class Stats:
    """Answer with a copy of the journal's ``JournalStats``."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Committed:
    """What the broadcaster receives: one batch of durable commands, in commit order."""

    commands: tuple[Commit, ...]
    at: datetime


def resolve_replies(commands: Iterable[Commit]) -> None:
    """Acknowledge committed commands to their callers."""
    for c in commands:
        if c.reply is not None:
            c.reply.resolve(c.result)


@dataclass
class JournalStats:
    """Group-commit figures: batches written, commands in them, time spent writing."""

    batches: int = 0
    commands: int = 0
    max_batch: int = 0
    seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)

    @property
    def mean_batch(self) -> float:
        return self.commands / self.batches if self.batches else 0.0


class JournalActor(Supervised):
    def __init__(self, url: str, balances: dict[BalanceKey, list[int]],
                 decimals: dict[str, int], broadcaster: pykka.ActorRef[Any] | None,
                 max_batch: int = 2000, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.broadcaster = broadcaster
        self.max_batch = max_batch
        self.pending: list[Commit] = []
        self.barriers: list[Reply] = []
        self.held = False
        self.stats = JournalStats()
        self._balances, self._decimals = balances, decimals

    def on_start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(self.url)
        self.loop.run_until_complete(self.db.connect())
        self.writer = JournalWriter(self.db, self._balances, self._decimals)

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *exc: Any) -> None:
        self._close()
        super().on_failure(*exc)

    def _close(self) -> None:
        if hasattr(self, "loop") and not self.loop.is_closed():
            self.loop.run_until_complete(self.db.disconnect())
            self.loop.close()

    def handle(self, message: Any) -> None:
        match message:
            case Commit():
                self.pending.append(message)
                if len(self.pending) == 1:
                    self.actor_ref.tell(Flush())
            case Flush():
                self._flush()
            case Barrier():
                self.barriers.append(message.reply)
                self.actor_ref.tell(Flush())
            case Stats():
                s = self.stats
                message.reply.resolve(JournalStats(s.batches, s.commands, s.max_batch,
                                                   s.seconds, list(s.sizes)))
            case Hold():
                self.held = True
            case Release():
                self.held = False
                self.actor_ref.tell(Flush())
            case _:
                raise TypeError(f"JournalActor: unexpected {message!r}")

    def _flush(self) -> None:
        if self.held:
            return
        while self.pending:
            batch, self.pending = (self.pending[:self.max_batch],
                                   self.pending[self.max_batch:])
            started = time.perf_counter()
            self.loop.run_until_complete(self.writer.write([c.writes for c in batch]))
            self._account(len(batch), time.perf_counter() - started)
            self._publish(batch)
        barriers, self.barriers = self.barriers, []
        for reply in barriers:
            reply.resolve(self.stats.commands)

    def _publish(self, batch: list[Commit]) -> None:
        """Hand the committed batch to the broadcaster, which tells its subscribers and
        then resolves the replies: subscribers on the caller's event loop (the WS hub)
        have applied the batch before any reply resumes a request there (a client that
        got its answer reads its own trade in the ticker). Without a broadcaster the
        replies are resolved here."""
        if self.broadcaster is not None:
            try:
                self.broadcaster.tell(Committed(tuple(batch), batch[-1].writes.at))
                return
            except pykka.ActorDeadError:  # the supervisor is replacing it
                log.warning("broadcaster down; committed batch not broadcast",
                            extra={"commands": len(batch)})
        resolve_replies(batch)

    def _account(self, size: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.commands += size
        s.max_batch = max(s.max_batch, size)
        s.seconds += seconds
        if len(s.sizes) < 100_000:
            s.sizes.append(size)
