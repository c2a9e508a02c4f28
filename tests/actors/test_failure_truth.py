"""The core tells the truth under failure (issue 10), with real actor threads:

* an answer of failure (``UNAVAILABLE``) means the command did not and will not happen,
  and an acknowledged command is durable — whichever actor dies, and however slow the
  subscribers are (acknowledgements never wait on the broadcaster);
* one pair's book dying stops that pair alone: the others keep trading meanwhile;
* a start that fails is seen: ``Exchange.start()`` raises, a core rebuild retries;
* a book's ``seq`` never goes back: not across a book rebuild, a core rebuild or a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pykka
import pytest

from excentra.actors import durable as durable_module
from excentra.actors import supervisor as sv_module
from excentra.actors.book import InjectFault
from excentra.actors.bridge import Rejected
from excentra.actors.journal import Committed, DatabaseStore, Pause
from excentra.actors.supervisor import Supervisor
from excentra.db.audit import audit
from excentra.engine import RejectCode, Side
from excentra.exchange import Exchange, Outcome
from tests.actors.helpers import (
    BTC_USDT,
    ETH_USDT,
    D,
    answered,
    assert_sound,
    count,
    funded_user,
    limit,
    normalized,
    ok,
    recovered,
    stored_levels,
)

pytestmark = pytest.mark.asyncio
UNAVAILABLE = Rejected(RejectCode.UNAVAILABLE)
OUTCOME_UNKNOWN = Rejected(RejectCode.OUTCOME_UNKNOWN)
CORE_ACTORS = 4 + 3
"""broadcaster, projector, journal, ledger, and one book per seeded pair (BTC, ETH, SOL
/USDT)."""


def _sv(ex: Exchange) -> Supervisor:
    assert ex.supervisor is not None
    assert ex.supervisor.actors is not None
    return ex.supervisor


def _kill(ex: Exchange, victim: str, symbol: str = BTC_USDT) -> None:
    """Make ``victim`` (``book`` = ``symbol``'s book, ``ledger``, ``journal``) die."""
    actors = _sv(ex).actors
    assert actors is not None
    if victim == "book":
        actors.books[symbol].tell(InjectFault("test: the book fails"))
    else:  # an unexpected message is a bug in the actor: it raises and dies
        getattr(actors, victim).tell(object())


def _scope(victim: str) -> dict[str, int]:
    """What one death of ``victim`` rebuilds: a book alone, else the whole core."""
    return {"book_recoveries": 1} if victim == "book" else {"recoveries": 1}


async def _book_is_the_database(ex: Exchange, symbol: str) -> dict[str, Any]:
    snap = await answered(ex.snapshot(symbol, depth=10_000))
    assert isinstance(snap, dict), snap
    stored = await stored_levels(ex.db, symbol)
    assert {"bids": normalized(snap["bids"]), "asks": normalized(snap["asks"])} == stored
    return snap


async def _orders(ex: Exchange) -> dict[str, tuple[str, Decimal, str | None]]:
    """Every stored order: id -> (user id, quantity, client order id)."""
    rows = await ex.db.fetch_all(
        "SELECT id, user_id, quantity, client_order_id FROM orders",
        types={"id": uuid.UUID, "user_id": uuid.UUID, "quantity": Decimal})
    return {str(r["id"]): (str(r["user_id"]), D(r["quantity"]).normalize(),
                           r["client_order_id"]) for r in rows}


def _actor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "Actor" in t.name and t.is_alive()]


async def _no_actor_left(timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while pykka.ActorRegistry.get_all() or _actor_threads():
        assert time.monotonic() < deadline, (pykka.ActorRegistry.get_all(),
                                             _actor_threads())
        await asyncio.sleep(0.02)


class SlowSubscriber:
    """A subscriber that takes 50 ms per batch (a slow WebSocket fan-out, say)."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.batches = 0

    def deliver(self, batch: Committed) -> None:
        time.sleep(self.delay)
        self.batches += 1


# -- a. no committed command is answered as failed ----------------------------------------


@dataclass(frozen=True)
class Sent:
    user: str
    quantity: Decimal
    outcome: Outcome


@pytest.mark.parametrize("victim", ["ledger", "journal", "book"])
async def test_no_committed_command_is_answered_as_failed(database_url: str,
                                                          victim: str) -> None:
    """~100 concurrent orders (no client order id: answered by the pipeline and the
    rebuild alone, never from a stored key) while ``victim`` dies and a slow subscriber
    lags behind: a result means stored, UNAVAILABLE means not stored, nobody is left
    with "outcome unknown", and the books still add up."""
    slow = SlowSubscriber()
    async with Exchange(database_url, subscribers=[slow]) as ex:
        makers = [await funded_user(ex, BTC="10") for _ in range(4)]
        takers = [await funded_user(ex, USDT="1000000") for _ in range(4)]
        before = await count(ex.db, "orders")

        async def order(i: int) -> Sent:
            await asyncio.sleep(i * 0.003)  # a stream: the fault lands in the middle
            quantity = D("0.01") + i * D("0.0001")  # unique: finds the order in the db
            if i % 3 == 0:  # makers rest asks (and fill resting bids)
                user, side, price = makers[i % 4], Side.SELL, str(50001 + i % 5)
            elif i % 3 == 1:  # takers cross the asks (the rest of theirs rests as a bid)
                user, side, price = takers[i % 4], Side.BUY, "50010"
            else:  # bids far below: rest
                user, side, price = takers[i % 4], Side.BUY, str(49990 - i % 7)
            return Sent(user, quantity, await limit(ex, user, side, price, str(quantity)))

        tasks = [asyncio.create_task(order(i)) for i in range(100)]
        await asyncio.sleep(0.1)
        _kill(ex, victim)
        sent = await answered(asyncio.gather(*tasks), 60)
        await recovered(ex, **_scope(victim))

        outcomes = [s.outcome for s in sent]
        assert OUTCOME_UNKNOWN not in outcomes  # the default timeout is never reached
        assert all(isinstance(o, dict) or o == UNAVAILABLE for o in outcomes), outcomes
        acked = [s for s in sent if isinstance(s.outcome, dict)]
        failed = [s for s in sent if s.outcome == UNAVAILABLE]
        assert acked, "the fault left nothing acknowledged: the test proves nothing"
        stored = await _orders(ex)
        for s in acked:  # a result: it happened
            assert isinstance(s.outcome, dict)
            assert stored.get(s.outcome["order_id"], ())[:2] == (s.user, s.quantity), s
        by_terms = {(user, qty) for user, qty, _ in stored.values()}
        wrongly_failed = [s for s in failed if (s.user, s.quantity) in by_terms]
        assert not wrongly_failed, f"answered UNAVAILABLE but committed: {wrongly_failed}"
        assert len(stored) == before + len(acked)
        assert await audit(ex.db) == []
        await assert_sound(ex)
        for symbol in (BTC_USDT, ETH_USDT):
            await _book_is_the_database(ex, symbol)
        # And the core trades on (a crossing order, on the pair that may have died).
        took = ok(await answered(limit(ex, takers[0], Side.BUY, "50010", "0.01")))
        assert took["status"] in ("filled", "partially_filled", "open")
        await assert_sound(ex)


# -- b. one bad book does not stop every pair ---------------------------------------------


@dataclass(frozen=True)
class Attempt:
    symbol: str
    client_order_id: str
    sent_at: float
    outcome: Outcome


OUTAGE = 0.5
"""Seconds the rebuilt book's database read is made to take (a busy database), so the
BTC/USDT outage is long enough to count what the other pair does meanwhile."""


async def test_one_bad_book_does_not_stop_every_pair(database_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ex = Exchange(database_url)
    await ex.start()
    try:
        sv = _sv(ex)
        prices = {BTC_USDT: 50000, ETH_USDT: 3000}
        makers = {BTC_USDT: await funded_user(ex, BTC="100"),
                  ETH_USDT: await funded_user(ex, ETH="1000")}
        takers = {s: await funded_user(ex, USDT="10000000") for s in prices}
        attempts: list[Attempt] = []
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        numbers = itertools.count()

        async def trade(symbol: str, maker: bool) -> None:
            while not stop.is_set():
                n = next(numbers)
                cid = f"{symbol}-{'m' if maker else 't'}-{n}"
                at = loop.time()
                if maker:  # asks just above the price: rest, or fill the resting bids
                    outcome = await limit(ex, makers[symbol], Side.SELL,
                                          str(prices[symbol] + n % 5), "0.01", symbol,
                                          client_order_id=cid)
                else:  # bids crossing the asks (what is left rests)
                    outcome = await limit(ex, takers[symbol], Side.BUY,
                                          str(prices[symbol] + 10), "0.015", symbol,
                                          client_order_id=cid)
                attempts.append(Attempt(symbol, cid, at, outcome))
                await asyncio.sleep(0.002)

        real_load = durable_module.load_state

        async def busy_load(db: Any) -> Any:
            await asyncio.sleep(OUTAGE)
            return await real_load(db)

        traders = [asyncio.create_task(trade(s, maker)) for s in prices
                   for maker in (True, False)]
        with monkeypatch.context() as m:
            m.setattr(durable_module, "load_state", busy_load)
            await asyncio.sleep(0.7)
            killed_at = loop.time()
            _kill(ex, "book", BTC_USDT)
            while sv.book_recoveries == 0 and loop.time() - killed_at < 20:
                await asyncio.sleep(0.002)
            back_at = loop.time()
            await asyncio.sleep(0.8)  # both pairs trade on after the rebuild
        stop.set()
        await answered(asyncio.gather(*traders), 60)
        await recovered(ex, book_recoveries=1)  # the book alone: recoveries stays 0

        outcomes = [a.outcome for a in attempts]
        assert OUTCOME_UNKNOWN not in outcomes
        assert all(isinstance(o, dict) or o == UNAVAILABLE for o in outcomes), {
            repr(o) for o in outcomes if not isinstance(o, dict)}
        eth = [a for a in attempts if a.symbol == ETH_USDT]
        btc = [a for a in attempts if a.symbol == BTC_USDT]
        assert [a for a in eth if not isinstance(a.outcome, dict)] == []
        during = [a for a in eth if killed_at <= a.sent_at < back_at - 0.05]
        assert len(during) > 0, "no ETH/USDT order was answered during the BTC outage"
        assert any(a.outcome == UNAVAILABLE for a in btc), "BTC/USDT was never refused"
        assert any(isinstance(a.outcome, dict) and a.sent_at > back_at for a in btc)

        stored = await _orders(ex)
        by_cid = {cid: oid for oid, (_, _, cid) in stored.items()}
        for a in attempts:
            if isinstance(a.outcome, dict):  # acknowledged: stored, as that very order
                assert by_cid.get(a.client_order_id) == a.outcome["order_id"], a
            else:  # refused: never happened
                assert a.client_order_id not in by_cid, a
        assert await audit(ex.db) == []
        await assert_sound(ex)
        hashes = {s: (await _book_is_the_database(ex, s))["state_hash"] for s in prices}
    finally:
        await ex.stop()

    # The rebuilt book is exactly what a fresh start builds from the database (same
    # orders, same time priority), and so is the book that never died.
    async with Exchange(database_url) as again:
        for symbol, state_hash in hashes.items():
            snap = await answered(again.snapshot(symbol, depth=10_000))
            assert isinstance(snap, dict), snap
            assert snap["state_hash"] == state_hash, symbol


async def test_a_journal_death_during_a_book_rebuild_rebuilds_the_core_promptly(
        exchange: Exchange) -> None:
    """The database stalls (the journal is paused), the BTC/USDT book dies — its rebuild
    waits for its barrier in the journal — and then the journal dies (its connection
    broke, say). The whole-core rebuild must not wait for that book rebuild's barrier,
    which nobody will ever resolve now: the core is back in seconds, and the commands the
    journal never wrote are answered "did not happen" (not "outcome unknown" after a
    ``reply_timeout`` spent waiting)."""
    ex, sv = exchange, _sv(exchange)
    ex.recovery_wait = 0  # the core's own answers, without the facade's re-send
    actors = sv.actors
    assert actors is not None
    user = await funded_user(ex, USDT="1000000")
    actors.journal.tell(Pause())
    waiting = [asyncio.create_task(limit(ex, user, Side.BUY, str(100 + i), "0.01",
                                         ETH_USDT)) for i in range(10)]
    actors.books[BTC_USDT].tell(InjectFault("test: the book fails"))

    async def book_down() -> None:
        while BTC_USDT not in sv.books_down:
            await asyncio.sleep(0.005)

    await answered(book_down(), 10)
    await asyncio.sleep(0.2)  # its BookDown passes the ledger; the barrier waits
    actors.journal.tell(object())  # the journal dies

    await recovered(ex, recoveries=1, timeout=10)
    outcomes = await answered(asyncio.gather(*waiting), 30)
    assert outcomes == [UNAVAILABLE] * len(waiting)  # never written: did not happen
    assert await count(ex.db, "orders") == 0
    ok(await answered(limit(ex, user, Side.BUY, "100", "0.01", BTC_USDT)))
    await _book_is_the_database(ex, BTC_USDT)
    await assert_sound(ex)


@pytest.mark.parametrize("victim", ["ledger", "journal"])
async def test_the_facade_runs_again_what_a_rebuild_answered_did_not_happen(
        exchange: Exchange, victim: str) -> None:
    """With the facade's ``recovery_wait`` (the default), a command caught in flight by
    a whole-core rebuild, or arriving during it, is sent to the rebuilt core: its caller
    gets an ordinary answer, and it happened exactly once."""
    user = await funded_user(exchange, USDT="1000000")
    exchange.recovery_wait = 10  # generous: a loaded CI machine is slow to rebuild
    in_flight = [asyncio.create_task(limit(exchange, user, Side.BUY, str(100 + i), "0.1",
                                           client_order_id=f"f-{i}")) for i in range(30)]
    await asyncio.sleep(0)
    _kill(exchange, victim)
    during = asyncio.create_task(limit(exchange, user, Side.BUY, "99", "0.1",
                                       client_order_id="during"))
    outcomes = await answered(asyncio.gather(*in_flight, during), 30)
    await recovered(exchange, recoveries=1)

    results = [ok(o) for o in outcomes]
    keys = [f"f-{i}" for i in range(30)] + ["during"]
    stored = {cid: oid for oid, (_, _, cid) in (await _orders(exchange)).items()}
    assert dict(zip(keys, (r["order_id"] for r in results), strict=True)) == stored
    await _book_is_the_database(exchange, BTC_USDT)
    await assert_sound(exchange)


# -- c. a failed start is not invisible -----------------------------------------------------


class JournalDatabase:
    """Patches ``DatabaseStore.open`` (the journal's connection, made in its thread at
    start): the first ``failures`` opens raise. Each open's event loop — the journal's
    private one — is kept, to check that a journal that failed to start closed it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failures = 0
        self.opens = 0
        self.failed_loops: list[asyncio.AbstractEventLoop] = []
        self.first_failure = threading.Event()
        real_open = DatabaseStore.open

        async def open_(store: DatabaseStore) -> None:
            self.opens += 1
            if self.opens <= self.failures:
                self.failed_loops.append(asyncio.get_running_loop())
                self.first_failure.set()
                raise ConnectionError("test: the journal's database is unreachable")
            await real_open(store)

        monkeypatch.setattr(DatabaseStore, "open", open_)

    def close_leaked(self) -> None:
        """Close what a failed start left open, so its ResourceWarning is not blamed on
        whichever later test the garbage collector happens to run in."""
        for loop in self.failed_loops:
            if not loop.is_closed():
                loop.close()


@pytest.fixture
def journal_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[JournalDatabase]:
    patched = JournalDatabase(monkeypatch)
    yield patched
    patched.close_leaked()


async def test_an_exchange_whose_journal_cannot_reach_its_database_does_not_start(
        database_url: str, journal_db: JournalDatabase) -> None:
    journal_db.failures = 1_000_000
    ex = Exchange(database_url)
    try:
        with pytest.raises(ConnectionError, match="unreachable"):
            await answered(ex.start(), 40)
        await _no_actor_left()  # the broadcaster it had started is stopped again
        assert ex.supervisor is None or ex.supervisor.actors is None
        outcome = await answered(ex.deposit(str(uuid.uuid4()), "USDT", D(1)))
        assert outcome == UNAVAILABLE
    finally:
        await ex.stop()


async def test_a_journal_that_fails_to_start_leaves_nothing_open(
        database_url: str, journal_db: JournalDatabase) -> None:
    """A failed start releases what ``setup`` acquired: the journal's private event loop
    (left open, its self-pipe sockets raise ResourceWarning when collected: with
    ``filterwarnings = error`` an unrelated later test errors)."""
    journal_db.failures = 1_000_000
    ex = Exchange(database_url)
    try:
        with pytest.raises(ConnectionError):
            await answered(ex.start(), 40)
        await _no_actor_left()
    finally:
        await ex.stop()
    assert len(journal_db.failed_loops) == 1
    assert journal_db.failed_loops[0].is_closed(), "the failed journal's loop is left open"


async def test_a_rebuild_whose_journal_cannot_connect_is_retried_until_it_can(
        exchange: Exchange, journal_db: JournalDatabase,
        monkeypatch: pytest.MonkeyPatch) -> None:
    exchange.recovery_wait = 0  # the core's own answers, without the facade's wait
    user = await funded_user(exchange, USDT="100000")
    acked_before = ok(await limit(exchange, user, Side.BUY, "100", "0.1",
                                  client_order_id="before"))
    journal_db.opens, journal_db.failures = 0, 3  # the rebuild's first three starts fail
    monkeypatch.setattr(sv_module, "RESTART_DELAY", 0.1)  # retries at +0.1, +0.2, +0.4 s
    in_flight = [asyncio.create_task(limit(exchange, user, Side.BUY, str(90 - i), "0.1",
                                           client_order_id=f"f-{i}")) for i in range(20)]
    await asyncio.sleep(0)
    _kill(exchange, "ledger")
    assert await asyncio.to_thread(journal_db.first_failure.wait, 20)
    during = await answered(limit(exchange, user, Side.BUY, "80", "0.1",
                                  client_order_id="during"))
    assert during == UNAVAILABLE  # refused while the core is being rebuilt
    outcomes = await answered(asyncio.gather(*in_flight), 60)
    await recovered(exchange, recoveries=1)

    assert journal_db.opens == 4  # three failed starts, then one that worked
    assert len(pykka.ActorRegistry.get_all()) == CORE_ACTORS  # no leftovers of failures
    assert all(isinstance(o, dict) or o == UNAVAILABLE for o in outcomes), outcomes
    stored = {cid for _, _, cid in (await _orders(exchange)).values()}
    for i, o in enumerate(outcomes):
        assert (f"f-{i}" in stored) == isinstance(o, dict), (i, o)
    assert "during" not in stored
    # The rebuilt core works, and a key used before still answers with its result.
    assert await answered(limit(exchange, user, Side.BUY, "100", "0.1",
                                client_order_id="before")) == acked_before
    ok(await answered(limit(exchange, user, Side.BUY, "80", "0.1", client_order_id="during")))
    await assert_sound(exchange)


# -- d. seq never goes back -----------------------------------------------------------------


async def _seq(ex: Exchange, symbol: str) -> int:
    snap = await answered(ex.snapshot(symbol))
    assert isinstance(snap, dict), snap
    seq: int = snap["seq"]
    return seq


@pytest.mark.parametrize("how", ["book", "ledger", "restart"])
async def test_a_books_seq_never_goes_back(database_url: str, how: str) -> None:
    ex = Exchange(database_url)
    await ex.start()
    try:
        user = await funded_user(ex, BTC="1", ETH="10")
        asks = itertools.count(60000)

        async def rest(symbol: str = BTC_USDT) -> None:
            ok(await limit(ex, user, Side.SELL, str(next(asks)), "0.01", symbol))

        for _ in range(3):
            await rest()
        await rest(ETH_USDT)
        seq, eth_seq = await _seq(ex, BTC_USDT), await _seq(ex, ETH_USDT)
        assert seq > 0
        await rest()
        assert await _seq(ex, BTC_USDT) == seq + 1  # one resting order: one step
        seq += 1

        if how == "restart":
            await ex.stop()
            ex = Exchange(database_url)
            await ex.start()
        else:
            _kill(ex, how, BTC_USDT)
            await recovered(ex, **_scope(how))

        assert await _seq(ex, BTC_USDT) == seq  # where it was, not back at 0
        assert await _seq(ex, ETH_USDT) == eth_seq
        await rest()
        assert await _seq(ex, BTC_USDT) == seq + 1
        await _book_is_the_database(ex, BTC_USDT)
        await assert_sound(ex)
    finally:
        await ex.stop()
