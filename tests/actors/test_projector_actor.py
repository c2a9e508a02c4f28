"""ProjectorActor, alone: writes the tables from the event log, off the acknowledgement path.

Protocol (its store is an in-memory fake ``ProjectionStore``; ``Watermarks`` is real):

    start(store, watermarks, max_batch, paused=..., started=reply)
        store.open() ─► the tables' watermark; store.catch_up() ─► what the log holds
        beyond it is applied; watermarks.projected_to(done) ─► started ← the name
        (a projector started paused still catches up: only ``Project`` waits)
    Project(entries)
        ─► store.apply(entries): in order, one call per group — Projects that arrived
           while it was busy are applied together (up to ``max_batch`` entries)
        entries at or below the watermark are skipped (sent twice)
        a gap (first entry > watermark + 1: entries sent to a projector that had died)
           ─► store.catch_up(upto=first - 1) before applying
        after each apply: watermarks.projected_to(new watermark)
        an apply that raises kills the projector (on_death); the watermark stays where
        the last successful apply left it
    Barrier(reply)  ─► reply ← the watermark, once everything received before it is
                       applied; if watermarks.logged is beyond, catch_up(logged) first
    Pause() / Resume()  ─► apply nothing (Barriers wait) / apply everything held
    Stats(reply)    ─► reply ← JournalStats of the applies of Project batches
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import pytest
import pytest_asyncio

from excentra.actors.bridge import Reply
from excentra.actors.journal import Barrier, JournalStats, Pause, Project, Resume, Stats
from excentra.actors.projector import ProjectorActor
from excentra.actors.watermarks import Watermarks
from excentra.db.eventlog import Entry
from excentra.db.records import Writes
from tests.actors.probes import (
    TIMEOUT,
    Deaths,
    answer,
    dead,
    eventually,
    stopped,
    unanswered,
)

pytestmark = pytest.mark.asyncio
AT = datetime(2026, 4, 22, 10, 11, 12, tzinfo=UTC)


def entry(seq: int) -> Entry:
    """Log entry ``seq``: a command named after it."""
    return Entry(seq, Writes(f"cmd-{seq}", "deposit", None, "{}",
                             AT + timedelta(microseconds=seq)))


def entries(*seqs: int) -> tuple[Entry, ...]:
    return tuple(entry(s) for s in seqs)


class FakeProjection:
    """The projector's ``ProjectionStore`` in memory: the tables are a list of applied
    sequence numbers, the event log a list of entries the test fills.

    ``hold()`` makes the next applies block (in the projector's thread, like a slow
    database) until ``release()``; ``fail_apply`` raises from ``apply`` before anything
    is applied (the transaction failed). ``apply`` checks what the real ``Projection``
    checks: the entries follow the watermark.
    """

    def __init__(self, log: Iterable[int] = (), done: int = 0,
                 fail_apply: Exception | None = None) -> None:
        self._lock = threading.Lock()
        self.log = list(entries(*log))
        """The event log in the database (what ``catch_up`` reads)."""
        self.done = done
        """The tables' watermark."""
        self.fail_apply = fail_apply
        self.applied: list[list[int]] = []
        """Each ``apply`` call's sequence numbers."""
        self.catch_ups: list[int | None] = []
        """Each ``catch_up`` call's ``upto``."""
        self.caught_up: list[int] = []
        """Sequence numbers applied by ``catch_up``."""
        self.opened = self.closed = False
        self._gate = threading.Event()
        self._gate.set()
        self._applying = threading.Event()

    def logged(self, *seqs: int) -> None:
        """Entries the journal appended to the log (the projector was not told)."""
        with self._lock:
            self.log.extend(entries(*seqs))

    async def open(self) -> int:
        self.opened = True
        return self.done

    async def apply(self, batch: list[Entry]) -> int:
        self._applying.set()
        if not self._gate.wait(TIMEOUT):
            raise AssertionError("FakeProjection: held longer than a test may take")
        if self.fail_apply is not None:
            raise self.fail_apply
        if batch[0].seq != self.done + 1:
            raise ValueError(f"entry {batch[0].seq} does not follow {self.done}")
        with self._lock:
            self.applied.append([e.seq for e in batch])
        self.done = batch[-1].seq
        return self.done

    async def catch_up(self, upto: int | None = None) -> int:
        with self._lock:
            self.catch_ups.append(upto)
            for e in self.log:
                if e.seq > self.done and (upto is None or e.seq <= upto):
                    self.caught_up.append(e.seq)
                    self.done = e.seq
        return self.done

    async def close(self) -> None:
        self.closed = True

    # -- for the test --------------------------------------------------------------------

    def hold(self) -> None:
        self._applying.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    async def applying(self) -> None:
        """Return once an apply has started (after ``hold()``: it is now blocked)."""
        await eventually(self._applying.is_set, "the store was not applied to")


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    projector: pykka.ActorRef[Any]
    store: FakeProjection
    watermarks: Watermarks
    deaths: Deaths

    def project(self, *seqs: int) -> None:
        """The journal hands on logged entries (and has noted them as logged)."""
        self.watermarks.logged = max(self.watermarks.logged, *seqs)
        self.projector.tell(Project(entries(*seqs)))

    def barrier(self) -> Reply:
        reply = Reply(self.loop)
        self.projector.tell(Barrier(reply))
        return reply

    async def synced(self) -> int:
        """Once everything sent before is applied: the watermark the barrier reports."""
        done: int = await answer(self.barrier())
        return done

    async def stats(self) -> JournalStats:
        reply = Reply(self.loop)
        self.projector.tell(Stats(reply))
        stats: JournalStats = await answer(reply)
        return stats


Start = Callable[..., Awaitable[Rig]]


@pytest_asyncio.fixture
async def start() -> AsyncIterator[Start]:
    """Start a projector (confirmed) on a ``FakeProjection``; stopped at teardown."""
    loop = asyncio.get_running_loop()
    refs: list[pykka.ActorRef[Any]] = []

    async def start(store: FakeProjection | None = None, max_batch: int = 100,
                    paused: bool = False) -> Rig:
        store = store or FakeProjection()
        watermarks, deaths, started = Watermarks(), Deaths(loop), Reply(loop)
        projector = ProjectorActor.start(store, watermarks, max_batch, paused=paused,
                                         name="projector", on_death=deaths,
                                         started=started)
        refs.append(projector)
        assert await answer(started) == "projector"
        return Rig(loop, projector, store, watermarks, deaths)

    try:
        yield start
    finally:
        await stopped(*refs)


@pytest_asyncio.fixture
async def rig(start: Start) -> Rig:
    return await start()


# -- starting and stopping ----------------------------------------------------------------


async def test_setup_opens_the_store_catches_up_and_reports_the_watermark(
        start: Start) -> None:
    """The tables showed entry 2; the log holds 1–5: entries 3–5 are applied before the
    start is confirmed, and the readers are told the tables show entry 5."""
    rig = await start(FakeProjection(log=range(1, 6), done=2))

    assert rig.store.opened
    assert rig.store.catch_ups == [None]
    assert rig.store.caught_up == [3, 4, 5]
    assert rig.watermarks.projected == 5
    assert await rig.synced() == 5
    assert not rig.deaths.reported


async def test_a_projector_started_paused_still_catches_up_at_start(start: Start) -> None:
    rig = await start(FakeProjection(log=[1, 2]), paused=True)

    assert rig.store.caught_up == [1, 2]
    assert rig.watermarks.projected == 2


async def test_a_store_that_cannot_open_fails_the_started_reply() -> None:
    class Unopenable(FakeProjection):
        async def open(self) -> int:
            raise OSError("no database")

    loop = asyncio.get_running_loop()
    store, deaths, started = Unopenable(), Deaths(loop), Reply(loop)

    projector = ProjectorActor.start(store, Watermarks(), name="projector",
                                     on_death=deaths, started=started)

    with pytest.raises(OSError, match="no database"):
        await answer(started)
    await dead(projector)
    assert store.closed  # teardown ran: its loop and store are released
    assert not deaths.reported


async def test_stopping_the_projector_closes_its_store(rig: Rig) -> None:
    await stopped(rig.projector)

    assert rig.store.closed


# -- Project ----------------------------------------------------------------------------------


async def test_projected_batches_are_applied_in_order_and_reported(rig: Rig) -> None:
    rig.project(1, 2)
    assert await rig.synced() == 2
    rig.project(3)
    rig.project(4, 5, 6)

    assert await rig.synced() == 6
    assert [s for batch in rig.store.applied for s in batch] == [1, 2, 3, 4, 5, 6]
    assert rig.store.catch_ups == [None]  # only the start's: no gap, nothing missed
    assert rig.watermarks.projected == 6


async def test_projects_waiting_while_an_apply_runs_are_applied_as_one(rig: Rig) -> None:
    """Group apply: while entry 1 is being written, three more ``Project``s arrive; they
    become one transaction, not three."""
    rig.store.hold()  # a slow database
    rig.project(1)
    await rig.store.applying()
    rig.project(2)
    rig.project(3, 4)
    rig.project(5)
    barrier = rig.barrier()

    assert await unanswered(barrier)
    rig.store.release()
    assert await answer(barrier) == 5
    assert rig.store.applied == [[1], [2, 3, 4, 5]]  # 2 applies for 4 Projects
    stats = await rig.stats()
    assert (stats.batches, stats.commands, stats.max_batch, stats.sizes) == (2, 5, 4, [1, 4])


async def test_an_apply_never_exceeds_max_batch_entries(start: Start) -> None:
    rig = await start(max_batch=2)
    rig.projector.tell(Pause())
    for seq in range(1, 6):
        rig.project(seq)

    rig.projector.tell(Resume())

    assert await rig.synced() == 5
    assert rig.store.applied == [[1, 2], [3, 4], [5]]


async def test_entries_at_or_below_the_watermark_are_skipped(start: Start) -> None:
    """Exactly once: the tables show entry 3 (caught up at start); entries 2–3 sent again
    are not applied again, and a ``Project`` of applied entries only applies nothing."""
    rig = await start(FakeProjection(log=[1, 2, 3]))

    rig.project(2, 3, 4, 5)
    assert await rig.synced() == 5
    rig.project(5)
    assert await rig.synced() == 5
    assert rig.store.applied == [[4, 5]]  # nothing new: no apply at all
    rig.project(5, 6)

    assert await rig.synced() == 6
    assert rig.store.applied == [[4, 5], [6]]
    assert rig.store.catch_ups == [None]


async def test_a_gap_is_caught_up_from_the_log_before_applying(rig: Rig) -> None:
    """Entries 1–3 were logged while this projector was not yet the journal's (sent to
    one that had died): the first ``Project`` it gets starts at 4, so it reads 1–3 from
    the log first, then applies 4–5."""
    rig.store.logged(1, 2, 3, 4, 5)

    rig.project(4, 5)

    assert await rig.synced() == 5
    assert rig.store.catch_ups == [None, 3]
    assert rig.store.caught_up == [1, 2, 3]
    assert rig.store.applied == [[4, 5]]
    assert rig.watermarks.projected == 5


# -- Barrier ------------------------------------------------------------------------------


async def test_a_barrier_resolves_only_once_everything_before_it_is_applied(
        rig: Rig) -> None:
    rig.store.hold()
    rig.project(1)
    barrier = rig.barrier()
    await rig.store.applying()

    assert await unanswered(barrier)
    assert rig.watermarks.projected == 0
    rig.store.release()
    assert await answer(barrier) == 1
    assert rig.store.applied == [[1]]
    assert rig.watermarks.projected == 1


async def test_a_barrier_catches_up_to_what_was_logged_but_never_sent_here(
        rig: Rig) -> None:
    """The journal logged 1–3 (``watermarks.logged``) but the projector never got them
    (they went to its dead predecessor): the barrier reads them from the log before it
    resolves, so whoever waited on it (a rebuild reading the tables) sees them."""
    rig.store.logged(1, 2, 3)
    rig.watermarks.logged = 3

    assert await rig.synced() == 3
    assert rig.store.catch_ups == [None, 3]
    assert rig.store.caught_up == [1, 2, 3]
    assert rig.watermarks.projected == 3


async def test_a_barrier_with_nothing_pending_resolves_at_once(rig: Rig) -> None:
    assert await rig.synced() == 0
    assert rig.store.applied == []
    assert rig.store.catch_ups == [None]


# -- Pause / Resume -----------------------------------------------------------------------


async def test_paused_it_applies_nothing_until_resumed(rig: Rig) -> None:
    rig.projector.tell(Pause())
    rig.project(1, 2)
    rig.project(3)
    barrier = rig.barrier()

    assert await unanswered(barrier)
    assert (await rig.stats()).batches == 0  # Stats is answered meanwhile
    assert rig.store.applied == []
    assert rig.watermarks.projected == 0

    rig.projector.tell(Resume())

    assert await answer(barrier) == 3
    assert rig.store.applied == [[1, 2, 3]]  # everything held, as one apply
    assert rig.watermarks.projected == 3


# -- failure ------------------------------------------------------------------------------


async def test_an_apply_that_raises_kills_the_projector_and_the_watermark_stays(
        start: Start) -> None:
    """The tables show entry 2; applying 3 fails: the projector dies (its restart by the
    supervisor projects from the log), the readers still see the tables at 2, and a
    barrier waiting behind the failed apply is not answered by this projector."""
    store = FakeProjection(log=[1, 2])
    rig = await start(store)
    assert rig.watermarks.projected == 2
    store.fail_apply = OSError("disk full")

    rig.project(3, 4)
    barrier = rig.barrier()

    death = await rig.deaths.next()
    assert death.name == "projector"
    assert isinstance(death.error, OSError)
    await dead(rig.projector)
    assert rig.watermarks.projected == 2
    assert store.applied == []
    assert store.closed
    assert await unanswered(barrier)


async def test_an_unexpected_message_is_a_bug_that_kills_the_projector(rig: Rig) -> None:
    rig.projector.tell("hello")

    death = await rig.deaths.next()

    assert (death.name, type(death.error)) == ("projector", TypeError)
    await dead(rig.projector)


# -- Stats --------------------------------------------------------------------------------


async def test_stats_count_the_applies_of_projected_batches(start: Start) -> None:
    """Catch-ups (at start, for a gap) are not counted: only ``Project`` batches."""
    rig = await start(FakeProjection(log=[1, 2]))
    assert (await rig.stats()) == JournalStats()

    rig.project(3, 4)
    await rig.synced()
    rig.project(5)
    await rig.synced()

    stats = await rig.stats()
    assert (stats.batches, stats.commands, stats.max_batch, stats.sizes) == (2, 3, 2, [2, 1])
    assert stats.mean_batch == 1.5

