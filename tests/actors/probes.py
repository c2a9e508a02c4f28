"""Test doubles for driving one actor at a time.

* ``Probe``: a real pykka actor standing in for a peer (a book, the ledger, the journal,
  the broadcaster). It records every message it receives; the test awaits "the next
  message of type X" without blocking its event loop, or ``sync()``s to know that
  everything sent to the probe so far has arrived.
* ``Deaths``: an ``on_death`` hook that records ``(name, exception)`` reports.
* ``FakeStore``: the journal's ``Store`` in memory; its writes can be held back (a slow
  database), made to fail, or made to fail after they landed (a lost acknowledgement).

Actor threads hand everything to the test's loop with ``call_soon_threadsafe``, exactly
as ``bridge.Reply`` does, so no test ever blocks its loop on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pykka

from excentra.actors.bridge import Reply
from excentra.actors.supervised import Many
from excentra.db import IntegrityError
from excentra.db.eventlog import Entry
from excentra.db.records import Writes
from excentra.engine import Event, OrderBook, OrderType, PairSpec, Side
from excentra.ledger import PairTerms
from excentra.ledger.clearing import Clearing, NewOrder, OpenedOrder

T = TypeVar("T")
TIMEOUT = 5.0
"""Seconds a test waits for something that must happen (a bug, not slowness, if exceeded)."""
GRACE = 0.05
"""Seconds a test gives something that must NOT happen to show up anyway."""


class _Inbox:
    """Items put from any thread, awaited on one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._taken: set[int] = set()
        self._arrived = asyncio.Event()

    def put(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)
        with contextlib.suppress(RuntimeError):  # the test's loop is gone: nobody waits
            self._loop.call_soon_threadsafe(self._arrived.set)

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def _first(self, kind: type[T]) -> T | None:
        with self._lock:
            for i, item in enumerate(self._items):
                if i not in self._taken and isinstance(item, kind):
                    self._taken.add(i)
                    return item
        return None

    async def next(self, kind: type[T], timeout: float = TIMEOUT) -> T:
        deadline = self._loop.time() + timeout
        while True:
            self._arrived.clear()  # before looking: an item put after the look sets it
            item = self._first(kind)
            if item is not None:
                return item
            left = deadline - self._loop.time()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} within {timeout}s; got {self.items}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)


@dataclass(frozen=True, slots=True)
class _Sync:
    reply: Reply


class ProbeActor(pykka.ThreadingActor):
    """Records what it receives (named ``...Actor``: the leak guard in conftest sees it)."""

    def __init__(self, inbox: _Inbox) -> None:
        super().__init__()
        self._inbox = inbox

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Sync):
            message.reply.resolve(None)
        elif isinstance(message, Many):  # an actor's outbox batch: its messages, in order
            for one in message.messages:
                self._inbox.put(one)
        else:
            self._inbox.put(message)


class Probe:
    """A recording stand-in for a peer actor: pass ``probe.ref`` where a ref is expected."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._inbox = _Inbox(loop)
        self.ref: pykka.ActorRef[Any] = ProbeActor.start(self._inbox)

    @property
    def received(self) -> list[Any]:
        """Everything received so far, in order."""
        return self._inbox.items

    def of(self, kind: type[T]) -> list[T]:
        return [m for m in self.received if isinstance(m, kind)]

    async def next(self, kind: type[T], timeout: float = TIMEOUT) -> T:
        """The first message of type ``kind`` not returned before (waits for it)."""
        return await self._inbox.next(kind, timeout)

    async def sync(self) -> None:
        """Return once every message sent to this probe before the call has arrived."""
        reply = Reply(self._loop)
        self.ref.tell(_Sync(reply))
        await reply.wait(TIMEOUT)

    def stop(self) -> None:
        if self.ref.is_alive():
            self.ref.stop(block=True)


@dataclass(frozen=True, slots=True)
class Death:
    name: str
    error: BaseException | None


class Deaths:
    """An ``on_death`` hook (called in the dying actor's thread) the test can await."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._inbox = _Inbox(loop)

    def __call__(self, name: str, error: BaseException | None) -> None:
        self._inbox.put(Death(name, error))

    @property
    def reported(self) -> list[Death]:
        return self._inbox.items

    async def next(self, timeout: float = TIMEOUT) -> Death:
        return await self._inbox.next(Death, timeout)


class FakeStore:
    """The journal's ``Store``, in memory.

    ``hold()`` makes the next writes block (in the journal's thread, like a slow database)
    until ``release()``; ``fail_write`` raises from ``write`` (the transaction failed:
    nothing written), ``fail_after_write`` raises after recording the batch (it committed,
    the acknowledgement was lost); ``fail_open`` raises from ``open``; a batch holding a
    command id in ``refuse`` raises ``IntegrityError`` (the database refuses that command's
    content: a foreign key, say), writing nothing.
    """

    def __init__(self, *, fail_open: Exception | None = None,
                 fail_write: Exception | None = None,
                 fail_after_write: Exception | None = None,
                 refuse: Iterable[str] = ()) -> None:
        self.fail_open = fail_open
        self.refuse = set(refuse)
        self.attempts = 0
        """Calls of ``write``, refused ones included."""
        self.fail_write = fail_write
        self.fail_after_write = fail_after_write
        self._lock = threading.Lock()
        self._batches: list[list[Writes]] = []
        self._gate = threading.Event()
        self._gate.set()
        self._writing = threading.Event()
        self.opened = False
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop ``open`` ran on (the journal's private one)."""

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.fail_open is not None:
            raise self.fail_open
        self.opened = True

    async def write(self, entries: list[Entry]) -> None:
        batch = [e.writes for e in entries]
        self._writing.set()
        if not self._gate.wait(TIMEOUT):
            raise AssertionError("FakeStore: held longer than a test may take")
        self.attempts += 1
        if self.fail_write is not None:
            raise self.fail_write
        refused = self.refuse.intersection(w.command_id for w in batch)
        if refused:
            raise IntegrityError(f"test: the database refuses {sorted(refused)}")
        with self._lock:
            self._batches.append(list(batch))
        if self.fail_after_write is not None:
            raise self.fail_after_write

    async def close(self) -> None:
        self.closed = True

    # -- for the test --------------------------------------------------------------------

    @property
    def batches(self) -> list[list[Writes]]:
        """The batches written, each as the journal passed it."""
        with self._lock:
            return [list(b) for b in self._batches]

    @property
    def command_ids(self) -> list[list[str]]:
        return [[w.command_id for w in b] for b in self.batches]

    def results(self) -> dict[str, Any]:
        """Every written command's stored result (what the database would answer)."""
        return {w.command_id: json.loads(w.result) for b in self.batches for w in b}

    def reclaim_loop(self) -> None:
        """Close the journal's private loop if the journal left it open.

        Teardown only, for stores whose ``open`` failed: a journal that fails to start
        does not close its loop (the bug ``test_journal_actor`` reports), and the loop's
        unclosed sockets would fail some later test at garbage collection
        (``filterwarnings = error``) instead of the test that reports the bug.
        """
        if self.loop is not None and not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()

    def hold(self) -> None:
        self._writing.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    async def writing(self) -> None:
        """Return once a write has started (after ``hold()``: it is now blocked)."""
        await eventually(self._writing.is_set, "the store was not written to")


async def eventually(condition: Callable[[], bool], what: str,
                     timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (bounded): for state that no message reports."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (after {timeout}s)")
        await asyncio.sleep(0.005)


async def unanswered(reply: Reply, grace: float = GRACE) -> bool:
    """Whether ``reply`` is still without an answer after ``grace`` seconds (the reply is
    left untouched: it may still be answered later)."""
    waiter = asyncio.ensure_future(reply.wait())
    done, _ = await asyncio.wait({waiter}, timeout=grace)
    if done:
        waiter.exception()  # retrieved: the caller checks the answer itself
        return False
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    return True


async def answer(reply: Reply, timeout: float = TIMEOUT) -> Any:
    """The reply's answer (raises what it was failed with)."""
    return await reply.wait(timeout)


async def stopped(*refs: pykka.ActorRef[Any]) -> None:
    """Stop actors off the loop (an actor's ``on_stop`` may take a moment)."""

    def stop() -> None:
        for ref in refs:
            if ref.is_alive():
                ref.stop(block=True)

    await asyncio.to_thread(stop)


async def dead(ref: pykka.ActorRef[Any]) -> None:
    """Return once ``ref``'s actor has stopped (it died, or failed to start)."""
    await eventually(lambda: not ref.is_alive(), f"{ref} is still alive")



# -- a small market ---------------------------------------------------------------------

D = Decimal
BTC_USDT, ETH_USDT = "BTC/USDT", "ETH/USDT"
DECIMALS = {"BTC": 8, "ETH": 8, "USDT": 6}
PAIRS = {BTC_USDT: ("BTC", "USDT"), ETH_USDT: ("ETH", "USDT")}


def new_id() -> str:
    """A fresh id (users, orders and withdrawals are UUIDs in the journal's rows)."""
    return str(uuid.uuid4())


def market() -> Clearing:
    """A clearing with BTC, ETH and USDT, and the BTC/USDT and ETH/USDT pairs (no fees;
    the derived grid, as the supervisor builds it from a pair without stored steps:
    price step 0.01, quantity step 0.0001)."""
    clearing = Clearing()
    for asset, decimals in DECIMALS.items():
        clearing.add_asset(asset, decimals)
    for symbol, (base, quote) in PAIRS.items():
        spec = PairSpec.derive(symbol, DECIMALS[base], DECIMALS[quote])
        clearing.add_pair(PairTerms(spec, base, quote, D(0), D(0)))
    return clearing


def fund(clearing: Clearing, user_id: str, **amounts: str) -> None:
    """Deposit straight into ``clearing``, e.g. ``fund(c, alice, USDT="1000")``."""
    for asset, amount in amounts.items():
        assert isinstance(clearing.deposit(user_id, asset, D(amount), new_id()), list)


def limit(user_id: str, side: Side, price: str, quantity: str, symbol: str = BTC_USDT,
          ) -> NewOrder:
    return NewOrder(new_id(), user_id, symbol, side, OrderType.LIMIT, D(price), D(quantity))


def market_sell(user_id: str, quantity: str, symbol: str = BTC_USDT) -> NewOrder:
    return NewOrder(new_id(), user_id, symbol, Side.SELL, OrderType.MARKET,
                    quantity=D(quantity))


def opened(clearing: Clearing, order: NewOrder) -> OpenedOrder:
    """``order`` with its funds held in ``clearing`` (what the ledger sends a book)."""
    result = clearing.open(order)
    assert isinstance(result, OpenedOrder), result
    return result


def matched(book: OrderBook, order: NewOrder) -> list[Event]:
    """What a real book does with ``order``: the events a ``Settle`` carries."""
    if order.order_type is OrderType.LIMIT:
        assert order.price is not None
        assert order.quantity is not None
        return book.place_limit(order.order_id, order.user_id, order.side, order.price,
                                order.quantity, order.time_in_force, order.post_only,
                                order.stp)
    return book.place_market(order.order_id, order.user_id, order.side, order.quantity,
                             order.budget, order.stp)
