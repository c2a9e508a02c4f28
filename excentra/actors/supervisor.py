"""Supervisor: starts the actors in dependency order (each start confirmed), stops them
in reverse, and rebuilds what dies from durable state — no more than it must.

pykka has no supervision; this is it. It lives on the asyncio loop (it awaits database
reads); actor threads reach it only through ``loop.call_soon_threadsafe``.

Restart scopes (the rule throughout: **an answer of failure means the command did not
and will not happen**):

* a **book** dies → that pair alone: the ledger refuses the pair, releases exactly the
  holds of the commands it sent to that book and got no ``Settle`` for (their callers are
  told they did not happen), and passes a barrier to the journal; once the barrier is
  durable the book is rebuilt from the database and handed back. Other pairs trade on.
* the **broadcaster** dies → a new one with the same subscribers (acknowledgements never
  depended on it; the batches it had not delivered are lost to subscribers).
* the **projector** dies → a new one, which projects from the event log whatever the
  tables lack (acknowledgements never depended on it; meanwhile the tables lag).
* the **ledger** or the **journal** dies → the whole core:
  1. refuse new commands (``recovering``; the facade answers 503);
  2. stop the books, then the ledger: each first handles what is already in its mailbox,
     so every command a live actor had taken on reaches the journal;
  3. if the journal is alive, let it commit everything it received (a barrier);
  4. stop the journal: from here no command from before can commit; then the projector;
  5. project what the log holds beyond the tables, reload state and start afresh, then
     answer every command still waiting from the database: its stored result if it is in
     the log (a journal that died mid-batch may have committed it), else "did not
     happen". Until the database can say, they wait (a caller's timeout is "outcome
     unknown", never a failure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import pykka

from excentra.actors.book import BookActor
from excentra.actors.bridge import Outstanding, Reply, Unavailable
from excentra.actors.broadcaster import (
    BroadcasterActor,
    Subscribe,
    Subscriber,
    Unsubscribe,
)
from excentra.actors.durable import DatabaseDurable, Durable, build
from excentra.actors.journal import (
    Barrier,
    JournalActor,
    UseBroadcaster,
    UseProjector,
)
from excentra.actors.ledger import BookDown, BookUp, LedgerActor, RegisterBooks
from excentra.actors.projector import ProjectorActor
from excentra.actors.watermarks import Watermarks
from excentra.actors.writes import OpenOrder
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings
from excentra.chain.wallet import HDWallet
from excentra.chain.watcher import ChainStatus, ChainWatcherActor
from excentra.db import Database
from excentra.engine import OrderBook

log = logging.getLogger("excentra.supervisor")

RESTART_DELAY = 0.1
"""First wait before retrying a failed restart (doubling up to ``RESTART_DELAY_MAX``)."""
RESTART_DELAY_MAX = 5.0
START_TIMEOUT = 30.0
"""Seconds an actor may take to confirm its start (the journal connects to the database)."""
WATCHER_STABLE = 60.0
"""A chain watcher that dies sooner than this after a restart is restarted after a delay
(doubling up to ``RESTART_DELAY_MAX``)."""
BARRIER_TIMEOUT = 60.0
"""Seconds the journal may take to make durable what it holds before a rebuild."""


@dataclass
class Actors:
    broadcaster: pykka.ActorRef[Any]
    journal: pykka.ActorRef[Any]
    ledger: pykka.ActorRef[Any]
    projector: pykka.ActorRef[Any] | None = None
    """Writes the tables from the event log (``None``: nothing to project)."""
    books: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)
    watchers: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)
    """One chain watcher per configured chain, by chain name."""

    def pipeline(self) -> list[pykka.ActorRef[Any]]:
        """Watchers, books and ledger: stopped first (in that order), rebuilt on
        recovery."""
        return [*self.watchers.values(), *self.books.values(), self.ledger]

    def named(self, name: str) -> pykka.ActorRef[Any] | None:
        if name.startswith("book:"):
            return self.books.get(name.removeprefix("book:"))
        if name.startswith("chain:"):
            return self.watchers.get(name.removeprefix("chain:"))
        return {"broadcaster": self.broadcaster, "journal": self.journal,
                "ledger": self.ledger, "projector": self.projector}.get(name)

    def storage(self) -> list[pykka.ActorRef[Any]]:
        """Journal, then projector: stopped after the pipeline, in that order."""
        return [self.journal, *([self.projector] if self.projector is not None else [])]


@dataclass
class Kinds:
    """The actor classes the supervisor starts (tests substitute fakes)."""

    broadcaster: type[Any] = BroadcasterActor
    journal: type[Any] = JournalActor
    ledger: type[Any] = LedgerActor
    book: type[Any] = BookActor
    watcher: type[Any] = ChainWatcherActor
    projector: type[Any] = ProjectorActor


@dataclass(frozen=True)
class Chain:
    """A chain to watch: its settings, the wallet, and how to reach its node."""

    settings: ChainSettings
    wallet: HDWallet
    node: Callable[[], Node]
    on_status: Callable[[ChainStatus], None] | None = None
    """Called in the watcher's thread after every poll."""
    on_deposit: Callable[[str, dict[str, Any]], None] | None = None
    """Called in the watcher's thread with ``(user id, deposit)`` as it observes one."""
    auto_poll: bool = True


class Supervisor:
    def __init__(self, url: str | None, loop: asyncio.AbstractEventLoop,
                 outstanding: Outstanding, subscribers: Iterable[Subscriber] = (),
                 max_batch: int = 2000, *, durable: Durable | None = None,
                 kinds: Kinds | None = None, chains: Iterable[Chain] = (),
                 watermarks: Watermarks | None = None,
                 projector_paused: bool = False, projector: str = "thread") -> None:
        self.db = Database(url)
        self.watermarks = watermarks or Watermarks()
        self.projector_paused = projector_paused
        """Start projectors paused (tests: a kill between log and projection)."""
        self.durable: Durable = durable or DatabaseDurable(self.db, projector)
        self.kinds = kinds or Kinds()
        self.loop = loop
        self.outstanding = outstanding
        self.subscribers = list(subscribers)
        self.max_batch = max_batch
        self.chains = {c.settings.name: c for c in chains}
        self.watcher_restarts = 0
        self._watcher_started: dict[str, float] = {}
        self._watcher_delay: dict[str, float] = {}
        self.actors: Actors | None = None
        self.recovering = False
        """The whole core is being rebuilt (commands are refused meanwhile)."""
        self.recoveries = 0
        """Whole-core rebuilds."""
        self.book_recoveries = 0
        self.books_down: set[str] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start broadcaster, projector, journal, ledger, books — each before what depends
        on it, each confirmed; if one fails, those started here are stopped and it raises.
        First the tables catch up with the event log (a crash may have left them
        behind): the core is rebuilt from them."""
        head = await self.durable.catch_up()
        state, suspended = await self.durable.load()
        built = build(state)
        self.watermarks.start_at(head)
        broadcaster = self._existing_broadcaster()
        started: list[pykka.ActorRef[Any]] = []
        try:
            if broadcaster is None:
                broadcaster = await self._spawn(started, self.kinds.broadcaster,
                                                "broadcaster", list(self.subscribers))
            projector = await self._spawn_projector(started)
            journal = await self._spawn(started, self.kinds.journal, "journal",
                                        self.durable.store(built), broadcaster,
                                        self.max_batch, seq=head, projector=projector,
                                        watermarks=self.watermarks)
            open_orders = {str(o.id): OpenOrder(
                o.symbol, str(o.user_id), o.side, o.order_type, o.price, o.quantity,
                o.client_order_id, o.time_in_force, o.post_only, o.created_at)
                for o in state.open_orders}
            ledger = await self._spawn(started, self.kinds.ledger, "ledger", built.clearing,
                                       journal, state.order_seq, state.trade_seq,
                                       open_orders, suspended,
                                       {p.symbol for p in state.pairs if not p.is_active},
                                       state.chain_withdrawals, state.credited_deposits)
            actors = Actors(broadcaster, journal, ledger, projector)
            for symbol, book in built.books.items():
                actors.books[symbol] = await self._spawn(started, self.kinds.book,
                                                         f"book:{symbol}", book, ledger)
            for name in self.chains:
                actors.watchers[name] = await self._spawn_watcher(
                    started, name, ledger, dict(built.clearing.decimals))
        except BaseException:
            await self._stop_all(list(reversed(started)))
            raise
        ledger.tell(RegisterBooks(dict(actors.books), dict(built.pair_ids)))
        self.actors = actors
        self.books_down.clear()
        log.info("core started", extra={"pairs": sorted(built.books),
                                        "open_orders": len(state.open_orders)})

    async def _spawn(self, started: list[pykka.ActorRef[Any]], kind: type[Any], name: str,
                     *args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
        """Start an actor and wait for it to confirm its start (raise if it fails)."""
        confirmed = Reply(self.loop, target=name)
        ref: pykka.ActorRef[Any] = kind.start(*args, name=name, on_death=self._died,
                                              started=confirmed, **kwargs)
        started.append(ref)
        try:
            await confirmed.wait(START_TIMEOUT)
        except BaseException:  # failed, or the caller was cancelled: leave nothing running
            if ref.is_alive():
                ref.stop(block=False)
            raise
        return ref

    async def _spawn_projector(self, started: list[pykka.ActorRef[Any]]
                               ) -> pykka.ActorRef[Any] | None:
        store = self.durable.projection()
        if store is None:
            return None
        return await self._spawn(started, self.kinds.projector, "projector", store,
                                 self.watermarks, paused=self.projector_paused)

    async def _spawn_watcher(self, started: list[pykka.ActorRef[Any]], name: str,
                             ledger: pykka.ActorRef[Any],
                             decimals: dict[str, int]) -> pykka.ActorRef[Any]:
        chain = self.chains[name]
        return await self._spawn(started, self.kinds.watcher, f"chain:{name}",
                                 chain.settings, chain.wallet, ledger, decimals,
                                 node=chain.node, database_url=self.db.url,
                                 on_status=chain.on_status, on_deposit=chain.on_deposit,
                                 auto_poll=chain.auto_poll, watermarks=self.watermarks)

    def _existing_broadcaster(self) -> pykka.ActorRef[Any] | None:
        a = self.actors
        return a.broadcaster if a is not None and a.broadcaster.is_alive() else None

    async def stop(self) -> None:
        """Stop books, ledger, journal (after it wrote what it has), broadcaster."""
        self._stopping = True
        for task in [self._recovery, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()  # e.g. still retrying a restart: give up on it
        await asyncio.gather(*(t for t in [self._recovery, *self._tasks] if t is not None),
                             return_exceptions=True)
        a = self.actors
        if a is not None:
            await self._stop_all([*a.pipeline(), *a.storage(), a.broadcaster])
        self.actors = None
        self.outstanding.fail_all("the exchange stopped")
        await self.db.disconnect()

    async def _stop_all(self, refs: list[pykka.ActorRef[Any]]) -> None:
        def stop() -> None:
            for ref in refs:
                if ref.is_alive():
                    ref.stop(block=True)

        await asyncio.to_thread(stop)

    async def start_book(self, symbol: str, book: OrderBook) -> pykka.ActorRef[Any]:
        """Start a book actor for a pair being added at runtime; the caller hands it to
        the ledger with the pair and registers it once the pair is durable."""
        assert self.actors is not None
        return await self._spawn([], self.kinds.book, f"book:{symbol}", book,
                                 self.actors.ledger)

    def register_book(self, symbol: str, ref: pykka.ActorRef[Any]) -> None:
        """Keep a runtime pair's book, once its pair is durable. If the core was rebuilt
        meanwhile, the rebuild made the pair's book from the database (talking to the new
        ledger): this one, tied to the old ledger, is stopped instead."""
        current = self.actors.books.get(symbol) if self.actors is not None else None
        if current is not None and current is not ref and current.is_alive():
            ref.stop(block=False)
            return
        if self.actors is not None:
            self.actors.books[symbol] = ref

    def subscribe(self, subscriber: Subscriber) -> None:
        """Deliver committed batches to ``subscriber``, also after a broadcaster restart."""
        self.subscribers.append(subscriber)
        if self.actors is not None:
            self.actors.broadcaster.tell(Subscribe(subscriber))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
        if self.actors is not None:
            self.actors.broadcaster.tell(Unsubscribe(subscriber))

    # -- supervision ---------------------------------------------------------------------

    def _died(self, name: str, exc: BaseException | None) -> None:
        """Runs in the dying actor's thread."""
        self.loop.call_soon_threadsafe(self._on_death, name, repr(exc))

    def _on_death(self, name: str, reason: str) -> None:
        a = self.actors
        if self._stopping or self.recovering or a is None:
            return  # a whole rebuild is running (or nothing is): it covers this
        ref = a.named(name)
        if ref is None or ref.is_alive():
            return  # a report from an earlier incarnation
        log.warning("actor died; recovering", extra={"actor": name, "reason": reason})
        if name.startswith("book:"):
            symbol = name.removeprefix("book:")
            if symbol not in self.books_down:
                self.books_down.add(symbol)
                self._spawn_task(self._recover_book(symbol))
        elif name == "broadcaster":
            self._spawn_task(self._restart_broadcaster())
        elif name == "projector":
            self._spawn_task(self._restart_projector())
        elif name.startswith("chain:"):
            self._spawn_task(self._restart_watcher(name.removeprefix("chain:")))
        else:
            self.recovering = True
            self._recovery = self.loop.create_task(self._recover_core(name))

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover_book(self, symbol: str) -> None:
        """Rebuild one pair's book; the others never stop."""
        name = f"book:{symbol}"
        self.outstanding.fail_queries(f"{name} failed", target=name)
        delay = RESTART_DELAY
        while not self._stopping:
            a = self.actors
            if a is None or self.recovering:
                return  # the whole core is being rebuilt, this book with it
            try:
                # Registered: a whole-core rebuild starting meanwhile fails it at once.
                barrier = Reply(self.loop, self.outstanding, target="journal")
                a.ledger.tell(BookDown(symbol, barrier))
                await barrier.wait(BARRIER_TIMEOUT)
                state, _ = await self.durable.load()
                book = build(state).books[symbol]
                if self.recovering or self.actors is not a:
                    return
                ref = await self._spawn([], self.kinds.book, name, book, a.ledger)
                a.books[symbol] = ref
                a.ledger.tell(BookUp(symbol, ref))
                self.books_down.discard(symbol)
                self.book_recoveries += 1
                log.info("book recovered", extra={"pair": symbol, "seq": book.seq})
                return
            except pykka.ActorDeadError:
                return  # the ledger died: its recovery rebuilds everything
            except Exception:
                log.exception("rebuilding a book failed; retrying",
                              extra={"pair": symbol, "retry_in_seconds": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def _restart_broadcaster(self) -> None:
        a = self.actors
        delay = RESTART_DELAY
        while a is not None and a is self.actors and not self._stopping:
            try:
                ref = await self._spawn([], self.kinds.broadcaster, "broadcaster",
                                        list(self.subscribers))
                a.broadcaster = ref
                a.journal.tell(UseBroadcaster(ref))
                log.info("broadcaster restarted")
                return
            except Exception:
                log.exception("restarting the broadcaster failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def _restart_projector(self) -> None:
        """The projector alone: the new one projects from the log what the tables lack
        (also what the journal sent the dead one), then takes the journal's batches."""
        a = self.actors
        delay = RESTART_DELAY
        while a is not None and a is self.actors and not self._stopping:
            try:
                ref = await self._spawn_projector([])
                if ref is None:
                    return
                a.projector = ref
                a.journal.tell(UseProjector(ref))
                log.info("projector restarted")
                return
            except pykka.ActorDeadError:
                return  # the journal died: the whole core is being rebuilt
            except Exception:
                log.exception("restarting the projector failed; retrying",
                              extra={"retry_in_seconds": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def _restart_watcher(self, chain: str) -> None:
        """A chain watcher alone: it resumes from the database (what it processed, what
        is pending); the ledger refuses any credit it repeats."""
        a = self.actors
        # A watcher that keeps dying (a bug met on every poll) is restarted ever more
        # slowly, so it cannot spin; one that ran a while starts over at once.
        now = self.loop.time()
        quick = now - self._watcher_started.get(chain, -1e9) < WATCHER_STABLE
        delay = min(self._watcher_delay.get(chain, RESTART_DELAY) * 2, RESTART_DELAY_MAX
                    ) if quick else RESTART_DELAY
        self._watcher_delay[chain] = delay
        if quick:
            await asyncio.sleep(delay)
        while a is not None and a is self.actors and not self._stopping:
            try:
                state, _ = await self.durable.load()
                decimals = {s.symbol: s.decimals for s in state.assets}
                a.watchers[chain] = await self._spawn_watcher([], chain, a.ledger, decimals)
                self._watcher_started[chain] = self.loop.time()
                self.watcher_restarts += 1
                log.info("chain watcher restarted", extra={"chain": chain})
                return
            except Exception:
                log.exception("restarting a chain watcher failed; retrying",
                              extra={"chain": chain, "retry_in_seconds": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def _recover_core(self, name: str) -> None:
        assert self.actors is not None
        a = self.actors
        try:
            self.outstanding.fail_queries(f"{name} failed")
            for task in self._tasks:  # book rebuilds: this rebuilds every book anyway
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._stop_all(a.pipeline())
            if a.journal.is_alive():
                barrier = Reply(self.loop, target="journal")
                a.journal.tell(Barrier(barrier))
                try:
                    await barrier.wait(BARRIER_TIMEOUT)
                except Unavailable:  # a stuck journal: the database will say what it did
                    log.error("journal did not drain in time")
            await self._stop_all(a.storage())
            waiting = self.outstanding.commands()  # none of these can commit any more
            if not a.broadcaster.is_alive():
                self.actors = None  # start() makes a new one with every subscriber
            answered, failed = await self._restart(waiting, f"{name} failed; the command "
                                                            "was not executed")
            self.recoveries += 1
            log.info("core recovered", extra={"actor": name, "answered": answered,
                                              "failed_requests": failed})
        finally:
            self.recovering = False

    async def _restart(self, waiting: list[Reply], reason: str) -> tuple[int, int]:
        """``start()`` until it works (the database may itself be restarting), then
        settle the commands that were waiting from what the database says."""
        delay = RESTART_DELAY
        while True:
            try:
                await self.start()
                committed = await self.durable.committed(
                    [r.command_id for r in waiting if r.command_id is not None])
                return Outstanding.settle(waiting, committed, reason)
            except Exception:
                log.exception("restarting the core failed; retrying",
                              extra={"retry_in_seconds": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def recovered(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a whole-core rebuild that has begun (if
        any) to finish; whether the core is serving now. Without a rebuild running,
        at once: a rebuild is what a command failed by the core waits for."""
        task = self._recovery
        if task is not None and not task.done() and timeout > 0:
            await asyncio.wait([task], timeout=timeout)  # never cancels the rebuild
        return not self.recovering and self.actors is not None and not self._stopping

    async def wait_recovered(self) -> None:
        """Tests and the demo: wait until running recoveries have finished."""
        while True:
            tasks = [t for t in [self._recovery, *self._tasks] if t is not None and not t.done()]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)
