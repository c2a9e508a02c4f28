"""Which idempotency keys each user has used: answered from memory, read from the
database once per user.

A keyed command (an order with a ``client_order_id``, a deposit or withdrawal with an
idempotency key) must run once: the facade needs to know whether its command id was
executed before. Asking the database for every keyed command cost ~45 µs of the event
loop and ~60 µs of PostgreSQL per command (``excentra bench pipeline --profile``,
bench/RESULTS.md). Instead the first keyed command of a user loads the command ids of that
user's keyed commands once — from ``commands`` and from the event log after the
projection (not yet projected) — and from then on the set is kept current in memory: a
command id is added once its command is acknowledged. The database is read again only for
a key found there (a retry: its stored answer) and for a user whose set was evicted.

Exactness: a key is added before its command's answer is handed out (``Exchange``), and a
command for a user whose set is being loaded is remembered and merged into the loaded set,
so a key that committed is never missing from a set in memory. Memory is bounded: above
``KEYS_KEPT`` ids, the least recently used users' sets are dropped whole (and read again
on their next keyed command).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from excentra.actors.watermarks import NOTHING, READER
from excentra.db import Database

KEYS_KEPT = 1_000_000
"""Keyed command ids kept in memory at most (~100 MB), over all users."""
KEYED_KINDS = ("order", "deposit", "withdraw")
"""Command ids ``<kind>:<user id>:<key>`` (``Exchange``): the user is part of the id."""


def owner(command_id: str) -> str | None:
    """The user of a keyed command id (``None``: not a per-user keyed id)."""
    kind, sep, rest = command_id.partition(":")
    if not sep or kind not in KEYED_KINDS:
        return None
    user, sep, _ = rest.partition(":")
    return user if sep else None


class UsedKeys:
    def __init__(self, db: Database, kept: int = KEYS_KEPT) -> None:
        self.db = db
        self.kept = kept
        self.users: OrderedDict[str, set[str]] = OrderedDict()
        self.size = 0
        self.loads = 0
        """Sets read from the database (since start)."""
        self._loading: dict[str, asyncio.Future[set[str]]] = {}
        self._late: dict[str, set[str]] = {}

    async def used(self, command_id: str) -> bool | None:
        """Whether ``command_id`` was executed before (``None``: not a per-user key;
        ask the database)."""
        user = owner(command_id)
        if user is None:
            return None
        keys = self.users.get(user)
        if keys is None:
            pending = self._loading.get(user)
            if pending is None:
                pending = self._loading[user] = asyncio.ensure_future(self._load(user))
            keys = await asyncio.shield(pending)
        else:
            self.users.move_to_end(user)
        return command_id in keys

    def add(self, command_id: str) -> None:
        """``command_id`` was acknowledged (its result is stored)."""
        user = owner(command_id)
        if user is None:
            return
        keys = self.users.get(user)
        if keys is not None:
            if command_id not in keys:
                keys.add(command_id)
                self.size += 1
        elif user in self._loading:  # the load may have read before it committed
            self._late.setdefault(user, set()).add(command_id)

    async def _load(self, user: str) -> set[str]:
        token = READER.set(NOTHING)  # the log and what is projected: no wait
        try:
            rows = await self.db.fetch_all(
                "SELECT command_id FROM commands WHERE user_id = :u AND ("
                "command_id LIKE :o OR command_id LIKE :d OR command_id LIKE :w) "
                "UNION SELECT command_id FROM event_log WHERE user_id = :u AND seq > "
                "(SELECT seq FROM projection_state WHERE name = 'tables')",
                {"u": user, "o": f"order:{user}:%", "d": f"deposit:{user}:%",
                 "w": f"withdraw:{user}:%"})
            keys = {str(r["command_id"]) for r in rows}
            keys = {k for k in keys if owner(k) == user}
        except BaseException:
            self._late.pop(user, None)  # committed ones are in the database: read again
            raise
        finally:
            READER.reset(token)
            self._loading.pop(user, None)
        keys |= self._late.pop(user, set())
        self.loads += 1
        self.users[user] = keys
        self.size += len(keys)
        while self.size > self.kept and len(self.users) > 1:
            _, dropped = self.users.popitem(last=False)
            self.size -= len(dropped)
        return keys
