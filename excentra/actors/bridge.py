"""The asyncio bridge: a coroutine sends a message and awaits the actor's answer.

pykka's ``Future.__await__`` blocks the event loop (it calls ``get()``), so no coroutine
ever awaits a pykka future. Instead a message carries a ``Reply``: the actor thread calls
``resolve``/``fail``, which hands the value to the loop with ``call_soon_threadsafe``.

Every unresolved ``Reply`` is listed in its ``Outstanding`` registry (touched only on the
loop thread), so the supervisor can settle everything caught in flight when an actor
dies: a request gets an answer, never a hang. A reply that carries a ``command_id`` is a
state-changing command: it may only be failed once the supervisor knows the command did
not commit (``Outstanding.settle``); a query may be failed at any time.

``Fence`` keeps read-your-writes for state kept on the loop (the WebSocket hub's books
and tickers): the journal numbers its batches, and an acknowledgement may wait, briefly,
until the loop-side views have applied the batch it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from excentra.engine import RejectCode


class Unavailable(Exception):  # noqa: N818 (a condition the caller handles, like Rejected)
    """The core did not and will not execute the command (an actor failed; retry)."""

    code = RejectCode.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command refused: nothing it would have changed was changed (an answer, not an
    exception: the caller maps ``code`` to its reply)."""

    code: RejectCode


class Answerable(Protocol):
    """What a command carries to be answered: a ``Reply`` (a coroutine waits for it) or
    a ``Tell`` (an actor gets the answer as a message)."""

    command_id: str | None
    batch: int

    def resolve(self, value: object) -> None: ...

    def fail(self, exc: BaseException) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """What a ``Tell`` delivers: the answer to the command ``tag`` (a value, or the
    exception it failed with)."""

    tag: Any
    value: Any
    batch: int = 0


class Tell:
    """A reply that reaches an actor as a message (``Answer``): how one actor sends a
    command to another and learns its outcome without waiting in a handler. If the
    asker has died meanwhile the answer is dropped (its restart reads the database)."""

    __slots__ = ("batch", "command_id", "ref", "tag")

    def __init__(self, ref: Any, tag: Any, command_id: str | None = None) -> None:
        self.ref = ref
        self.tag = tag
        self.command_id = command_id
        self.batch = 0

    def resolve(self, value: object) -> None:
        self._tell(value)

    def fail(self, exc: BaseException) -> None:
        self._tell(exc)

    def _tell(self, value: object) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.tell(Answer(self.tag, value, self.batch))


class Outstanding:
    """The replies a loop is still waiting for."""

    def __init__(self) -> None:
        self._replies: set[Reply] = set()

    def __len__(self) -> int:
        return len(self._replies)

    def add(self, reply: Reply) -> None:
        self._replies.add(reply)

    def discard(self, reply: Reply) -> None:
        self._replies.discard(reply)

    def commands(self) -> list[Reply]:
        """The state-changing commands still waiting for an answer."""
        return [r for r in self._replies if r.command_id is not None]

    def fail_queries(self, reason: str, target: str | None = None) -> int:
        """Fail the waiting queries (replies without a command id), all of them or those
        sent to ``target``; return how many. Queries change nothing: failing is true."""
        failed = [r for r in self._replies if r.command_id is None
                  and (target is None or r.target == target)]
        for reply in failed:
            reply.set_exception(Unavailable(reason))
        return len(failed)

    @staticmethod
    def settle(replies: list[Reply], committed: Mapping[str, Any],
               reason: str) -> tuple[int, int]:
        """After a rebuild, once none of ``replies``' commands can still commit: answer
        each from ``committed`` (its stored result) if it is there, else fail it (it did
        not happen). Returns (answered, failed)."""
        answered = failed = 0
        for reply in replies:
            if reply.command_id is not None and reply.command_id in committed:
                reply.set_result(committed[reply.command_id])
                answered += 1
            else:
                reply.set_exception(Unavailable(reason))
                failed += 1
        return answered, failed

    def fail_all(self, reason: str) -> int:
        """Fail every reply still waiting (call on the loop thread); return how many.
        Only where none of their commands can commit (e.g. the core stopped)."""
        return self.settle(list(self._replies), {}, reason)[1]


class Reply:
    """A one-shot answer from an actor thread to a coroutine on ``loop``."""

    __slots__ = ("_future", "_loop", "_registry", "batch", "command_id", "target")

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 registry: Outstanding | None = None, *, command_id: str | None = None,
                 target: str | None = None) -> None:
        self._loop = loop
        self._future: asyncio.Future[Any] = loop.create_future()
        self._registry = registry
        self.command_id = command_id
        """Set for a state-changing command (what the journal records it under)."""
        self.target = target
        """The name of the actor the message went to (to fail queries to a dead one)."""
        self.batch = 0
        """The journal batch that made the command durable (set by the journal thread
        before it resolves; 0 when not a journaled command)."""
        if registry is not None:
            registry.add(self)

    # -- from any thread -----------------------------------------------------------------

    def resolve(self, value: object) -> None:
        self._loop.call_soon_threadsafe(self.set_result, value)

    def fail(self, exc: BaseException) -> None:
        self._loop.call_soon_threadsafe(self.set_exception, exc)

    # -- on the loop thread --------------------------------------------------------------

    def set_result(self, value: object) -> None:
        self._done()
        if not self._future.done():
            self._future.set_result(value)

    def set_exception(self, exc: BaseException) -> None:
        self._done()
        if not self._future.done():
            self._future.set_exception(exc)

    def discard(self) -> None:
        """Nobody will wait for this answer any more (the command never left)."""
        self._done()
        self._future.cancel()

    def _done(self) -> None:
        if self._registry is not None:
            self._registry.discard(self)

    async def wait(self, timeout: float | None = None) -> Any:
        """The answer; ``Unavailable`` if none comes within ``timeout`` seconds (queries
        only: a command is waited for without a deadline, see ``Exchange._command``)."""
        if timeout is None:  # a waiter that gives up must not cancel the answer
            return await asyncio.shield(self._future)
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError:
            self.set_exception(Unavailable("no answer in time"))
            return await self._future


def resolve_all(answers: list[tuple[Answerable, object]]) -> None:
    """Resolve many replies from an actor thread with one hop per event loop (one
    ``call_soon_threadsafe``, so one wake-up of the loop, instead of one per reply: the
    journal answers a whole batch at once). A ``Tell`` is a message of its own."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Reply, object]]] = {}
    for reply, value in answers:
        if isinstance(reply, Reply):
            by_loop.setdefault(reply._loop, []).append((reply, value))
        else:
            reply.resolve(value)
    for loop, batch in by_loop.items():
        loop.call_soon_threadsafe(_set_results, batch)


def _set_results(batch: list[tuple[Reply, object]]) -> None:
    for reply, value in batch:
        reply.set_result(value)


class Fence:
    """Read-your-writes for loop-side views of committed batches.

    The journal numbers its batches (``next_batch``); a view on the loop (the WebSocket
    hub) calls ``advance(n)`` once it has applied batch ``n``. ``reached(n)`` waits until
    every attached view has got that far, at most ``limit`` seconds (a view that lost a
    batch, e.g. to a broadcaster restart, must not stall acknowledgements). With no view
    attached it never waits. Loop thread only, except ``next_batch``.
    """

    _numbers = itertools.count(1)  # process-wide: numbers stay increasing across rebuilds

    def __init__(self, limit: float = 0.5) -> None:
        self.limit = limit
        self.applied = 0
        self.views = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @classmethod
    def next_batch(cls) -> int:
        return next(cls._numbers)  # atomic under the GIL; one journal at a time anyway

    def attach(self) -> None:
        self.views += 1

    def detach(self) -> None:
        """A view stopped following: nobody waits for it any more."""
        self.views = max(0, self.views - 1)
        if not self.views:
            for _, _, future in self._waiting:
                if not future.done():
                    future.set_result(None)
            self._waiting.clear()

    def advance(self, batch: int) -> None:
        self.applied = max(self.applied, batch)
        while self._waiting and self._waiting[0][0] <= self.applied:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)

    async def reached(self, batch: int) -> None:
        if not self.views or batch <= self.applied:
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (batch, next(self._order), future))
        with contextlib.suppress(TimeoutError):  # bounded: a lost batch must not stall
            await asyncio.wait_for(future, self.limit)
