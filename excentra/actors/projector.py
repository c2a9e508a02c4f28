"""ProjectorActor: writes the tables the API reads from the event log, off the
acknowledgement path.

The journal hands it every logged batch (``Project``) after acknowledging it. Like the
journal it flushes in group: the first ``Project`` of a batch tells the actor itself a
``Flush``, which queues behind whatever arrived meanwhile, so under load one transaction
takes many of the journal's batches (up to ``max_batch`` entries) — the tables' cost per
command falls as the load rises, and never slows an acknowledgement.

Exactly once: each transaction records the entry it reached (``projection_state``), and
entries at or below it are skipped. A gap (entries the journal sent to a projector that
had died, before this one was named) is read from the log itself. A ``Barrier`` (passed on
by the journal) is resolved once the tables show everything logged before it: the
supervisor's rebuilds read the tables.

If writing fails the actor dies: the log has every entry, so its restart (the supervisor)
projects them from there; acknowledgements never stopped meanwhile, only the tables lag
(``/health`` reports it, reads that must see an entry wait or answer 503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from excentra.actors.bridge import Reply
from excentra.actors.journal import Barrier, JournalStats, Pause, Project, Resume, Stats
from excentra.actors.supervised import Supervised, close_loop
from excentra.actors.watermarks import Watermarks
from excentra.db.eventlog import Entry

log = logging.getLogger("excentra.projector")


class ProjectionStore(Protocol):
    """The tables (``excentra.db.projection.Projection``; a fake in actor tests)."""

    async def open(self) -> int:
        """Connect; the last entry the tables show."""
        ...

    async def apply(self, entries: list[Entry]) -> int:
        """Write consecutive ``entries`` right after the watermark in one transaction."""
        ...

    async def catch_up(self, upto: int | None = None) -> int:
        """Apply what the log holds after the watermark (up to ``upto``)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Flush:
    """Write everything pending (sent by the projector to itself)."""


class ProjectorActor(Supervised):
    def __init__(self, store: ProjectionStore, watermarks: Watermarks | None = None,
                 max_batch: int = 10_000, *, paused: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.watermarks = watermarks
        self.max_batch = max_batch
        self.paused = paused
        self.done = 0
        """The last entry the tables show."""
        self.pending: list[Entry] = []
        self.barriers: list[Reply] = []
        self.stats = JournalStats()
        self.loop: asyncio.AbstractEventLoop | None = None

    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.store.open())
        self._advanced(self.loop.run_until_complete(self.store.catch_up()))

    def finish(self) -> None:
        """A stop: write what is pending (its ``Flush`` is queued behind the stop), so a
        clean shutdown leaves the tables complete. Unwritten, it would be projected from
        the log at the next start all the same."""
        if self.pending and not self.paused and self.loop is not None:
            try:
                self._flush()
            except Exception:
                log.exception("projecting at stop failed; the next start projects it")

    def teardown(self) -> None:
        close_loop(self.loop, self.store.close() if self.loop is not None else None)

    def handle(self, message: Any) -> None:
        match message:
            case Project():
                first_of_batch = not self.pending
                self.pending.extend(message.entries)
                if first_of_batch:
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
            case _:
                raise TypeError(f"ProjectorActor: unexpected {message!r}")

    def _flush(self) -> None:
        if self.paused:
            return
        assert self.loop is not None
        while self.pending:
            batch, self.pending = (self.pending[:self.max_batch],
                                   self.pending[self.max_batch:])
            if batch[0].seq > self.done + 1:  # sent to a projector that had died
                self._advanced(self.loop.run_until_complete(
                    self.store.catch_up(batch[0].seq - 1)))
            batch = _fresh(batch, self.done)
            if batch:
                started = time.perf_counter()
                self._advanced(self.loop.run_until_complete(self.store.apply(batch)))
                self.stats.record(len(batch), time.perf_counter() - started)
        if self.barriers:
            logged = self.watermarks.logged if self.watermarks is not None else 0
            if logged > self.done:  # entries that never reached this projector
                self._advanced(self.loop.run_until_complete(self.store.catch_up(logged)))
            barriers, self.barriers = self.barriers, []
            for reply in barriers:
                reply.resolve(self.done)

    def _advanced(self, done: int) -> None:
        self.done = max(self.done, done)
        if self.watermarks is not None:
            self.watermarks.projected_to(self.done)


def _fresh(batch: list[Entry], done: int) -> list[Entry]:
    """The entries of ``batch`` after ``done``, each once, in sequence."""
    out: list[Entry] = []
    last = done
    for e in batch:
        if e.seq > last:
            out.append(e)
            last = e.seq
    return out
