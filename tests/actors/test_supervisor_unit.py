"""Supervisor, without a database: its durable state is a fake (``FakeDurable``), the
journal writes to ``FakeStore``s; the actors are the real ones.

What it promises:

* ``start()`` starts broadcaster, journal, ledger and one book per pair, each confirmed
  before the next; if one fails to start, ``start()`` raises and nothing is left running.
* a **book** dies → only that book is rebuilt (``book_recoveries``); the ledger, the
  journal and the other books keep running, the same actors.
* the **ledger** or the **journal** dies → the core is rebuilt (``recoveries``): new
  journal, ledger and books (a live broadcaster is kept). Every command still waiting is
  then answered from durable state: its stored result if it committed, else
  ``Unavailable`` (it did not happen).
* the **broadcaster** dies → only it is restarted, and the journal is told to use it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka
import pytest
import pytest_asyncio

from excentra.actors.book import BookActor, InjectFault
from excentra.actors.bridge import Outstanding, Reply, Unavailable
from excentra.actors.durable import Built
from excentra.actors.journal import Store
from excentra.actors.ledger import Deposit
from excentra.actors.supervisor import Actors, Kinds, Supervisor
from excentra.db.state import AssetState, PairState, State
from tests.actors.helpers import Recorder
from tests.actors.probes import (
    BTC_USDT,
    DECIMALS,
    ETH_USDT,
    PAIRS,
    FakeStore,
    answer,
    eventually,
    new_id,
)

pytestmark = pytest.mark.asyncio

D = Decimal


def empty_exchange() -> State:
    """Two pairs, no users, no orders."""
    return State(
        assets=[AssetState(symbol, decimals, True) for symbol, decimals in DECIMALS.items()],
        pairs=[PairState(uuid.uuid4(), symbol, base, quote, None, None, D(0), D(0), True, 0)
               for symbol, (base, quote) in PAIRS.items()],
        balances=[], open_orders=[], pending_withdrawals=[], order_seq=0, trade_seq=0)


class FakeDurable:
    """The ``Durable`` the supervisor rebuilds from: a fixed ``State``, and a new
    ``FakeStore`` for each journal. The stores made are given ``failing`` stores first
    (one per start), then well-behaved ones. ``committed`` answers from what the stores
    wrote, as the database would."""

    def __init__(self, state: State, *failing: FakeStore) -> None:
        self.state = state
        self.failing = list(failing)
        self.stores: list[FakeStore] = []
        self.loads = 0

    async def catch_up(self) -> int:
        return 0  # nothing is projected here: the stores are the log

    async def load(self) -> tuple[State, set[str]]:
        self.loads += 1
        return self.state, set()

    async def committed(self, command_ids: list[str]) -> dict[str, Any]:
        written: dict[str, Any] = {}
        for store in self.stores:
            written.update(store.results())
        return {c: written[c] for c in command_ids if c in written}

    def store(self, built: Built) -> Store:
        store = self.failing.pop(0) if self.failing else FakeStore()
        self.stores.append(store)
        return store

    def projection(self) -> None:
        return None  # no projector: a barrier is resolved by the journal


class NoBook(BookActor):
    """A book that cannot start."""

    def setup(self) -> None:
        raise RuntimeError("no book today")


Make = Callable[..., Awaitable[Supervisor]]


@pytest_asyncio.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """Make a (not yet started) supervisor; every one made is stopped at teardown."""
    made: list[tuple[Supervisor, FakeDurable]] = []

    async def make(durable: FakeDurable | None = None, kinds: Kinds | None = None,
                   subscribers: tuple[Recorder, ...] = ()) -> Supervisor:
        durable = durable or FakeDurable(empty_exchange())
        # The URL is never connected to: with ``durable`` given, nothing reads it.
        sv = Supervisor(f"sqlite:///{tmp_path / 'never-used.db'}",
                        asyncio.get_running_loop(), Outstanding(), subscribers,
                        durable=durable, kinds=kinds or Kinds())
        made.append((sv, durable))
        return sv

    try:
        yield make
    finally:
        for sv, durable in made:
            await sv.stop()
            for store in durable.stores:
                store.reclaim_loop()  # see FakeStore.reclaim_loop
    assert not (tmp_path / "never-used.db").exists()


@pytest_asyncio.fixture
async def sv(make: Make) -> Supervisor:
    supervisor = await make()
    await supervisor.start()
    return supervisor


def actors(sv: Supervisor) -> Actors:
    assert sv.actors is not None
    return sv.actors


def every_ref(a: Actors) -> list[pykka.ActorRef[Any]]:
    return [a.broadcaster, a.journal, a.ledger, *a.books.values()]


async def nothing_running() -> None:
    def clear() -> bool:
        threads = [t for t in threading.enumerate() if "Actor" in t.name and t.is_alive()]
        return not pykka.ActorRegistry.get_all() and not threads

    await eventually(clear, "actors are still running")


async def recovered(sv: Supervisor, counter: str, count: int = 1) -> None:
    """Wait until ``sv.<counter>`` reached ``count`` and every recovery task finished."""
    await eventually(lambda: getattr(sv, counter) >= count, f"no {counter}")
    await asyncio.wait_for(sv.wait_recovered(), 5)
    assert not sv.recovering


def deposit(sv: Supervisor, command_id: str) -> Reply:
    """A command as the facade sends one: its reply registered as outstanding."""
    reply = Reply(sv.loop, sv.outstanding, command_id=command_id, target="ledger")
    actors(sv).ledger.tell(Deposit(command_id, new_id(), "USDT", D(10), reply))
    return reply


# -- start ------------------------------------------------------------------------------


async def test_start_runs_every_actor_one_book_per_pair(sv: Supervisor) -> None:
    a = actors(sv)

    assert sorted(a.books) == [BTC_USDT, ETH_USDT]
    assert all(ref.is_alive() for ref in every_ref(a))
    assert (sv.recoveries, sv.book_recoveries) == (0, 0)


async def test_a_started_core_commits_commands(sv: Supervisor) -> None:
    result = await answer(deposit(sv, "d1"))

    assert result["asset"] == "USDT"
    assert D(result["available"]) == 10


async def test_start_raises_when_the_journal_cannot_open_its_store_and_stops_the_rest(
        make: Make) -> None:
    supervisor = await make(FakeDurable(empty_exchange(),
                                        FakeStore(fail_open=OSError("database down"))))

    with pytest.raises(OSError, match="database down"):
        await supervisor.start()

    assert supervisor.actors is None
    await nothing_running()


async def test_start_raises_when_a_book_cannot_start_and_stops_the_rest(
        make: Make) -> None:
    durable = FakeDurable(empty_exchange())
    supervisor = await make(durable, Kinds(book=NoBook))

    with pytest.raises(RuntimeError, match="no book today"):
        await supervisor.start()

    assert supervisor.actors is None
    await nothing_running()
    assert durable.stores[0].closed  # the journal was stopped, not abandoned


# -- a book dies ----------------------------------------------------------------------------


async def test_a_dead_book_is_rebuilt_alone(sv: Supervisor) -> None:
    before = actors(sv)
    broadcaster, journal, ledger, eth = (before.broadcaster, before.journal, before.ledger,
                                         before.books[ETH_USDT])
    dead_book = before.books[BTC_USDT]

    dead_book.tell(InjectFault())
    await recovered(sv, "book_recoveries")

    after = actors(sv)
    assert (sv.book_recoveries, sv.recoveries) == (1, 0)
    assert after.books[BTC_USDT] is not dead_book
    assert after.books[BTC_USDT].is_alive()
    assert (after.broadcaster, after.journal, after.ledger, after.books[ETH_USDT]) == (
        broadcaster, journal, ledger, eth)
    assert all(ref.is_alive() for ref in every_ref(after))
    assert not sv.books_down


# -- the core dies ------------------------------------------------------------------------


async def test_a_dead_ledger_rebuilds_the_whole_core(sv: Supervisor) -> None:
    before = actors(sv)
    old = {"journal": before.journal, "ledger": before.ledger, **before.books}

    before.ledger.tell(InjectFault())  # not a ledger message: a bug, it dies
    await recovered(sv, "recoveries")

    after = actors(sv)
    new = {"journal": after.journal, "ledger": after.ledger, **after.books}
    assert (sv.recoveries, sv.book_recoveries) == (1, 0)
    assert new.keys() == old.keys()
    assert all(new[name] is not old[name] for name in old)
    assert all(ref.is_alive() for ref in every_ref(after))
    assert not any(ref.is_alive() for ref in old.values())
    assert after.broadcaster is before.broadcaster  # alive: kept, with its subscribers


async def test_a_command_caught_by_a_rebuild_gets_its_stored_result_if_it_committed(
        make: Make) -> None:
    """The write landed but the journal died before acknowledging it."""
    lost_ack = FakeStore(fail_after_write=OSError("connection reset"))
    supervisor = await make(FakeDurable(empty_exchange(), lost_ack))
    await supervisor.start()

    reply = deposit(supervisor, "d1")
    await recovered(supervisor, "recoveries")

    assert await answer(reply) == lost_ack.results()["d1"]
    assert len(supervisor.outstanding) == 0


async def test_a_command_caught_by_a_rebuild_fails_unavailable_if_it_did_not_commit(
        make: Make) -> None:
    failed = FakeStore(fail_write=OSError("disk full"))
    supervisor = await make(FakeDurable(empty_exchange(), failed))
    await supervisor.start()

    reply = deposit(supervisor, "d1")
    await recovered(supervisor, "recoveries")

    with pytest.raises(Unavailable):
        await answer(reply)
    assert len(supervisor.outstanding) == 0
    assert failed.batches == []


# -- the broadcaster dies -----------------------------------------------------------------


async def test_a_dead_broadcaster_is_restarted_alone_and_the_journal_uses_the_new_one(
        make: Make) -> None:
    recorder = Recorder()
    supervisor = await make(subscribers=(recorder,))
    await supervisor.start()
    before = actors(supervisor)
    old = before.broadcaster
    journal, ledger, books = before.journal, before.ledger, dict(before.books)

    old.tell("hello")  # not a broadcaster message: a bug, it dies
    await eventually(lambda: actors(supervisor).broadcaster is not old,
                     "the broadcaster was not restarted")
    await asyncio.wait_for(supervisor.wait_recovered(), 5)

    after = actors(supervisor)
    assert after.broadcaster.is_alive()
    assert (after.journal, after.ledger, after.books) == (journal, ledger, books)
    assert (supervisor.recoveries, supervisor.book_recoveries) == (0, 0)
    await answer(deposit(supervisor, "d1"))
    await eventually(lambda: [c.writes.command_id for c in recorder.commands] == ["d1"],
                     "the subscriber did not get the batch through the new broadcaster")
