"""The base of every supervised actor: one handler, a confirmed start, deaths reported to
the supervisor, and an outbox that hands messages to a peer in batches.

The outbox: an actor that ``send``s to a peer instead of ``tell``ing it keeps the message
until its own inbox is empty (or ``OUTBOX_LIMIT`` wait), then tells the peer all of them
as one ``Many``, which the peer handles one by one, in order. Under load a hand-over
between threads (a queue put, a condition notify, the peer's wake-up, a GIL switch: a few
µs each, measured in bench/RESULTS.md) is paid once per batch instead of once per command;
when idle, a message leaves at once (the inbox is empty after each). Order per peer is
kept; an actor stopping sends what it holds first (``on_stop``)."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pykka

from excentra.actors.bridge import Reply

log = logging.getLogger("excentra.actors")

OUTBOX_LIMIT = 64
"""Messages an outbox holds for its peers before it sends them although more work waits."""


@dataclass(frozen=True, slots=True)
class Many:
    """Several messages for one actor, handled one by one in order (``Supervised.send``)."""

    messages: tuple[Any, ...]


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
        self._outbox: dict[str, tuple[pykka.ActorRef[Any], list[Any]]] = {}
        self._outbox_size = 0

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

    def finish(self) -> None:
        """On a stop (not a death), before ``teardown``: complete work the actor told
        itself to do later (e.g. a pending flush, queued behind the stop)."""

    def on_stop(self) -> None:
        try:
            self.finish()
        finally:
            self.flush_outbox()
            self.teardown()

    def on_receive(self, message: Any) -> Any:
        if type(message) is Many:
            result = None
            for one in message.messages:
                self.handle(one)
        else:
            result = self.handle(message)
        if self._outbox_size and (self._outbox_size >= OUTBOX_LIMIT
                                  or self.actor_inbox.empty()):
            self.flush_outbox()
        return result

    def send(self, ref: pykka.ActorRef[Any], message: Any) -> None:
        """Tell ``ref`` ``message`` once this actor has nothing else to do (see the module
        docstring). A peer that died meanwhile does not get it: its death is handled by
        the supervisor, which knows what it had not answered."""
        entry = self._outbox.get(ref.actor_urn)
        if entry is None:
            entry = self._outbox[ref.actor_urn] = (ref, [])
        entry[1].append(message)
        self._outbox_size += 1

    def flush_outbox(self) -> None:
        outbox, self._outbox, self._outbox_size = self._outbox, {}, 0
        for ref, messages in outbox.values():
            try:
                ref.tell(messages[0] if len(messages) == 1 else Many(tuple(messages)))
            except pykka.ActorDeadError:
                log.warning("peer died; messages for it dropped",
                            extra={"actor": self.name, "messages": len(messages)})

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
