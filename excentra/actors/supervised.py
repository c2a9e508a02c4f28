"""The base of every supervised actor: one handler, deaths reported to the supervisor."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

log = logging.getLogger("excentra.actors")

DeathHook = Callable[[str, BaseException | None], None]
"""Called in the dying actor's thread with its name and the exception that killed it."""


class Supervised(pykka.ThreadingActor, abc.ABC):
    """A pykka actor whose ``handle`` raising means a bug: the actor dies (pykka stops it)
    and ``on_death`` tells the supervisor, which rebuilds it from durable state."""

    def __init__(self, *, name: str, on_death: DeathHook) -> None:
        super().__init__()
        self.name = name
        self._on_death = on_death

    def on_receive(self, message: Any) -> Any:
        return self.handle(message)

    @abc.abstractmethod
    def handle(self, message: Any) -> Any:
        """Process one message (runs in the actor's own thread)."""

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: TracebackType | None) -> None:
        log.error("actor died", extra={"actor": self.name, "error": repr(exception_value)})
        self._on_death(self.name, exception_value)
