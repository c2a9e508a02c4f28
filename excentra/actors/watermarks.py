"""How far the event log and its projection have got: read-your-writes for the tables.

The journal acknowledges a command once its entry is in the log; the tables the API reads
are written afterwards by the projector. So a reader of the tables may have to wait for
the projection to reach the log entry it must see. The rule (docs/RELIABILITY.md,
"Read-your-writes"):

* a user's reads (their orders, balances, trades, deposits, withdrawals) wait until the
  projection has passed the last entry that touched that user — their own commands and
  the trades that filled their resting orders — and the last change of the catalogue
  (assets, pairs);
* every other read (anonymous, public market history, an admin's) waits for everything
  acknowledged when the read began (``logged``): a trade someone was told about is in
  the public trades and candles read after that.

Who is reading is a context variable (``READER``), set by the HTTP layer as it
authenticates a request; the exchange's database awaits the rule before each query
(``Exchange._fence``), so no query has to remember it. Code outside a request (tests, the
CLI) reads as ``EVERYTHING``; the idempotency lookups read the log itself (``NOTHING``).
A request starts as ``EVERYTHING`` (``excentra.http.middleware``) and becomes its user's
once it authenticates as one (``excentra.http.auth``).

Every wait is bounded (``READ_WAIT``); a projection that stays behind longer is a fault
(the projector is failing), answered 503 with ``Retry-After``, never a stale read.

Threads: the journal calls ``logged_batch`` and the projector ``projected_to`` from their
own threads; both hand the change to the loop with one ``call_soon_threadsafe`` per batch.
Everything else runs on the loop, except ``wait_projected`` (for actor threads, e.g. the
chain watcher, which must not act on a table the projection has not caught up on).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Iterable
from typing import Any

from excentra.db.reading import EVERYTHING, NOTHING, READER

__all__ = ["EVERYTHING", "NOTHING", "READER", "READ_WAIT", "Watermarks"]

READ_WAIT = 5.0
"""Seconds a read may wait for the projection before it is answered 503."""
USERS_KEPT = 100_000
"""Above this many users in ``users``, those the projection has passed are forgotten
(they would not wait anyway)."""


class Watermarks:
    def __init__(self) -> None:
        self.logged = 0
        """The last sequence number in the log (acknowledged)."""
        self.projected = 0
        """The last sequence number the tables show."""
        self.catalog = 0
        """The last entry that added an asset or a pair."""
        self.users: dict[str, int] = {}
        """Per user, the last entry that touched them (loop thread)."""
        self.lags: collections.deque[int] = collections.deque(maxlen=10_000)
        """``logged − projected`` (entries), sampled at each projected batch."""
        self.waits: collections.deque[float] = collections.deque(maxlen=10_000)
        """Seconds reads waited for the projection (only those that waited)."""
        self.timeouts = 0
        """Reads that gave up waiting (answered 503)."""
        self.progressed = time.monotonic()
        """When the projection last advanced (or had nothing to do)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def start_at(self, seq: int) -> None:
        """A core (re)started with log and tables both at ``seq`` (loop thread)."""
        self.logged = max(self.logged, seq)
        self._set_projected(seq)

    @property
    def lag(self) -> int:
        return max(0, self.logged - self.projected)

    def stalled(self, limit: float = READ_WAIT) -> bool:
        """Behind, and no progress for ``limit`` seconds (the projector is failing)."""
        return self.lag > 0 and time.monotonic() - self.progressed > limit

    def report(self) -> dict[str, Any]:
        """``/health``'s and ``/metrics``' view: positions, lag, its p99 over the recent
        batches, reads that waited and their p99, reads that gave up."""
        return {"logged": self.logged, "projected": self.projected, "lag": self.lag,
                "lag_p99": _p99(list(self.lags)), "stalled": self.stalled(),
                "read_waits": len(self.waits),
                "read_wait_p99_ms": round(_p99(list(self.waits)) * 1000, 3),
                "read_timeouts": self.timeouts}

    # -- from the journal's and the projector's threads ------------------------------------

    def logged_batch(self, last: int, users: Iterable[tuple[str, int]],
                     catalog: int = 0) -> None:
        """Entries up to ``last`` are in the log; ``users``: ``(user id, last entry that
        touched them)``. Call before the batch's acknowledgements: the loop runs this
        first, so a caller resumed by its answer already waits for the right entry."""
        self.logged = max(self.logged, last)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._note_users, tuple(users), catalog)

    def projected_to(self, seq: int) -> None:
        """The tables show every entry up to ``seq``."""
        self.lags.append(max(0, self.logged - seq))
        self.progressed = time.monotonic()
        with self._cond:
            self.projected = max(self.projected, seq)
            self._cond.notify_all()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                self._loop.call_soon_threadsafe(self._set_projected, seq)

    def wait_projected(self, seq: int, timeout: float) -> bool:
        """Block this (actor) thread until the tables show entry ``seq``; whether they
        do."""
        with self._cond:
            return self._cond.wait_for(lambda: self.projected >= seq, timeout)

    # -- on the loop ------------------------------------------------------------------------

    def _note_users(self, users: tuple[tuple[str, int], ...], catalog: int) -> None:
        known = self.users
        for user, seq in users:
            if known.get(user, 0) < seq:
                known[user] = seq
        self.catalog = max(self.catalog, catalog)
        if len(known) > USERS_KEPT:
            done = self.projected
            for user in [u for u, s in known.items() if s <= done]:
                del known[user]

    def _set_projected(self, seq: int) -> None:
        with self._cond:
            self.projected = max(self.projected, seq)
        while self._waiting and self._waiting[0][0] <= self.projected:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)

    def user_seq(self, user_id: str) -> int:
        return self.users.get(str(user_id), 0)

    def needed(self, reader: str) -> int:
        """The entry the tables must show before ``reader`` queries them."""
        if reader == NOTHING:
            return 0
        if reader == EVERYTHING:
            return self.logged
        return max(self.users.get(reader, 0), self.catalog)

    async def reached(self, seq: int, timeout: float = READ_WAIT) -> bool:
        """Wait until the tables show entry ``seq`` (at most ``timeout`` seconds);
        whether they do."""
        if seq <= self.projected:
            return True
        loop = asyncio.get_running_loop()
        started = loop.time()
        future = loop.create_future()
        heapq.heappush(self._waiting, (seq, next(self._order), future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.timeouts += 1
            return False
        self.waits.append(loop.time() - started)
        return True


def _p99(samples: list[Any]) -> Any:
    if not samples:
        return 0
    samples.sort()
    return samples[min(len(samples) - 1, int(len(samples) * 0.99))]
