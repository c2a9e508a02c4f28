"""LedgerActor: owns every balance; holds funds before the book, settles after it.

Pipeline (all ``tell``; an actor never waits for another's reply inside a handler, which
with pykka's one-thread-per-actor would deadlock as soon as two actors waited on each
other):

    PlaceOrder ─► hold funds ─► BookActor.Match ─► Settle ─► JournalActor.Commit
    CancelOrder ─────────────► BookActor.Cancel ─► Settle ─► JournalActor.Commit
    Deposit / Withdraw ─► move funds ─────────────────────► JournalActor.Commit
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pykka

from excentra.actors.bridge import Reply, Unavailable
from excentra.actors.journal import Commit
from excentra.actors.supervised import Supervised
from excentra.actors.writes import cancellation, movement_rows, placement
from excentra.db.records import (
    AssetRow,
    PairRow,
    WithdrawalChange,
    WithdrawalRow,
    Writes,
)
from excentra.engine import Event, OrderRejected, RejectCode
from excentra.engine.precision import plain
from excentra.ledger import PairTerms
from excentra.ledger.clearing import Clearing, NewOrder, OpenedOrder


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command refused before anything changed."""

    code: RejectCode


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    command_id: str
    """Idempotency key; also the journal's command id."""
    order: NewOrder
    reply: Reply


@dataclass(frozen=True, slots=True)
class CancelOrder:
    command_id: str
    symbol: str
    order_id: str
    user_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class Settle:
    """A book actor's outcome for one command, back to the ledger."""

    command_id: str
    symbol: str
    events: list[Event]
    reply: Reply
    opened: OpenedOrder | None = None
    """The placement's held funds; ``None`` for a cancel."""
    user_id: str | None = None
    """Who asked (for a cancel)."""


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


# -- the actor ------------------------------------------------------------------------------


RECENT_COMMANDS = 100_000
"""How many accepted command ids the ledger remembers (see ``LedgerActor._first_time``)."""


class LedgerActor(Supervised):
    """Owns the ``Clearing``; sequence numbers for orders and trades.

    It also de-duplicates commands: it sees every command in order, so it remembers the
    ids of the last ``RECENT_COMMANDS`` it accepted. The facade answers a retried id from
    the database once it is committed; the ledger covers the window before that (a client
    that timed out and retried while the first attempt was still in the pipeline).
    """

    def __init__(self, clearing: Clearing, journal: pykka.ActorRef[Any], order_seq: int,
                 trade_seq: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.clearing = clearing
        self.journal = journal
        self.books: dict[str, pykka.ActorRef[Any]] = {}
        self.pair_ids: dict[str, uuid.UUID] = {}
        self.order_seq = order_seq
        self.trade_seq = trade_seq
        self.recent: OrderedDict[str, None] = OrderedDict()

    def _first_time(self, command_id: str, reply: Reply) -> bool:
        """Remember ``command_id``; answer a repeat with 503 (retry: it will find the
        first attempt's stored result)."""
        if command_id in self.recent:
            reply.fail(Unavailable(f"command {command_id} is already being executed"))
            return False
        self.recent[command_id] = None
        if len(self.recent) > RECENT_COMMANDS:
            self.recent.popitem(last=False)
        return True

    def _refused(self, command_id: str, reply: Reply, code: RejectCode) -> None:
        """A command refused before it changed anything may be tried again."""
        self.recent.pop(command_id, None)
        reply.resolve(Rejected(code))

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
            case _:
                raise TypeError(f"LedgerActor: unexpected {message!r}")

    def _place(self, m: PlaceOrder) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        book = self.books.get(m.order.symbol)
        if book is None:
            self._refused(m.command_id, m.reply, RejectCode.PAIR_NOT_FOUND)
            return
        opened = self.clearing.open(m.order)
        if isinstance(opened, RejectCode):
            self._refused(m.command_id, m.reply, opened)
            return
        from excentra.actors.book import Match  # noqa: PLC0415 (the two modules talk)

        try:
            book.tell(Match(m.command_id, opened, m.reply))
        except pykka.ActorDeadError:
            self.clearing.abandon(m.order.order_id)
            self.recent.pop(m.command_id, None)
            m.reply.fail(Unavailable(f"book {m.order.symbol} is down"))

    def _cancel(self, m: CancelOrder) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        book = self.books.get(m.symbol)
        if book is None:
            self._refused(m.command_id, m.reply, RejectCode.ORDER_NOT_FOUND)
            return
        from excentra.actors.book import Cancel  # noqa: PLC0415

        try:
            book.tell(Cancel(m.command_id, m.order_id, m.user_id, m.reply))
        except pykka.ActorDeadError:
            self.recent.pop(m.command_id, None)
            m.reply.fail(Unavailable(f"book {m.symbol} is down"))

    def _settle(self, m: Settle) -> None:
        first = m.events[0]
        if isinstance(first, OrderRejected):
            code = first.code
            if m.opened is not None:
                self.clearing.abandon(m.opened.order.order_id)
            elif code is RejectCode.ORDER_NOT_FOUND:
                # The facade found the order open in the database, so the book finished it
                # (a fill not yet committed when the cancel was checked): not open any more.
                code = RejectCode.ORDER_NOT_OPEN
            self._refused(m.command_id, m.reply, code)
            return
        movements, trades = self.clearing.settle(m.symbol, m.events)
        at = datetime.now(UTC)
        if m.opened is not None:
            self.order_seq += 1
            writes, result = placement(
                self.clearing, self.pair_ids[m.symbol], m.opened, self.order_seq, m.events,
                [*m.opened.movements, *movements], trades, self.trade_seq + 1,
                m.command_id, at)
            self.trade_seq += len(trades)
        else:
            assert m.user_id is not None
            writes, result = cancellation(self.clearing, m.symbol, m.user_id, m.events,
                                          movements, m.command_id, at)
        self.journal.tell(Commit(writes, result, m.reply, m.symbol, tuple(m.events),
                                 tuple(trades)))

    def _deposit(self, m: Deposit) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        ref = str(uuid.uuid4())
        moved = self.clearing.deposit(m.user_id, m.asset, m.amount, ref)
        if isinstance(moved, RejectCode):
            self._refused(m.command_id, m.reply, moved)
            return
        self._commit_transfer(m.command_id, "deposit", m.user_id, m.asset, moved, m.reply,
                              {"id": ref})

    def _withdraw(self, m: Withdraw) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        moved = self.clearing.request_withdrawal(m.withdrawal_id, m.user_id, m.asset,
                                                 m.amount)
        if isinstance(moved, RejectCode):
            self._refused(m.command_id, m.reply, moved)
            return
        status = "pending"
        if m.immediate:
            moved = [*moved, *self.clearing.complete_withdrawal(m.withdrawal_id)]
            status = "confirmed"
        at = datetime.now(UTC)
        row = WithdrawalRow(uuid.UUID(m.withdrawal_id), uuid.UUID(m.user_id), m.asset,
                            m.amount, Decimal(0), m.to_address, status, at)
        self._commit_transfer(m.command_id, "withdraw", m.user_id, m.asset, moved, m.reply,
                              {"id": m.withdrawal_id, "status": status}, (row,))

    def _settle_withdrawal(self, m: SettleWithdrawal) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        held = self.clearing.ledger.reservations.get(m.withdrawal_id)
        if held is None:
            self._refused(m.command_id, m.reply, RejectCode.ORDER_NOT_FOUND)
            return
        moved = (self.clearing.complete_withdrawal(m.withdrawal_id) if m.sent
                 else self.clearing.cancel_withdrawal(m.withdrawal_id))
        at = datetime.now(UTC)
        status = "confirmed" if m.sent else "cancelled"
        change = WithdrawalChange(uuid.UUID(m.withdrawal_id), status, m.tx_hash, at)
        result = {"id": m.withdrawal_id, "status": status, "asset": held.asset,
                  "amount": plain(self.clearing.amount(held.asset, held.amount))}
        writes = Writes(m.command_id, "settle_withdrawal", uuid.UUID(held.user_id),
                        json.dumps(result), at, movements=movement_rows(moved),
                        withdrawal_changes=(change,))
        self.journal.tell(Commit(writes, result, m.reply, None, (), ()))

    def _add_asset(self, m: AddAsset) -> None:
        if m.row.symbol in self.clearing.decimals:
            m.reply.resolve(Rejected(RejectCode.ALREADY_EXISTS))
            return
        self.clearing.add_asset(m.row.symbol, m.row.decimals)
        result = {"id": str(m.row.id), "symbol": m.row.symbol}
        writes = Writes(m.command_id, "add_asset", None, json.dumps(result), m.row.created_at,
                        assets=(m.row,))
        self.journal.tell(Commit(writes, result, m.reply, None, (), ()))

    def _add_pair(self, m: AddPair) -> None:
        symbol = m.row.symbol
        if symbol in self.clearing.pairs:  # raced another add: the caller stops its book
            m.reply.resolve(Rejected(RejectCode.ALREADY_EXISTS))
            return
        self.clearing.add_pair(m.terms)
        self.books[symbol] = m.book
        self.pair_ids[symbol] = m.row.id
        result = {"id": str(m.row.id), "symbol": symbol}
        writes = Writes(m.command_id, "add_pair", None, json.dumps(result), m.row.created_at,
                        pairs=(m.row,))
        self.journal.tell(Commit(writes, result, m.reply, None, (), ()))

    def _commit_transfer(self, command_id: str, kind: str, user_id: str, asset: str,
                         moved: list[Any], reply: Reply, extra: dict[str, Any],
                         withdrawals: tuple[WithdrawalRow, ...] = ()) -> None:
        b = self.clearing.ledger.balance(user_id, asset)
        result = {**extra, "asset": asset,
                  "available": plain(self.clearing.amount(asset, b.available)),
                  "held": plain(self.clearing.amount(asset, b.held))}
        writes = Writes(command_id, kind, uuid.UUID(user_id), json.dumps(result),
                        datetime.now(UTC), movements=movement_rows(moved),
                        withdrawals=withdrawals)
        self.journal.tell(Commit(writes, result, reply, None, (), ()))
