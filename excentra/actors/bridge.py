"""The asyncio bridge: a coroutine sends a command and awaits the actor's answer.

pykka's ``Future.__await__`` blocks the event loop (it calls ``get()``), so no coroutine
ever awaits a pykka future. Instead a command carries a ``Reply``: the actor thread calls
``resolve``/``fail``, which hands the value to the loop with ``call_soon_threadsafe``.

Every unresolved ``Reply`` is listed in its ``Outstanding`` registry (touched only on the
loop thread), so the supervisor can fail everything caught in flight when an actor dies:
a request gets a clear error, never a hang.
"""

from __future__ import annotations

import asyncio
from typing import Any

from excentra.engine import RejectCode


class Unavailable(Exception):  # noqa: N818 (a condition the caller handles, like Rejected)
    """The core could not finish the command (an actor failed; it is being rebuilt)."""

    code = RejectCode.UNAVAILABLE


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

    def fail_all(self, reason: str) -> int:
        """Fail every reply still waiting (call on the loop thread); return how many."""
        replies, self._replies = self._replies, set()
        for reply in replies:
            reply.set_exception(Unavailable(reason))
        return len(replies)


class Reply:
    """A one-shot answer from an actor thread to a coroutine on ``loop``."""

    __slots__ = ("_future", "_loop", "_registry")

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 registry: Outstanding | None = None) -> None:
        self._loop = loop
        self._future: asyncio.Future[Any] = loop.create_future()
        self._registry = registry
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
        """The answer; ``Unavailable`` if none comes within ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError:
            self.set_exception(Unavailable("no answer in time"))
            return await self._future
