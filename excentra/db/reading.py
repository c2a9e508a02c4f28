"""Who is reading the tables, for read-your-writes (``excentra.actors.watermarks``).

The tables that are projections of the event log (orders, trades, balances, …) may lag
the log by a moment; the exchange's database waits, before each query, until they show
what the current reader must see. A context variable says who that is. Queries of tables
the log does not write (users, sessions, reset tokens, deposit addresses) need not wait,
and must not: a login should not depend on the projector. Functions that read only such
tables are ``@unfenced``.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

EVERYTHING = "*everything"
"""Reader: every entry acknowledged when the query begins (anonymous and admin requests,
tests, the CLI)."""
NOTHING = "*nothing"
"""Reader: no wait (queries of the log itself, or of tables the log does not write)."""
READER: contextvars.ContextVar[str] = contextvars.ContextVar("excentra_reader",
                                                            default=EVERYTHING)
"""Who is reading: one of the above, or a user id (that user's own writes)."""

P = ParamSpec("P")
T = TypeVar("T")


def unfenced(query: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``query`` reads no projection of the log: it never waits for one."""

    @functools.wraps(query)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        token = READER.set(NOTHING)
        try:
            return await query(*args, **kwargs)
        finally:
            READER.reset(token)

    return run
