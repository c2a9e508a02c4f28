"""JournalActor, alone: the single writer. Group commit, then acknowledge, then broadcast.

Protocol (its store is an in-memory fake; the broadcaster a recording probe):

    start(store, broadcaster, max_batch, started=reply)
        store.open() ─► started ← the actor's name; open raises ─► started fails with it
        (without a ``started`` reply, a failed open is reported through ``on_death``)
    Commit(writes, result, reply, ...)
        ─► store.write([writes, ...]): everything pending, up to ``max_batch``, in order
        ─► only once the write returned: Committed(commands, at, number) to the
           broadcaster, then each reply ← its result, with ``reply.batch = number``
        a write that raises kills the journal (on_death) and answers nobody in its batch
        a write refused for a command's content (IntegrityError, InvalidDataError,
        ValueError) ─► halving: the longest prefix the database takes commits and is
           acknowledged, the first refused command ← Rejected(UNSTORABLE), and the
           journal dies (Diverged), answering nobody after it (the supervisor does)
    Barrier(reply)          ─► reply ← once everything received before it is written
    Pause() / Resume()      ─► hold writes back / write everything held, as one batch
    Stats(reply)            ─► reply ← JournalStats (batches, commands, sizes, ...)
    UseBroadcaster(ref)     ─► later batches go to ``ref``

Acknowledgements never depend on the broadcaster: it may be absent or dead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import pytest
import pytest_asyncio

from excentra.actors.bridge import Rejected, Reply
from excentra.actors.journal import (
    Barrier,
    Commit,
    Committed,
    Diverged,
    JournalActor,
    JournalStats,
    Pause,
    Resume,
    Stats,
    UseBroadcaster,
)
from excentra.db.records import Writes
from excentra.engine import RejectCode
from tests.actors.probes import (
    Deaths,
    FakeStore,
    Probe,
    answer,
    dead,
    eventually,
    stopped,
    unanswered,
)

pytestmark = pytest.mark.asyncio


def commit(loop: asyncio.AbstractEventLoop, command_id: str) -> Commit:
    """A deposit-like command: its writes, its result, and the caller's reply."""
    result = {"command": command_id}
    writes = Writes(command_id, "deposit", None, json.dumps(result), datetime.now(UTC))
    return Commit(writes, result, Reply(loop, command_id=command_id), None, (), ())


def reply_of(c: Commit) -> Reply:
    assert c.reply is not None
    return c.reply


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    journal: pykka.ActorRef[Any]
    store: FakeStore
    broadcaster: Probe
    deaths: Deaths

    def commit(self, command_id: str) -> Commit:
        c = commit(self.loop, command_id)
        self.journal.tell(c)
        return c

    async def stats(self) -> JournalStats:
        reply = Reply(self.loop)
        self.journal.tell(Stats(reply))
        stats: JournalStats = await answer(reply)
        return stats


Start = Callable[..., Awaitable[Rig]]


@pytest_asyncio.fixture
async def start() -> AsyncIterator[Start]:
    """Start a journal (confirmed) on a ``FakeStore`` with a probe broadcaster; stopped
    with everything else at teardown."""
    loop = asyncio.get_running_loop()
    refs: list[pykka.ActorRef[Any]] = []

    async def start(store: FakeStore | None = None, max_batch: int = 100) -> Rig:
        store = store or FakeStore()
        broadcaster, deaths, started = Probe(loop), Deaths(loop), Reply(loop)
        journal = JournalActor.start(store, broadcaster.ref, max_batch, name="journal",
                                     on_death=deaths, started=started)
        refs.extend([journal, broadcaster.ref])
        assert await answer(started) == "journal"
        return Rig(loop, journal, store, broadcaster, deaths)

    try:
        yield start
    finally:
        await stopped(*refs)


@pytest_asyncio.fixture
async def rig(start: Start) -> Rig:
    return await start()


# -- starting and stopping ----------------------------------------------------------------


async def test_started_is_resolved_with_the_name_once_the_store_is_open(rig: Rig) -> None:
    assert rig.store.opened  # the fixture awaited ``started``: it resolved to "journal"
    assert not rig.deaths.reported


@pytest.fixture
def unopenable() -> Iterator[FakeStore]:
    """A store whose ``open`` fails (its journal's leaked loop reclaimed at teardown)."""
    store = FakeStore(fail_open=OSError("no database"))
    yield store
    store.reclaim_loop()


async def test_a_store_that_cannot_open_fails_the_started_reply_not_on_death(
        unopenable: FakeStore) -> None:
    loop = asyncio.get_running_loop()
    deaths, started = Deaths(loop), Reply(loop)

    journal = JournalActor.start(unopenable, None, name="journal", on_death=deaths,
                                 started=started)

    with pytest.raises(OSError, match="no database"):
        await answer(started)
    await dead(journal)  # on_death, if called at all, would have been called before this
    assert not deaths.reported


async def test_without_a_started_reply_a_store_that_cannot_open_is_reported_dead(
        unopenable: FakeStore) -> None:
    deaths = Deaths(asyncio.get_running_loop())

    journal = JournalActor.start(unopenable, None, name="journal", on_death=deaths)

    death = await deaths.next()
    assert death.name == "journal"
    assert isinstance(death.error, OSError)
    await dead(journal)


async def test_a_journal_that_fails_to_start_closes_its_private_event_loop(
        unopenable: FakeStore) -> None:
    """BUG (excentra/actors/journal.py): ``setup`` creates an event loop, then
    ``store.open()`` raises; pykka calls neither ``on_stop`` nor ``on_failure`` when
    ``on_start`` raises, so ``_close`` never runs and the loop (with its self-pipe
    sockets) leaks: ``ResourceWarning: unclosed event loop`` at garbage collection,
    an error under ``filterwarnings = error``, in whichever test happens to collect it."""
    started = Reply(asyncio.get_running_loop())
    journal = JournalActor.start(unopenable, None, name="journal",
                                 on_death=Deaths(asyncio.get_running_loop()), started=started)
    with pytest.raises(OSError, match="no database"):
        await answer(started)
    await dead(journal)

    assert unopenable.loop is not None
    await eventually(unopenable.loop.is_closed, "the journal's event loop was left open",
                     timeout=1.0)


async def test_stopping_the_journal_closes_its_store(rig: Rig) -> None:
    await stopped(rig.journal)

    assert rig.store.closed


# -- commit, then acknowledge ---------------------------------------------------------------


async def test_a_commit_is_acknowledged_with_its_result_once_written(rig: Rig) -> None:
    c = rig.commit("c1")

    assert await answer(reply_of(c)) == {"command": "c1"}
    assert rig.store.command_ids == [["c1"]]
    assert reply_of(c).batch > 0


async def test_no_acknowledgement_before_the_write_has_returned(rig: Rig) -> None:
    rig.store.hold()  # a slow database
    c = rig.commit("c1")
    await rig.store.writing()

    assert await unanswered(reply_of(c))
    rig.store.release()
    assert await answer(reply_of(c)) == {"command": "c1"}


async def test_commits_waiting_while_paused_are_written_as_one_batch_in_order(
        rig: Rig) -> None:
    rig.journal.tell(Pause())
    commits = [rig.commit(f"c{i}") for i in range(5)]
    assert (await rig.stats()).batches == 0  # paused: all five are waiting, none written

    rig.journal.tell(Resume())

    replies = [reply_of(c) for c in commits]
    assert [await answer(r) for r in replies] == [c.result for c in commits]
    assert rig.store.command_ids == [["c0", "c1", "c2", "c3", "c4"]]
    assert len({r.batch for r in replies}) == 1
    stats = await rig.stats()
    assert (stats.batches, stats.commands, stats.max_batch, stats.sizes) == (1, 5, 5, [5])


async def test_a_batch_never_exceeds_max_batch(start: Start) -> None:
    rig = await start(max_batch=2)
    rig.journal.tell(Pause())
    commits = [rig.commit(f"c{i}") for i in range(5)]

    rig.journal.tell(Resume())

    for c in commits:
        await answer(reply_of(c))
    assert rig.store.command_ids == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert (await rig.stats()).sizes == [2, 2, 1]


async def test_batch_numbers_increase_from_batch_to_batch(rig: Rig) -> None:
    numbers = []
    for i in range(3):
        c = rig.commit(f"c{i}")
        await answer(reply_of(c))
        numbers.append(reply_of(c).batch)

    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3


# -- broadcast -------------------------------------------------------------------------------


async def test_the_broadcaster_gets_each_written_batch_with_its_number(rig: Rig) -> None:
    rig.journal.tell(Pause())
    commits = [rig.commit("c1"), rig.commit("c2")]
    rig.journal.tell(Resume())

    committed = await rig.broadcaster.next(Committed)

    assert committed.commands == tuple(commits)
    assert committed.at == commits[-1].writes.at
    await answer(reply_of(commits[0]))
    assert committed.number == reply_of(commits[0]).batch


async def test_use_broadcaster_sends_later_batches_to_the_new_broadcaster(rig: Rig) -> None:
    replacement = Probe(rig.loop)
    try:
        rig.journal.tell(UseBroadcaster(replacement.ref))

        c = rig.commit("c1")

        assert (await replacement.next(Committed)).commands == (c,)
        await rig.broadcaster.sync()
        assert not rig.broadcaster.received
    finally:
        await stopped(replacement.ref)


async def test_acknowledgements_do_not_depend_on_a_live_broadcaster(rig: Rig) -> None:
    await stopped(rig.broadcaster.ref)

    c = rig.commit("c1")

    assert await answer(reply_of(c)) == {"command": "c1"}
    assert rig.journal.is_alive()


async def test_without_a_broadcaster_commits_are_still_acknowledged() -> None:
    loop = asyncio.get_running_loop()
    journal = JournalActor.start(FakeStore(), None, name="journal", on_death=Deaths(loop))
    try:
        c = commit(loop, "c1")

        journal.tell(c)

        assert await answer(reply_of(c)) == {"command": "c1"}
    finally:
        await stopped(journal)


# -- barrier ------------------------------------------------------------------------------


async def test_a_barrier_resolves_only_once_everything_before_it_is_written(
        rig: Rig) -> None:
    rig.store.hold()
    c = rig.commit("c1")
    barrier = Reply(rig.loop)
    rig.journal.tell(Barrier(barrier))
    await rig.store.writing()

    assert await unanswered(barrier)
    rig.store.release()
    await answer(barrier)
    assert rig.store.command_ids == [["c1"]]
    assert await answer(reply_of(c)) == {"command": "c1"}


async def test_a_barrier_with_nothing_pending_resolves_at_once(rig: Rig) -> None:
    barrier = Reply(rig.loop)

    rig.journal.tell(Barrier(barrier))

    await answer(barrier)
    assert rig.store.batches == []


# -- failure ------------------------------------------------------------------------------


async def test_a_failing_write_kills_the_journal_and_answers_nobody_in_the_batch(
        start: Start) -> None:
    rig = await start(FakeStore(fail_write=OSError("disk full")))
    rig.journal.tell(Pause())
    commits = [rig.commit("c1"), rig.commit("c2")]
    rig.journal.tell(Resume())

    death = await rig.deaths.next()

    assert death.name == "journal"
    assert isinstance(death.error, OSError)
    for c in commits:  # it may have committed: only the database can say (supervisor)
        assert await unanswered(reply_of(c))
    await dead(rig.journal)
    assert rig.store.closed
    await rig.broadcaster.sync()
    assert not rig.broadcaster.received


async def test_an_unexpected_message_is_a_bug_that_kills_the_journal(rig: Rig) -> None:
    rig.journal.tell("hello")

    death = await rig.deaths.next()

    assert (death.name, type(death.error)) == ("journal", TypeError)
    await eventually(lambda: rig.store.closed, "the store was not closed")


# -- a command the database refuses ---------------------------------------------------------


async def test_a_command_the_database_refuses_is_refused_alone_and_its_prefix_commits(
        start: Start) -> None:
    """The database refuses c4's content (a constraint): the commands before it commit
    and are acknowledged (halving finds it in a few transactions, not one per command),
    c4 alone is answered ``UNSTORABLE``, and the journal dies (``Diverged``: memory holds
    c4's effects) leaving the commands after it unanswered — they were computed on that
    memory, so the supervisor's rebuild answers them "did not happen"."""
    rig = await start(FakeStore(refuse={"c4"}))
    rig.journal.tell(Pause())
    commits = [rig.commit(f"c{i}") for i in range(1, 9)]
    rig.journal.tell(Resume())

    death = await rig.deaths.next()

    assert (death.name, type(death.error)) == ("journal", Diverged)
    assert [await answer(reply_of(c)) for c in commits[:3]] == [
        {"command": f"c{i}"} for i in range(1, 4)]
    assert await answer(reply_of(commits[3])) == Rejected(RejectCode.UNSTORABLE)
    for c in commits[4:]:
        assert await unanswered(reply_of(c))
    assert [cid for batch in rig.store.command_ids for cid in batch] == ["c1", "c2", "c3"]
    assert rig.store.attempts <= 6  # 8 → 4 → 2+2 → 1+1 (+ the refused tries)
    await rig.broadcaster.sync()
    published = [c.writes.command_id for m in rig.broadcaster.received
                 for c in m.commands]
    assert published == ["c1", "c2", "c3"]  # what committed, and nothing else


async def test_a_refused_first_command_commits_nothing(start: Start) -> None:
    rig = await start(FakeStore(refuse={"c1"}))
    rig.journal.tell(Pause())
    commits = [rig.commit(f"c{i}") for i in range(1, 4)]
    rig.journal.tell(Resume())

    assert type((await rig.deaths.next()).error) is Diverged
    assert await answer(reply_of(commits[0])) == Rejected(RejectCode.UNSTORABLE)
    assert all([await unanswered(reply_of(c)) for c in commits[1:]])
    assert rig.store.batches == []
