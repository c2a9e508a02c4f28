"""Coalesced point lookups: many concurrent ``get(key)`` calls, one query per tick.

The facade asks the database, per keyed command, whether that command id was executed
before, and per cancel, who owns the order. Under load those are dozens of identical
point queries at once; this gathers the keys requested while the event loop runs other
tasks and fetches them with one ``IN (...)`` query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEYS = 500
"""At most this many keys per query."""


class Coalescer(Generic[K, V]):
    """``await get(key)`` → the value ``fetch`` returns for it, or ``None``."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Iterable[tuple[K, V]]]]) -> None:
        self._fetch = fetch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._scheduled = False

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        keys = list(waiting)
        for i in range(0, len(keys), MAX_KEYS):
            chunk = {k: waiting[k] for k in keys[i:i + MAX_KEYS]}
            asyncio.get_running_loop().create_task(self._run(chunk))

    async def _run(self, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = dict(await self._fetch(list(waiting)))
        except Exception as exc:  # every waiter sees the failure
            for futures in waiting.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)
            return
        for key, futures in waiting.items():
            for f in futures:
                if not f.done():
                    f.set_result(found.get(key))
