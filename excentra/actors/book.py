"""BookActor: one per trading pair; owns that pair's engine ``OrderBook``.

Protocol (its messages are all here, ``Settle`` included: it is what a book answers):

    Match(order whose funds the ledger holds) ─► book ─► Settle(events) to the ledger
    Cancel(order id, user)                     ─► book ─► Settle(events) to the ledger
    Snapshot(depth, reply)                     ─► book ─► reply (levels, state hash, spec)

Every ``Match`` and ``Cancel`` is answered with exactly one ``Settle`` unless the book
dies; the ledger keeps what it sent until then, to release it if the book dies instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka

from excentra.actors.bridge import Reply
from excentra.actors.supervised import Supervised
from excentra.engine import (
    Event,
    OrderBook,
    OrderRejected,
    OrderType,
    RejectCode,
)
from excentra.ledger.clearing import OpenedOrder


@dataclass(frozen=True, slots=True)
class Match:
    """Match an order whose funds the ledger holds."""

    command_id: str
    opened: OpenedOrder
    reply: Reply


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel ``user_id``'s resting order ``order_id`` (someone else's: not found)."""

    command_id: str
    order_id: str
    user_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class Settle:
    """A book's outcome for one ``Match`` or ``Cancel``, to the ledger."""

    command_id: str
    symbol: str
    events: list[Event]
    reply: Reply
    opened: OpenedOrder | None = None
    """The placement's held funds; ``None`` for a cancel."""
    user_id: str | None = None
    """Who asked (for a cancel)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Answer with the book's ``BookSnapshot`` (top ``depth`` levels), its state hash and
    its ``PairSpec``."""

    depth: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class InjectFault:
    """Raise inside the actor: kills it (the supervisor demo and tests use this)."""

    reason: str = "injected fault"


class BookActor(Supervised):
    """Matches orders for one pair and sends the outcome to the ledger to settle."""

    def __init__(self, book: OrderBook, ledger: pykka.ActorRef[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.book = book
        self.ledger = ledger

    def handle(self, message: Any) -> None:
        match message:
            case Match():
                events = self._match(message.opened)
                self.send(self.ledger, Settle(message.command_id, self.book.spec.symbol,
                                              events, message.reply, opened=message.opened))
            case Cancel():
                events = self.book.cancel(message.order_id, message.user_id)
                self.send(self.ledger, Settle(message.command_id, self.book.spec.symbol,
                                              events, message.reply, user_id=message.user_id))
            case Snapshot():
                book = self.book  # the spec is immutable: safe to hand out
                message.reply.resolve((book.snapshot(message.depth), book.state_hash(),
                                       book.spec))
            case InjectFault():
                raise RuntimeError(message.reason)
            case _:
                raise TypeError(f"BookActor: unexpected {message!r}")

    def _match(self, opened: OpenedOrder) -> list[Event]:
        o, book = opened.order, self.book
        if o.order_type is OrderType.LIMIT:
            assert opened.ticks is not None
            if book.would_self_cross(o.user_id, o.side, opened.ticks):
                # The original's pre-check: a limit order may not cross its own user's
                # resting order, even if other users' orders would fill it first.
                return [OrderRejected(o.order_id, o.user_id, RejectCode.SELF_CROSS)]
            return book.place_limit(o.order_id, o.user_id, o.side, o.price,  # type: ignore[arg-type]
                                    o.quantity, o.time_in_force, o.post_only,  # type: ignore[arg-type]
                                    o.stp)
        return book.place_market(o.order_id, o.user_id, o.side, o.quantity, o.budget, o.stp)
