"""JournalActor: the single writer. Group commit, then acknowledge, then broadcast.

It receives every state change in pipeline order and keeps them in ``pending``; the first
``Commit`` of a batch tells the actor itself a ``Flush``, which queues behind whatever
arrived meanwhile, so one transaction takes everything waiting (up to ``max_batch``).
Only after the transaction commits is the batch acknowledged (DESIGN.md invariant 3):
each reply is resolved here, in the journal's thread, so an acknowledgement depends on
durability alone — never on the broadcaster, which gets the batch (numbered) for the
subscribers. A reply carries its batch number, so the caller can wait (briefly) for the
loop-side views to apply that batch (``bridge.Fence``: read-your-writes).

The database is reached through a ``Store`` on an event loop private to this actor's
thread: no lock or connection is shared with the HTTP loop. Tests give it a fake store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pykka

from excentra.actors.bridge import Answerable, Fence, Reply, resolve_all
from excentra.actors.supervised import Supervised, close_loop
from excentra.db import Database
from excentra.db.journal import BalanceKey, JournalWriter
from excentra.db.records import Writes
from excentra.engine import Event
from excentra.ledger import SettledTrade

log = logging.getLogger("excentra.journal")


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Commit:
    """One command's writes; ``result`` goes to ``reply`` once they are durable."""

    writes: Writes
    result: Any
    reply: Answerable | None
    symbol: str | None
    """The pair whose book the command went through (``None``: not a book command)."""
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
class Pause:
    """Tests only: stop writing until ``Resume`` (commands queue up meanwhile)."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Tests only: write again (everything queued while paused, in order)."""


@dataclass(frozen=True, slots=True)
class Stats:
    """Answer with a copy of the journal's ``JournalStats``."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class UseBroadcaster:
    """From now on hand committed batches to ``broadcaster`` (it was restarted)."""

    broadcaster: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Committed:
    """What the broadcaster receives: one batch of durable commands, in commit order."""

    commands: tuple[Commit, ...]
    at: datetime
    number: int = 0
    """The batch's number (``bridge.Fence``); increasing for the life of the process."""


# -- the store ------------------------------------------------------------------------------


class Store(Protocol):
    """Where batches become durable (the database; a fake in actor tests)."""

    async def open(self) -> None: ...

    async def write(self, batch: list[Writes]) -> None:
        """All of ``batch`` in one transaction, or nothing (raise)."""
        ...

    async def close(self) -> None: ...


class DatabaseStore:
    def __init__(self, url: str, balances: dict[BalanceKey, list[int]],
                 decimals: dict[str, int]) -> None:
        self.db = Database(url)
        self.writer = JournalWriter(self.db, balances, decimals)

    async def open(self) -> None:
        await self.db.connect()

    async def write(self, batch: list[Writes]) -> None:
        await self.writer.write(batch)

    async def close(self) -> None:
        await self.db.disconnect()


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


# -- the actor ------------------------------------------------------------------------------


class JournalActor(Supervised):
    def __init__(self, store: Store, broadcaster: pykka.ActorRef[Any] | None,
                 max_batch: int = 2000, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.broadcaster = broadcaster
        self.max_batch = max_batch
        self.pending: list[Commit] = []
        self.barriers: list[Reply] = []
        self.paused = False
        self.stats = JournalStats()
        self.loop: asyncio.AbstractEventLoop | None = None

    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.store.open())

    def teardown(self) -> None:
        close_loop(self.loop, self.store.close() if self.loop is not None else None)

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
            case Pause():
                self.paused = True
            case Resume():
                self.paused = False
                self.actor_ref.tell(Flush())
            case UseBroadcaster():
                self.broadcaster = message.broadcaster
            case _:
                raise TypeError(f"JournalActor: unexpected {message!r}")

    def _flush(self) -> None:
        if self.paused:
            return
        assert self.loop is not None
        while self.pending:
            batch, self.pending = (self.pending[:self.max_batch],
                                   self.pending[self.max_batch:])
            started = time.perf_counter()
            # A failing write raises: the actor dies, and the supervisor answers each
            # command of this batch from what the database says (it may have committed).
            self.loop.run_until_complete(self.store.write([c.writes for c in batch]))
            self._account(len(batch), time.perf_counter() - started)
            number = Fence.next_batch()
            self._publish(batch, number)
            answers = []
            for c in batch:
                if c.reply is not None:
                    c.reply.batch = number
                    answers.append((c.reply, c.result))
            resolve_all(answers)
        barriers, self.barriers = self.barriers, []
        for reply in barriers:
            reply.resolve(self.stats.commands)

    def _publish(self, batch: list[Commit], number: int) -> None:
        """Hand the committed batch to the broadcaster (before the acknowledgements, so
        a loop-side view usually has it applied by the time the caller resumes)."""
        if self.broadcaster is None:
            return
        try:
            self.broadcaster.tell(Committed(tuple(batch), batch[-1].writes.at, number))
        except pykka.ActorDeadError:  # the supervisor is replacing it
            log.warning("broadcaster down; committed batch not broadcast",
                        extra={"commands": len(batch), "batch": number})

    def _account(self, size: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.commands += size
        s.max_batch = max(s.max_batch, size)
        s.seconds += seconds
        if len(s.sizes) < 100_000:
            s.sizes.append(size)
