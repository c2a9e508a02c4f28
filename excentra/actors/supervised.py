"""The base of every supervised actor: one handler, a confirmed start, deaths reported to
the supervisor."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import pykka

from excentra.actors.bridge import Reply

log = logging.getLogger("excentra.actors")

DeathHook = Callable[[str, BaseException | None], None]
"""Called in the dying actor's thread with its name and the exception that killed it."""


class Supervised(pykka.ThreadingActor, abc.ABC):
    """A pykka actor whose ``handle`` raising means a bug: the actor dies (pykka stops it)
    and ``on_death`` tells the supervisor, which rebuilds it from durable state.

    Its start is confirmed: ``setup`` runs in the actor's thread before any message, and
    ``started`` is resolved with the actor's name, or failed with what ``setup`` raised.
    (pykka does not call ``on_failure`` when ``on_start`` raises; it only logs and stops
    the actor, so without this a journal that cannot reach its database would die
    unnoticed.) Without a ``started`` reply, a failed start is reported as a death.
    """

    def __init__(self, *, name: str, on_death: DeathHook, started: Reply | None = None
                 ) -> None:
        super().__init__()
        self.name = name
        self._on_death = on_death
        self._started = started

    def setup(self) -> None:
        """Acquire what the actor needs (runs in its thread, before any message)."""

    def teardown(self) -> None:
        """Release what ``setup`` acquired: runs in the actor's thread when it stops or
        dies (and after a ``setup`` that raised, which pykka follows with neither)."""

    def on_start(self) -> None:
        try:
            self.setup()
        except Exception as exc:
            self.teardown()
            log.error("actor failed to start", extra={"actor": self.name, "error": repr(exc)})
            if self._started is not None:
                self._started.fail(exc)
            else:
                self._on_death(self.name, exc)
            raise  # pykka stops the actor
        if self._started is not None:
            self._started.resolve(self.name)

    def on_stop(self) -> None:
        self.teardown()

    def on_receive(self, message: Any) -> Any:
        return self.handle(message)

    @abc.abstractmethod
    def handle(self, message: Any) -> Any:
        """Process one message (runs in the actor's own thread)."""

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: TracebackType | None) -> None:
        self.teardown()
        log.error("actor died", extra={"actor": self.name, "error": repr(exception_value)})
        self._on_death(self.name, exception_value)


def close_loop(loop: asyncio.AbstractEventLoop | None,
               cleanup: Coroutine[Any, Any, None] | None = None) -> None:
    """Run ``cleanup`` on an actor's private event loop, then close the loop (once)."""
    if loop is None or loop.is_closed():
        if cleanup is not None:
            cleanup.close()  # never awaited: say so to Python, quietly
        return
    try:
        if cleanup is not None:
            loop.run_until_complete(cleanup)
    finally:
        loop.close()
