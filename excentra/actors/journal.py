"""JournalActor: the single writer of the event log. Group commit, acknowledge, hand on.

It receives every state change in pipeline order and keeps them in ``pending``; the first
``Commit`` of a batch tells the actor itself a ``Flush``, which queues behind whatever
arrived meanwhile, so one transaction takes everything waiting (up to ``max_batch``).
Each command becomes **one entry of the event log** (``excentra.db.eventlog``): the next
sequence number and everything the command changed. Only after the batch's transaction
commits is it acknowledged (DESIGN.md invariant 3): each reply is resolved here, in the
journal's thread, so an acknowledgement depends on durability alone — never on the
projector, which gets the batch next to write the tables the API reads, nor on the
broadcaster, which gets it (numbered) for the subscribers. A reply carries its batch
number, so the caller can wait (briefly) for the loop-side views to apply that batch
(``bridge.Fence``); reads of the tables wait for the projection instead
(``watermarks.Watermarks``: read-your-writes).

A ``Barrier`` is resolved once everything before it is in the log *and* in the tables
(the journal passes it on to the projector): what a rebuild reads must be there.

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

from excentra.actors.bridge import (
    Answerable,
    Fence,
    Rejected,
    Reply,
    Unavailable,
    resolve_all,
)
from excentra.actors.supervised import Supervised, close_loop
from excentra.actors.watermarks import Watermarks
from excentra.db import Database, IntegrityError, InvalidDataError
from excentra.db.eventlog import Entry, EventLog, encode
from excentra.db.records import Writes
from excentra.engine import Event, RejectCode
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
class UseProjector:
    """From now on hand logged batches to ``projector`` (it was restarted)."""

    projector: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Project:
    """What the projector receives: log entries, in sequence, now durable."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Committed:
    """What the broadcaster receives: one batch of durable commands, in commit order."""

    commands: tuple[Commit, ...]
    at: datetime
    number: int = 0
    """The batch's number (``bridge.Fence``); increasing for the life of the process."""


REFUSED_CONTENT = (IntegrityError, InvalidDataError, ValueError)
"""A write failing with one of these is refused for what a command carries (a constraint,
a value the database cannot hold; ``ValueError``: a balance the journal's mirror would see
negative), so one command is at fault and is isolated. Anything else (the database
unreachable, the disk full, a bug) is no command's fault: the journal dies and the
supervisor rebuilds the core once the database works."""


class Diverged(Exception):  # noqa: N818 (the journal's reason to die, like Unavailable)
    """Memory holds a command the database refused: the core must be rebuilt."""


# -- the store ------------------------------------------------------------------------------


class Store(Protocol):
    """Where batches become durable (the event log; a fake in actor tests)."""

    async def open(self) -> None: ...

    async def write(self, batch: list[Entry]) -> None:
        """All of ``batch`` in one transaction, or nothing (raise)."""
        ...

    async def close(self) -> None: ...


class DatabaseStore:
    """The event log in the database (``excentra.db.eventlog``)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.log = EventLog(self.db)

    async def open(self) -> None:
        await self.db.connect()

    async def write(self, batch: list[Entry]) -> None:
        await self.log.append(batch)

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

    def record(self, size: int, seconds: float) -> None:
        """One batch of ``size`` written in ``seconds``."""
        self.batches += 1
        self.commands += size
        self.max_batch = max(self.max_batch, size)
        self.seconds += seconds
        if len(self.sizes) < 100_000:
            self.sizes.append(size)

    def copy(self) -> JournalStats:
        return JournalStats(self.batches, self.commands, self.max_batch, self.seconds,
                            list(self.sizes))


# -- the actor ------------------------------------------------------------------------------


class JournalActor(Supervised):
    def __init__(self, store: Store, broadcaster: pykka.ActorRef[Any] | None,
                 max_batch: int = 2000, *, seq: int = 0,
                 projector: pykka.ActorRef[Any] | None = None,
                 watermarks: Watermarks | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.broadcaster = broadcaster
        self.projector = projector
        """Gets every logged batch (``None``: no projection, e.g. actor tests)."""
        self.watermarks = watermarks
        self.max_batch = max_batch
        self.seq = seq
        """The last sequence number written to the log."""
        self.pending: list[Commit] = []
        self.barriers: list[Reply] = []
        self.paused = False
        self.stats = JournalStats()
        self.loop: asyncio.AbstractEventLoop | None = None

    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.store.open())

    def finish(self) -> None:
        """A stop: write and acknowledge what is pending (its ``Flush`` is queued behind
        the stop). If that fails, those commands are answered "did not happen" by the
        supervisor, which is true: nothing of them is in the log."""
        if self.pending and not self.paused and self.loop is not None:
            try:
                self._flush()
            except Exception:
                log.exception("writing at stop failed; the pending commands did not happen")

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
                message.reply.resolve(self.stats.copy())
            case Pause():
                self.paused = True
            case Resume():
                self.paused = False
                self.actor_ref.tell(Flush())
            case UseBroadcaster():
                self.broadcaster = message.broadcaster
            case UseProjector():
                self.projector = message.projector
            case _:
                raise TypeError(f"JournalActor: unexpected {message!r}")

    def _flush(self) -> None:
        if self.paused:
            return
        while self.pending:
            batch, self.pending = (self.pending[:self.max_batch],
                                   self.pending[self.max_batch:])
            # A database that cannot be reached raises here: the actor dies, and the
            # supervisor answers each command of this batch from what the database says
            # (it may have committed).
            written, poisoned = self._write_isolating(batch)
            for part, entries in written:
                self._acknowledge(part, entries)
            if poisoned is not None:
                self._refuse(poisoned, batch)
        barriers, self.barriers = self.barriers, []
        for reply in barriers:
            self._pass_barrier(reply)

    def _pass_barrier(self, reply: Reply) -> None:
        """Everything before ``reply`` is in the log: the projector resolves it once the
        tables have it too."""
        if self.projector is None:
            reply.resolve(self.stats.commands)
            return
        try:
            self.projector.tell(Barrier(reply))
        except pykka.ActorDeadError:  # being restarted: the asker tries again
            reply.fail(Unavailable("projector down"))

    def _write_isolating(self, batch: list[Commit]
                         ) -> tuple[list[tuple[list[Commit], list[Entry]]],
                                    tuple[Commit, Exception] | None]:
        """Write ``batch``; if the database refuses its content, write the longest prefix
        it accepts (halving, so a few transactions, never one per command) and name the
        first command it refuses. Returns the committed parts in order and that command.

        Only a prefix may commit: the commands after a refused one were computed on
        in-memory state that includes it (a balance it credited, a resting order it
        placed), so they are as untrue as it is. They are left for the supervisor's
        rebuild, which answers them "did not happen" (the facade then runs them again).
        """
        assert self.loop is not None
        started = time.perf_counter()
        first = self.seq + 1
        entries = [Entry(first + i, c.writes, encode(c.writes)) for i, c in enumerate(batch)]
        try:
            self.loop.run_until_complete(self.store.write(entries))
        except REFUSED_CONTENT as exc:
            if len(batch) == 1:
                return [], (batch[0], exc)
            half = len(batch) // 2
            done, poisoned = self._write_isolating(batch[:half])
            if poisoned is not None:
                return done, poisoned
            rest, poisoned = self._write_isolating(batch[half:])
            return done + rest, poisoned
        self.stats.record(len(batch), time.perf_counter() - started)
        self.seq += len(batch)
        return [(batch, entries)], None

    def _acknowledge(self, batch: list[Commit], entries: list[Entry]) -> None:
        """``batch`` (its log ``entries``) is durable."""
        number = Fence.next_batch()
        self._project(entries)  # both before the acknowledgements
        self._note(batch, entries[0].seq)
        self._publish(batch, number)
        answers = []
        for c in batch:
            if c.reply is not None:
                c.reply.batch = number
                answers.append((c.reply, c.result))
        resolve_all(answers)

    def _refuse(self, poisoned: tuple[Commit, Exception], batch: list[Commit]) -> None:
        """One command's writes were refused by the database (a row it cannot hold, e.g.
        a reference to a user deleted behind the exchange's back): that command alone is
        answered ``UNSTORABLE``. Memory still holds its effects, so the actor dies: the
        supervisor rebuilds the core from the database, which never saw it, and answers
        every command not yet written (the rest of this batch, all that is pending)
        "did not happen" — the facade runs those again on the rebuilt core, so their
        callers see a short delay, not an error."""
        command, exc = poisoned
        log.error("the database refused a command; it is refused alone",
                  extra={"command_id": command.writes.command_id, "kind": command.writes.kind,
                         "error": f"{type(exc).__name__}: {exc}",
                         "not_written_after_it": len(batch) - batch.index(command) - 1
                         + len(self.pending)})
        if command.reply is not None:
            command.reply.resolve(Rejected(RejectCode.UNSTORABLE))
        raise Diverged(command.writes.command_id) from exc

    def _project(self, entries: list[Entry]) -> None:
        if self.projector is None:
            return
        try:
            self.projector.tell(Project(tuple(entries)))
        except pykka.ActorDeadError:  # its restart projects the log from the database
            log.warning("projector down; it catches up from the log when restarted",
                        extra={"entries": len(entries), "first": entries[0].seq})

    def _note(self, batch: list[Commit], first: int) -> None:
        """Tell the readers how far the log is, and which users each entry touched."""
        if self.watermarks is None:
            return
        users: dict[str, int] = {}
        catalog = 0
        for i, c in enumerate(batch):
            seq, w = first + i, c.writes
            if w.user_id is not None:
                users[str(w.user_id)] = seq
            for m in w.movements:
                users[str(m.user_id)] = seq
            if w.assets or w.pairs:
                catalog = seq
        self.watermarks.logged_batch(self.seq, users.items(), catalog)

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
