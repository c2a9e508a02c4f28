"""Identifiers: random version-4 UUID strings without a system call each.

``uuid.uuid4()`` reads 16 bytes from the OS every time; on the journal's and the ledger's
hot paths (an id per trade, per new balance row) that was ~20 % of their threads' time.
These ids only need to be unique, not secret: they come from a per-process generator
seeded from the OS (again in every forked child).
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))  # noqa: S311 (unique, not secret: trade and row ids)
_bits = _random.getrandbits


def _reseed() -> None:
    _random.seed(os.urandom(32))


# A forked process (the projection processes, forked from one fork server) must not repeat
# its parent's sequence: two of them would make the same ids.
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A random RFC 4122 version-4 UUID, as its canonical lowercase string."""
    h = f"{_bits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"
