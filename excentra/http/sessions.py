"""The grace period of a rotated refresh token.

Reuse detection treats a refresh token presented after it was rotated as stolen: every
session of the user is revoked. But a browser with two tabs, or a React app in development
mode (its session-restore effect runs twice), refreshes twice at once with the same cookie,
and the loser of that race would log the user out. As the major identity providers do (a
"reuse interval"), a token rotated less than ``refresh_grace_seconds`` ago is answered with
the *same* successor its first refresh got — one session, not two — and only a reuse after
that revokes everything.

The successor's raw value exists only in this process's memory, for the grace period (the
database keeps hashes only): a deployment of several processes behind one cookie gives the
grace to requests that reach the same process; a reuse that reaches another is treated as
a reuse. Concurrent refreshes in one process share one rotation: the first registers a
future under the old token's hash before it rotates, the others wait for it.

Security: within the grace a thief holding the old token gets the same session as its
owner (not a new one); after it, the usual detection applies. ``refresh_grace_seconds = 0``
restores the strict behaviour.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from itertools import islice


@dataclass
class _Rotation:
    successor: asyncio.Future[str]
    """The successor's raw value, once the rotation committed."""
    until: float
    """``time.monotonic()`` after which the old token is a reuse again."""


class RefreshGrace:
    """Old refresh token hash → its rotation (bounded: entries expire with their grace)."""

    MAX_ENTRIES = 100_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rotations: dict[str, _Rotation] = {}

    def joining(self, old_hash: str) -> asyncio.Future[str] | None:
        """The successor of a rotation of ``old_hash`` running or recent enough to share;
        ``None`` if there is none (the caller rotates, or it is a reuse)."""
        entry = self._rotations.get(old_hash)
        if entry is None:
            return None
        if time.monotonic() > entry.until and entry.successor.done():
            del self._rotations[old_hash]
            return None
        return entry.successor

    def begin(self, old_hash: str) -> asyncio.Future[str] | None:
        """Register this request as the one rotating ``old_hash``; ``None`` if the grace is
        off. Resolve the future with the successor (or cancel it if the rotation failed)."""
        if self.seconds <= 0:
            return None
        self._prune()
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._rotations.pop(old_hash, None)  # at the end: the order is the expiry order
        self._rotations[old_hash] = _Rotation(future, time.monotonic() + self.seconds)
        return future

    def failed(self, old_hash: str, future: asyncio.Future[str] | None) -> None:
        """The rotation did not happen: those waiting get nothing to share."""
        if future is None:
            return
        if not future.done():
            future.cancel()
        entry = self._rotations.get(old_hash)
        if entry is not None and entry.successor is future:
            del self._rotations[old_hash]

    def __len__(self) -> int:
        return len(self._rotations)

    def _prune(self) -> None:
        """Forget rotations whose grace is over, from the front (entries are kept in the
        order they began, and all last ``seconds``, so the expired ones are there): O(1)
        amortised. A rotation still running is kept past its grace (those waiting on it
        must get its answer). Past ``MAX_ENTRIES`` the oldest goes regardless: a repeat of
        it then counts as a reuse."""
        now = time.monotonic()
        rotations = self._rotations
        for key in list(islice(rotations, 2)):
            entry = rotations[key]
            if entry.until >= now or not entry.successor.done():
                break
            del rotations[key]
        while len(rotations) >= self.MAX_ENTRIES:
            del rotations[next(iter(rotations))]
