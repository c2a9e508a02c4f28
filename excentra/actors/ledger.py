"""LedgerActor: owns every balance; holds funds before the book, settles after it.

Pipeline (all ``tell``; an actor never waits for another's reply inside a handler, which
with pykka's one-thread-per-actor would deadlock as soon as two actors waited on each
other):

    PlaceOrder ─► hold funds ─► BookActor.Match ─► Settle ─► JournalActor.Commit
    CancelOrder ─► find the order's book ─► BookActor.Cancel ─► Settle ─► Commit
    Deposit / Withdraw ─► move funds ─────────────────────► JournalActor.Commit

It remembers what it sent to each book until the book's ``Settle`` comes back; when a
book dies (``BookDown``) exactly those commands are undone here — their holds released,
their callers told the command did not happen — and the pair is refused until the
supervisor hands over a rebuilt book (``BookUp``). Other pairs trade on meanwhile.

It also knows every open order (pair, owner, row), so a cancel needs no database read,
which users are suspended (they may cancel, not place or withdraw), and which pairs an
admin halted (no new orders; resting ones may be cancelled).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pykka

from excentra.actors.book import Cancel, Match, Settle
from excentra.actors.bridge import Answerable, Rejected, Reply, Unavailable
from excentra.actors.custody import Custody
from excentra.actors.journal import Barrier, Commit
from excentra.actors.supervised import Supervised
from excentra.actors.writes import (
    OpenOrder,
    Result,
    asset_added,
    cancellation,
    pair_added,
    placement,
    transfer,
    withdrawal_settled,
)
from excentra.db.records import (
    AssetRow,
    PairRow,
    WithdrawalRow,
    Writes,
)
from excentra.db.state import OpenWithdrawal
from excentra.engine import OrderRejected, OrderStatus, OrderUpdated, RejectCode
from excentra.engine.precision import plain
from excentra.ledger import PairTerms
from excentra.ledger.clearing import Clearing, NewOrder

_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED)
_RESTING = (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    command_id: str
    """Idempotency key; also the journal's command id."""
    order: NewOrder
    reply: Reply


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel ``user_id``'s open order (the ledger knows its pair)."""

    command_id: str
    order_id: str
    user_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class Deposit:
    command_id: str
    user_id: str
    asset: str
    amount: Decimal
    reply: Reply


@dataclass(frozen=True, slots=True)
class Withdraw:
    command_id: str
    withdrawal_id: str
    user_id: str
    asset: str
    amount: Decimal
    to_address: str
    reply: Reply
    immediate: bool = False
    """Off-chain: the funds leave at once (the original's ``POST /balances/withdraw``);
    the withdrawal is recorded ``confirmed`` in the same command."""
    fee: Decimal = Decimal(0)
    """Held with ``amount``; kept by the exchange when the withdrawal is sent."""
    chain: str | None = None
    """Paid out on this chain (the watcher sends it); ``None``: simulated."""
    needs_approval: bool = False
    """An on-chain withdrawal above the admin limit: ``pending_approval``, not ``queued``."""


@dataclass(frozen=True, slots=True)
class SettleWithdrawal:
    """A pending withdrawal left the exchange (``sent``) or will not (funds released)."""

    command_id: str
    withdrawal_id: str
    sent: bool
    tx_hash: str | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class AddAsset:
    command_id: str
    row: AssetRow
    reply: Reply


@dataclass(frozen=True, slots=True)
class AddPair:
    """Register a pair (its book actor is already running) and make it durable."""

    command_id: str
    row: PairRow
    terms: PairTerms
    book: pykka.ActorRef[Any]
    reply: Reply


@dataclass(frozen=True, slots=True)
class Audit:
    """Check every ledger invariant; answer with the balances (in memory, minor units)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class RegisterBooks:
    """The book actors the ledger sends orders to, and their pairs' ids (sent by the
    supervisor once the books exist: they need the ledger's ref first)."""

    book_refs: dict[str, Any]
    pair_ids: dict[str, uuid.UUID]


@dataclass(frozen=True, slots=True)
class BookDown:
    """``symbol``'s book actor died: refuse the pair's commands, undo every command sent
    to that book and not settled (release its hold, fail its reply: it did not happen),
    then pass ``barrier`` to the journal — resolved once all the ledger settled before
    is durable, so the book can be rebuilt from the database."""

    symbol: str
    barrier: Reply


@dataclass(frozen=True, slots=True)
class BookUp:
    """The pair's rebuilt book: accept its commands again."""

    symbol: str
    book: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class SetPairActive:
    """An admin halted (or reopened) a pair: no new orders on a halted one; its resting
    orders stay and may be cancelled."""

    symbol: str
    active: bool


@dataclass(frozen=True, slots=True)
class SetSuspended:
    """An admin suspended (or reinstated) a user."""

    user_id: str
    suspended: bool


# -- the actor ------------------------------------------------------------------------------


RECENT_COMMANDS = 100_000
"""How many accepted command ids the ledger remembers (see ``LedgerActor._first_time``)."""


class LedgerActor(Custody, Supervised):
    """Owns the ``Clearing``; sequence numbers for orders and trades.

    Idempotency belongs to the facade (``Exchange._command``: a repeat in flight shares
    the first answer, a committed one gets its stored result). The ledger only guards the
    pipeline: it remembers the last ``RECENT_COMMANDS`` ids it accepted and refuses a
    second copy in flight (``OUTCOME_UNKNOWN``), which would otherwise hold funds twice
    and fail the journal's whole batch on the ``commands`` primary key.
    """

    def __init__(self, clearing: Clearing, journal: pykka.ActorRef[Any], order_seq: int,
                 trade_seq: int, open_orders: dict[str, OpenOrder] | None = None,
                 suspended: set[str] | None = None, halted: set[str] | None = None,
                 withdrawals: list[OpenWithdrawal] | None = None,
                 credited: set[str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.clearing = clearing
        self.journal = journal
        self.books: dict[str, pykka.ActorRef[Any]] = {}
        self.pair_ids: dict[str, uuid.UUID] = {}
        self.order_seq = order_seq
        self.trade_seq = trade_seq
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.open_orders: dict[str, OpenOrder] = dict(open_orders or {})
        self.suspended: set[str] = set(suspended or ())
        self.halted: set[str] = set(halted or ())
        """Pairs an admin halted (no new orders)."""
        self.sent: dict[str, dict[str, Match | Cancel]] = {}
        """Per pair, the commands its book has not answered yet (by command id)."""
        self.down: set[str] = set()
        """Pairs whose book is being rebuilt."""
        self.withdrawals = {w.id: w for w in withdrawals or ()}
        self.credited = set(credited or ())

    def _first_time(self, command_id: str, reply: Answerable) -> bool:
        """Remember ``command_id``; a repeat while the first is still on its way is
        answered "outcome unknown" (a retry later finds the first one's stored result)."""
        if command_id in self.recent:
            reply.resolve(Rejected(RejectCode.OUTCOME_UNKNOWN))
            return False
        self.recent[command_id] = None
        if len(self.recent) > RECENT_COMMANDS:
            self.recent.popitem(last=False)
        return True

    def _refused(self, command_id: str, reply: Answerable, code: RejectCode) -> None:
        """A command refused before it changed anything may be tried again."""
        self.recent.pop(command_id, None)
        reply.resolve(Rejected(code))

    def _undone(self, command_id: str, reply: Answerable, reason: str) -> None:
        """A command that did not happen and will not: the caller may retry it."""
        self.recent.pop(command_id, None)
        reply.fail(Unavailable(reason))

    def handle(self, message: Any) -> None:
        match message:
            case PlaceOrder():
                self._place(message)
            case Settle():
                self._settle(message)
            case CancelOrder():
                self._cancel(message)
            case Deposit():
                self._deposit(message)
            case Withdraw():
                self._withdraw(message)
            case SettleWithdrawal():
                self._settle_withdrawal(message)
            case AddAsset():
                self._add_asset(message)
            case AddPair():
                self._add_pair(message)
            case Audit():
                self.clearing.ledger.check()
                message.reply.resolve({k: (b.available, b.held) for k, b in
                                       self.clearing.ledger.balances.items()})
            case RegisterBooks():
                self.books.update(message.book_refs)
                self.pair_ids.update(message.pair_ids)
            case BookDown():
                self._book_down(message)
            case BookUp():
                self.books[message.symbol] = message.book
                self.down.discard(message.symbol)
            case SetPairActive():
                if message.active:
                    self.halted.discard(message.symbol)
                else:
                    self.halted.add(message.symbol)
            case SetSuspended():
                if message.suspended:
                    self.suspended.add(message.user_id)
                else:
                    self.suspended.discard(message.user_id)
            case _:
                if not self.handle_custody(message):
                    raise TypeError(f"LedgerActor: unexpected {message!r}")

    # -- to and from the books ----------------------------------------------------------

    def _send(self, symbol: str, message: Match | Cancel) -> bool:
        """Send to the pair's book (through the outbox); ``False`` (nothing sent) if it is
        down. Kept in ``sent`` until its ``Settle``: if the book dies first (also before
        the outbox reached it), its ``BookDown`` undoes exactly these."""
        book = self.books[symbol]
        if symbol in self.down or not book.is_alive():
            return False
        self.send(book, message)
        self.sent.setdefault(symbol, {})[message.command_id] = message
        return True

    def _place(self, m: PlaceOrder) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        symbol = m.order.symbol
        if symbol not in self.books or symbol in self.halted:
            self._refused(m.command_id, m.reply, RejectCode.PAIR_NOT_FOUND)
            return
        if m.order.user_id in self.suspended:
            self._refused(m.command_id, m.reply, RejectCode.ACCOUNT_SUSPENDED)
            return
        opened = self.clearing.open(m.order)
        if isinstance(opened, RejectCode):
            self._refused(m.command_id, m.reply, opened)
            return
        if not self._send(symbol, Match(m.command_id, opened, m.reply)):
            self.clearing.abandon(m.order.order_id)
            self._undone(m.command_id, m.reply, f"book {symbol} is down")

    def _cancel(self, m: CancelOrder) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        order = self.open_orders.get(m.order_id)
        if order is None or order.user_id != m.user_id:
            self._refused(m.command_id, m.reply, RejectCode.ORDER_NOT_FOUND)
            return
        if not self._send(order.symbol, Cancel(m.command_id, m.order_id, m.user_id,
                                               m.reply)):
            self._undone(m.command_id, m.reply, f"book {order.symbol} is down")

    def _book_down(self, m: BookDown) -> None:
        self.down.add(m.symbol)
        for command_id, sent in self.sent.pop(m.symbol, {}).items():
            if isinstance(sent, Match):
                self.clearing.abandon(sent.opened.order.order_id)
            self._undone(command_id, sent.reply, f"book {m.symbol} failed")
        self.send(self.journal, Barrier(m.barrier))  # after every Commit sent before

    def _settle(self, m: Settle) -> None:
        self.sent.get(m.symbol, {}).pop(m.command_id, None)
        first = m.events[0]
        if isinstance(first, OrderRejected):
            code = first.code
            if m.opened is not None:
                self.clearing.abandon(m.opened.order.order_id)
            elif code is RejectCode.ORDER_NOT_FOUND:
                # The ledger knew the order open, so the book finished it meanwhile (a
                # fill not yet settled when the cancel was sent): not open any more.
                code = RejectCode.ORDER_NOT_OPEN
            self._refused(m.command_id, m.reply, code)
            return
        movements, trades = self.clearing.settle(m.symbol, m.events)
        at = datetime.now(UTC)
        pair_id = self.pair_ids[m.symbol]
        if m.opened is not None:
            self.order_seq += 1
            writes, result = placement(
                self.clearing, pair_id, m.opened, self.order_seq, m.events,
                [*m.opened.movements, *movements], trades, self.trade_seq + 1,
                m.command_id, at)
            self.trade_seq += len(trades)
            placed = writes.orders[0]
            if placed.status in _RESTING:  # a taker that rests is an open order now
                self.open_orders[m.opened.order.order_id] = OpenOrder.of(m.symbol, placed)
        else:
            assert m.user_id is not None
            order_id = next(str(e.order_id) for e in m.events if isinstance(e, OrderUpdated))
            writes, result = cancellation(self.clearing, self.open_orders[order_id],
                                          pair_id, m.user_id, m.events, movements,
                                          m.command_id, at)
        for e in m.events:
            if isinstance(e, OrderUpdated) and e.status in _FINAL:
                self.open_orders.pop(str(e.order_id), None)
        self.send(self.journal, Commit(writes, result, m.reply, m.symbol, tuple(m.events),
                                       tuple(trades)))

    def _deposit(self, m: Deposit) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        ref = str(uuid.uuid4())
        moved = self.clearing.deposit(m.user_id, m.asset, m.amount, ref)
        if isinstance(moved, RejectCode):
            self._refused(m.command_id, m.reply, moved)
            return
        self._commit(m.reply, *transfer(self.clearing, m.command_id, "deposit", m.user_id,
                                         m.asset, moved, {"id": ref}))

    def _withdraw(self, m: Withdraw) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        if m.user_id in self.suspended:
            self._refused(m.command_id, m.reply, RejectCode.ACCOUNT_SUSPENDED)
            return
        moved = self.clearing.request_withdrawal(m.withdrawal_id, m.user_id, m.asset,
                                                 m.amount + m.fee)
        if isinstance(moved, RejectCode):
            self._refused(m.command_id, m.reply, moved)
            return
        status = "pending"
        if m.immediate:
            moved = [*moved, *self.clearing.complete_withdrawal(m.withdrawal_id, m.fee)]
            status = "confirmed"
        elif m.chain is not None:
            status = "pending_approval" if m.needs_approval else "queued"
            self.withdrawals[m.withdrawal_id] = OpenWithdrawal(
                m.withdrawal_id, m.user_id, m.asset, m.amount, m.fee, status)
        row = WithdrawalRow(uuid.UUID(m.withdrawal_id), uuid.UUID(m.user_id), m.asset,
                            m.amount, m.fee, m.to_address, status, datetime.now(UTC), m.chain)
        self._commit(m.reply, *transfer(
            self.clearing, m.command_id, "withdraw", m.user_id, m.asset, moved,
            {"id": m.withdrawal_id, "status": status, "amount": plain(m.amount),
             "fee": plain(m.fee), "to_address": m.to_address}, (row,)))

    def _settle_withdrawal(self, m: SettleWithdrawal) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        held = self.clearing.ledger.reservations.get(m.withdrawal_id)
        if held is None or m.withdrawal_id in self.withdrawals:  # on-chain: the watcher's
            self._refused(m.command_id, m.reply, RejectCode.ORDER_NOT_FOUND)
            return
        amount = self.clearing.amount(held.asset, held.amount)
        moved = (self.clearing.complete_withdrawal(m.withdrawal_id) if m.sent
                 else self.clearing.cancel_withdrawal(m.withdrawal_id))
        self._commit(m.reply, *withdrawal_settled(m.command_id, m.withdrawal_id, held.user_id,
                                                  held.asset, amount, m.sent, m.tx_hash,
                                                  moved))

    def _add_asset(self, m: AddAsset) -> None:
        if m.row.symbol in self.clearing.decimals:
            m.reply.resolve(Rejected(RejectCode.ALREADY_EXISTS))
            return
        self.clearing.add_asset(m.row.symbol, m.row.decimals)
        self._commit(m.reply, *asset_added(m.command_id, m.row))

    def _add_pair(self, m: AddPair) -> None:
        symbol = m.row.symbol
        if symbol in self.clearing.pairs:  # raced another add: the caller stops its book
            m.reply.resolve(Rejected(RejectCode.ALREADY_EXISTS))
            return
        self.clearing.add_pair(m.terms)
        self.books[symbol] = m.book
        self.pair_ids[symbol] = m.row.id
        self._commit(m.reply, *pair_added(m.command_id, m.row, m.terms))

    def _commit(self, reply: Answerable, writes: Writes, result: Result) -> None:
        """Hand a command that touches no book to the journal."""
        self.send(self.journal, Commit(writes, result, reply, None, (), ()))
