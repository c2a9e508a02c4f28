"""The ledger's side of on-chain custody: chain deposits credited, on-chain withdrawals
held, reviewed, sent and settled — each an ordinary journaled command.

The chain watcher (``excentra.chain.watcher``) observes the chain and decides *when*;
the ledger decides *whether* (funds, state) and the journal makes it durable. The ledger
keeps in memory what it needs to refuse a repeat without a database read:

* ``credited`` — the chain deposits already credited: a second credit of one (a watcher
  restart, a replayed poll) is ``ALREADY_EXISTS``, never money twice;
* ``withdrawals`` — the on-chain withdrawals still holding funds, with their status, so
  that only a ``pending_approval`` one can be approved or rejected, only an approved one
  sent, and settling one charges exactly its fee.

Both are rebuilt from the database with the rest of the ledger (``db.state``).
"""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from excentra.actors.bridge import Answerable
from excentra.actors.writes import chain_credit, withdrawal_update
from excentra.db.records import DepositChange, WithdrawalChange, Writes
from excentra.db.state import OpenWithdrawal
from excentra.engine import RejectCode
from excentra.engine.precision import plain
from excentra.ledger.clearing import Clearing

# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditDeposit:
    """Credit a chain deposit that has its confirmations (``deposit_id``: its row in
    ``chain_deposits``; the command id names the chain event, tx hash and log index)."""

    command_id: str
    deposit_id: str
    user_id: str
    asset: str
    amount: Decimal
    confirmations: int
    reply: Answerable


@dataclass(frozen=True, slots=True)
class ReverseDeposit:
    """A credited deposit's block left the canonical chain. The credit stands (the user
    may have traded it); the deposit is marked ``reversed`` for an admin to act on."""

    command_id: str
    deposit_id: str
    user_id: str
    reply: Answerable


@dataclass(frozen=True, slots=True)
class ReviewWithdrawal:
    """An admin approves (``queued``: it will be sent) or rejects (its hold released) a
    withdrawal awaiting approval."""

    command_id: str
    withdrawal_id: str
    approve: bool
    reason: str | None
    reply: Answerable


@dataclass(frozen=True, slots=True)
class WithdrawalSent:
    """The watcher signed the withdrawal's transaction (``nonce``, ``raw_tx``): recorded
    durably *before* the transaction reaches the node, so a restart re-sends this very
    transaction instead of signing another. Also a replacement (same nonce, higher fee)."""

    command_id: str
    withdrawal_id: str
    nonce: int
    tx_hash: str
    raw_tx: str
    reply: Answerable


@dataclass(frozen=True, slots=True)
class WithdrawalDone:
    """An on-chain withdrawal's outcome: ``confirmed`` (the amount left, the fee stays
    with the exchange) or ``failed`` (reverted or dropped: the whole hold released)."""

    command_id: str
    withdrawal_id: str
    confirmed: bool
    tx_hash: str | None
    reason: str | None
    reply: Answerable


# -- the ledger's handlers ---------------------------------------------------------------------


class Custody(abc.ABC):
    """Mixed into ``LedgerActor``, which provides the attributes and the three hooks
    below (its own command bookkeeping)."""

    clearing: Clearing
    credited: set[str]
    withdrawals: dict[str, OpenWithdrawal]

    @abc.abstractmethod
    def _first_time(self, command_id: str, reply: Answerable) -> bool: ...

    @abc.abstractmethod
    def _refused(self, command_id: str, reply: Answerable, code: RejectCode) -> None: ...

    @abc.abstractmethod
    def _commit(self, reply: Answerable, writes: Writes, result: dict[str, Any]) -> None: ...

    def handle_custody(self, message: Any) -> bool:
        """Handle ``message`` if it is a custody command; ``False`` if it is not one."""
        match message:
            case CreditDeposit():
                self._credit(message)
            case ReverseDeposit():
                self._reverse(message)
            case ReviewWithdrawal():
                self._review(message)
            case WithdrawalSent():
                self._sent(message)
            case WithdrawalDone():
                self._done(message)
            case _:
                return False
        return True

    def _credit(self, m: CreditDeposit) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        if m.deposit_id in self.credited:
            self._refused(m.command_id, m.reply, RejectCode.ALREADY_EXISTS)
            return
        moved = self.clearing.deposit(m.user_id, m.asset, m.amount, m.deposit_id)
        if isinstance(moved, RejectCode):
            self._refused(m.command_id, m.reply, moved)
            return
        self.credited.add(m.deposit_id)
        at = datetime.now(UTC)
        change = DepositChange(uuid.UUID(m.deposit_id), "credited", m.confirmations, at, at)
        self._commit(m.reply, *chain_credit(self.clearing, m.command_id, m.user_id, m.asset,
                                            moved, change))

    def _reverse(self, m: ReverseDeposit) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        at = datetime.now(UTC)
        change = DepositChange(uuid.UUID(m.deposit_id), "reversed", 0, None, at)
        result = {"id": m.deposit_id, "status": "reversed"}
        self._commit(m.reply, *withdrawal_update(
            m.command_id, "deposit_reversed", m.user_id, result, at, deposits=(change,)))

    def _review(self, m: ReviewWithdrawal) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        w = self.withdrawals.get(m.withdrawal_id)
        if w is None or w.status != "pending_approval":
            self._refused(m.command_id, m.reply, RejectCode.WITHDRAWAL_WRONG_STATE
                          if w is not None else RejectCode.WITHDRAWAL_NOT_FOUND)
            return
        moved = []
        if m.approve:
            self.withdrawals[m.withdrawal_id] = replace(w, status="queued")
            status = "queued"
        else:
            moved = self.clearing.cancel_withdrawal(m.withdrawal_id)
            del self.withdrawals[m.withdrawal_id]
            status = "rejected"
        self._change(m.reply, m.command_id, "review_withdrawal", w, status, moved,
                     reason=m.reason)

    def _sent(self, m: WithdrawalSent) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        w = self.withdrawals.get(m.withdrawal_id)
        if w is None or w.status not in ("queued", "broadcast"):
            self._refused(m.command_id, m.reply, RejectCode.WITHDRAWAL_WRONG_STATE
                          if w is not None else RejectCode.WITHDRAWAL_NOT_FOUND)
            return
        self.withdrawals[m.withdrawal_id] = replace(w, status="broadcast")
        self._change(m.reply, m.command_id, "withdrawal_sent", w, "broadcast", [],
                     tx_hash=m.tx_hash, nonce=m.nonce, raw_tx=m.raw_tx)

    def _done(self, m: WithdrawalDone) -> None:
        if not self._first_time(m.command_id, m.reply):
            return
        w = self.withdrawals.pop(m.withdrawal_id, None)
        # a queued one may fail (it could not be signed), never be confirmed
        if w is None or not (w.status == "broadcast" or (w.status == "queued"
                                                         and not m.confirmed)):
            if w is not None:
                self.withdrawals[m.withdrawal_id] = w
            self._refused(m.command_id, m.reply, RejectCode.WITHDRAWAL_WRONG_STATE
                          if w is not None else RejectCode.WITHDRAWAL_NOT_FOUND)
            return
        if m.confirmed:
            moved = self.clearing.complete_withdrawal(m.withdrawal_id, w.fee)
            status = "confirmed"
        else:
            moved = self.clearing.cancel_withdrawal(m.withdrawal_id)
            status = "failed"
        self._change(m.reply, m.command_id, "withdrawal_done", w, status, moved,
                     tx_hash=m.tx_hash, reason=m.reason)

    def _change(self, reply: Answerable, command_id: str, kind: str, w: OpenWithdrawal,
                status: str, moved: list[Any], *, tx_hash: str | None = None,
                nonce: int | None = None, raw_tx: str | None = None,
                reason: str | None = None) -> None:
        at = datetime.now(UTC)
        change = WithdrawalChange(uuid.UUID(w.id), status, tx_hash, at, nonce, raw_tx, reason)
        result = {"id": w.id, "status": status, "asset": w.asset, "amount": plain(w.amount),
                  "fee": plain(w.fee), "tx_hash": tx_hash}
        self._commit(reply, *withdrawal_update(command_id, kind, w.user_id, result, at,
                                               moved, withdrawals=(change,)))
