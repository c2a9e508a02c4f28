"""BroadcasterActor: the only exit for committed events.

It hands each committed batch to every subscriber. A subscriber is anything with a
``deliver(batch)`` method (the WebSocket hub implements it; tests use a recording one); it
is called in this actor's thread and must not block (the hub hops to its event loop with
one ``call_soon_threadsafe`` per batch). Acknowledgements do not pass through here: the
journal resolves them itself once a batch is durable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from excentra.actors.journal import Committed
from excentra.actors.supervised import Supervised

log = logging.getLogger("excentra.broadcaster")


class Subscriber(Protocol):
    def deliver(self, batch: Committed) -> None: ...


@dataclass(frozen=True, slots=True)
class Subscribe:
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscriber: Subscriber


class BroadcasterActor(Supervised):
    def __init__(self, subscribers: list[Subscriber] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.subscribers: list[Subscriber] = list(subscribers or ())

    def handle(self, message: Any) -> None:
        match message:
            case Committed():
                for s in list(self.subscribers):
                    try:
                        s.deliver(message)
                    except Exception:  # a broken subscriber must not stop the others
                        log.exception("subscriber failed; dropped",
                                      extra={"subscriber": repr(s)})
                        self.subscribers.remove(s)
            case Subscribe():
                self.subscribers.append(message.subscriber)
            case Unsubscribe():
                if message.subscriber in self.subscribers:
                    self.subscribers.remove(message.subscriber)
            case _:
                raise TypeError(f"BroadcasterActor: unexpected {message!r}")
