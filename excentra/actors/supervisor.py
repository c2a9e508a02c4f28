"""Supervisor: starts the actors in dependency order, stops them in reverse, and rebuilds
the core from durable state when one of them dies.

pykka has no supervision; this is it. It lives on the asyncio loop (it awaits database
reads); actor threads reach it only through ``loop.call_soon_threadsafe``.

Recovery, when any actor dies:
1. refuse new commands (``recovering``; the facade answers 503);
2. stop the books, then the ledger: each first handles what is already in its mailbox, so
   every command a live actor had taken on reaches the journal (an order sent to a stopped
   book is given back its funds and answered 503);
3. if the journal is alive, let it commit everything it received (a barrier); those
   commands were computed from sound state before the failure;
4. fail every reply still outstanding: those commands are not durable and never will be
   (callers retry; a retried ``client_order_id`` is not executed twice);
5. stop the journal, reload state from the database, start afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
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
from excentra.actors.journal import Barrier, JournalActor
from excentra.actors.ledger import LedgerActor, RegisterBooks
from excentra.db import Database
from excentra.db.state import State, load_state
from excentra.engine import OrderBook, OrderType, PairSpec, RestingOrder, Side
from excentra.engine.precision import on_grid
from excentra.ledger import OrderTerms, PairTerms
from excentra.ledger.clearing import Clearing

log = logging.getLogger("excentra.supervisor")

RESTART_DELAY = 0.1
"""First wait before retrying a failed restart (doubling up to ``RESTART_DELAY_MAX``)."""
RESTART_DELAY_MAX = 5.0


def pair_terms(symbol: str, base: str, quote: str, price_step: Decimal | None,
               quantity_step: Decimal | None, maker_fee: Decimal, taker_fee: Decimal,
               decimals: dict[str, int]) -> PairTerms:
    """A pair's grid (derived when a step is not stored) and fees."""
    base_dec, quote_dec = decimals[base], decimals[quote]
    if price_step is None or quantity_step is None:
        spec = PairSpec.derive(symbol, base_dec, quote_dec)
    else:
        spec = PairSpec(symbol, base_dec, quote_dec, price_step, quantity_step)
    return PairTerms(spec, base, quote, maker_fee, taker_fee)


def _units(amount: Decimal, decimals: int) -> int:
    units = on_grid(amount, (1, 10 ** decimals))
    if units is None:
        raise ValueError(f"stored amount {amount} is off its asset's grid")
    return units


@dataclass
class Built:
    """Everything rebuilt from one ``State``."""

    clearing: Clearing
    books: dict[str, OrderBook]
    pair_ids: dict[str, Any]
    balances: dict[tuple[Any, str], list[int]]
    state: State


def build(state: State) -> Built:
    """Rebuild the ledger's clearing and every pair's book from durable state."""
    decimals = {a.symbol: a.decimals for a in state.assets}
    clearing = Clearing()
    for symbol, dec in decimals.items():
        clearing.add_asset(symbol, dec)
    books: dict[str, OrderBook] = {}
    for p in state.pairs:
        terms = pair_terms(p.symbol, p.base, p.quote, p.price_step, p.quantity_step,
                           p.maker_fee_rate, p.taker_fee_rate, decimals)
        clearing.add_pair(terms)
        books[p.symbol] = OrderBook(terms.spec)
    reservations: list[tuple[Any, str, str, int]] = []
    order_terms: dict[Any, OrderTerms] = {}
    for o in state.open_orders:
        terms = clearing.pairs[o.symbol]
        side, spec = Side(o.side), terms.spec
        asset = terms.quote if side is Side.BUY else terms.base
        ticks, lots, left = spec.to_ticks(o.price), spec.to_lots(o.quantity), spec.to_lots(
            o.remaining)
        if ticks is None or lots is None or left is None:
            raise ValueError(f"open order {o.id} is off its pair's grid")
        oid, uid = str(o.id), str(o.user_id)
        reservations.append((oid, uid, asset, _units(o.reserved, decimals[asset])))
        order_terms[oid] = OrderTerms(side, OrderType(o.order_type), ticks)
        books[o.symbol].restore(RestingOrder(oid, uid, side, ticks, lots, left))
    for wid, owner, asset, amount in state.pending_withdrawals:
        reservations.append((str(wid), str(owner), asset, _units(amount, decimals[asset])))
    balances = [(str(u), a, _units(av, decimals[a]), _units(h, decimals[a]))
                for u, a, av, h in state.balances]
    clearing.load(balances, reservations, order_terms)
    mirror = {(u, a): [_units(av, decimals[a]), _units(h, decimals[a])]
              for u, a, av, h in state.balances}
    return Built(clearing, books, {p.symbol: p.id for p in state.pairs}, mirror, state)


@dataclass
class Actors:
    broadcaster: pykka.ActorRef[Any]
    journal: pykka.ActorRef[Any]
    ledger: pykka.ActorRef[Any]
    books: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)

    def pipeline(self) -> list[pykka.ActorRef[Any]]:
        """Ledger and books: stopped first, rebuilt on recovery."""
        return [*self.books.values(), self.ledger]


class Supervisor:
    def __init__(self, url: str | None, loop: asyncio.AbstractEventLoop,
                 outstanding: Outstanding, subscribers: Iterable[Subscriber] = (),
                 max_batch: int = 2000) -> None:
        self.db = Database(url)
        self.loop = loop
        self.outstanding = outstanding
        self.subscribers = list(subscribers)
        self.max_batch = max_batch
        self.actors: Actors | None = None
        self.specs: dict[str, PairSpec] = {}
        """Every pair's grid, by symbol (read on the event loop, e.g. by the WS feed)."""
        self.recovering = False
        self.recoveries = 0
        self._recovery: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start broadcaster, journal, ledger, books — each before what depends on it."""
        if not self.db.is_connected:
            await self.db.connect()
        built = build(await load_state(self.db))
        broadcaster = self._existing_broadcaster()
        if broadcaster is None:
            broadcaster = BroadcasterActor.start(name="broadcaster", on_death=self._died)
            for s in self.subscribers:
                broadcaster.tell(Subscribe(s))
        journal = JournalActor.start(self.db.url, built.balances,
                                     dict(built.clearing.decimals), broadcaster,
                                     self.max_batch, name="journal", on_death=self._died)
        ledger = LedgerActor.start(built.clearing, journal, built.state.order_seq,
                                   built.state.trade_seq, name="ledger", on_death=self._died)
        actors = Actors(broadcaster, journal, ledger)
        for symbol, book in built.books.items():
            actors.books[symbol] = BookActor.start(book, ledger, name=f"book:{symbol}",
                                                   on_death=self._died)
        ledger.tell(RegisterBooks(dict(actors.books), dict(built.pair_ids)))
        self.specs.update({symbol: book.spec for symbol, book in built.books.items()})
        self.actors = actors
        log.info("core started", extra={"pairs": sorted(built.books),
                                        "open_orders": len(built.state.open_orders)})

    def _existing_broadcaster(self) -> pykka.ActorRef[Any] | None:
        a = self.actors
        return a.broadcaster if a is not None and a.broadcaster.is_alive() else None

    async def stop(self) -> None:
        """Stop books, ledger, journal (after it wrote what it has), broadcaster."""
        if self._recovery is not None:
            if not self._recovery.done():
                self._recovery.cancel()  # e.g. still retrying a restart: give up on it
            await asyncio.gather(self._recovery, return_exceptions=True)
        a = self.actors
        if a is not None:
            await self._stop_all([*a.pipeline(), a.journal, a.broadcaster])
        self.actors = None
        await self.db.disconnect()

    async def _stop_all(self, refs: list[pykka.ActorRef[Any]]) -> None:
        def stop() -> None:
            for ref in refs:
                if ref.is_alive():
                    ref.stop(block=True)

        await asyncio.to_thread(stop)

    def start_book(self, symbol: str, book: OrderBook) -> pykka.ActorRef[Any]:
        """Start a book actor for a pair being added at runtime; the caller hands it to
        the ledger with the pair and registers it once the pair is durable."""
        assert self.actors is not None
        return BookActor.start(book, self.actors.ledger, name=f"book:{symbol}",
                               on_death=self._died)

    def register_book(self, symbol: str, ref: pykka.ActorRef[Any], spec: PairSpec) -> None:
        assert self.actors is not None
        self.actors.books[symbol] = ref
        self.specs[symbol] = spec

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
        self.loop.call_soon_threadsafe(self._start_recovery, name, repr(exc))

    def _start_recovery(self, name: str, reason: str) -> None:
        if self.recovering:
            return
        self.recovering = True
        log.warning("recovering the core", extra={"actor": name, "reason": reason})
        self._recovery = self.loop.create_task(self._recover(name))

    async def _recover(self, name: str) -> None:
        assert self.actors is not None
        a = self.actors
        try:
            await self._stop_all(a.pipeline())
            if a.journal.is_alive():
                barrier = Reply(self.loop)
                a.journal.tell(Barrier(barrier))
                try:
                    await barrier.wait(timeout=60)
                except Unavailable:  # a stuck journal: what it holds is not durable
                    log.error("journal did not drain; its pending commands are failed")
            failed = self.outstanding.fail_all(f"{name} failed; the request was not executed")
            await self._stop_all([a.journal])
            if not a.broadcaster.is_alive():
                self.actors = None  # start() makes a new one and re-subscribes everyone
            await self._restart()
            self.recoveries += 1
            log.info("core recovered", extra={"actor": name, "failed_requests": failed})
        finally:
            self.recovering = False

    async def _restart(self) -> None:
        """``start()`` until it works: the database may itself be restarting."""
        delay = RESTART_DELAY
        while True:
            try:
                await self.start()
                return
            except Exception:
                log.exception("restarting the core failed; retrying",
                              extra={"retry_in_seconds": delay})
                self.outstanding.fail_all("the core is restarting")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)

    async def wait_recovered(self) -> None:
        """Tests and the demo: wait until a running recovery has finished."""
        if self._recovery is not None:
            await self._recovery
