"""ChainWatcherActor: one per chain; the exchange's eyes and hands on Ethereum.

Each ``Poll`` (every ``poll_interval`` seconds, or sent by a test):

1. **Reorgs.** The hashes of the blocks it processed (``chain_blocks``) are compared with
   the node's, from the newest down; above the highest one that still matches, pending
   deposits become ``orphaned`` (never credited) and the blocks are scanned again (a
   deposit mined again on the new branch comes back). A *credited* deposit whose block is
   then not canonical is ``reversed`` through the ledger (the credit stands; an admin
   sees it).
2. **Scan.** New blocks up to the head (``max_blocks_per_poll`` at a time): native
   transfers into deposit addresses (successful transactions only) and the configured
   tokens' ``Transfer`` logs. Each becomes a ``pending`` deposit (``ignored`` below the
   asset's minimum), recorded in one transaction with the blocks: it resumes where the
   database says, after a restart or a ``kill -9``, and a rescan records nothing twice.
3. **Credit.** A pending deposit with ``confirmations`` blocks (its own included) is
   credited through the ledger, a journaled command (``CreditDeposit``) whose id is the
   chain event; the ledger refuses a second credit of one deposit.
4. **Withdrawals.** Queued ones get the hot wallet's next nonce, are signed (EIP-1559) and
   recorded through the ledger (``WithdrawalSent``) *before* the node sees them, one at a
   time, so nonces are never skipped or used twice (a restart re-sends what was recorded).
   Broadcast ones are followed: confirmed after ``confirmations`` blocks (the fee stays
   with the exchange), failed if the transaction reverted or its nonce went to another
   (the hold is released); one the node lost is re-sent, and one waiting longer than
   ``replace_after`` is replaced with the same nonce and higher fees.
5. **Sweeps** (``excentra.chain.sweep``): deposit addresses' funds move to the hot wallet,
   in rounds at most every ``sweep_interval``, once the scan has caught up.

All node calls happen on this actor's thread (``Node`` is synchronous): a slow or dead
node delays deposits and withdrawals, nothing else. Its state is reported through
``on_status`` (``/health``, ``/metrics``) after every poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pykka

from excentra.actors.bridge import Answer, Rejected, Tell
from excentra.actors.custody import (
    CreditDeposit,
    ReverseDeposit,
    WithdrawalDone,
    WithdrawalSent,
)
from excentra.actors.supervised import Supervised, close_loop
from excentra.actors.watermarks import Watermarks
from excentra.chain.node import Node, NodeError, TransactionRefused, Transfer
from excentra.chain.settings import ETH, ETH_TRANSFER_GAS, ChainSettings
from excentra.chain.store import ChainStore, ChainWithdrawal, SeenDeposit
from excentra.chain.sweep import Sweeper
from excentra.chain.wallet import HDWallet
from excentra.db import Database
from excentra.engine import RejectCode
from excentra.engine.precision import plain

PROJECTION_WAIT = 10.0
"""Seconds a poll waits for the tables to show every acknowledged command (then skips)."""

log = logging.getLogger("excentra.chain")

FEE_BUMP = Decimal("1.25")
"""A replacement must pay at least 10 % more (geth's rule); 25 % leaves room."""


@dataclass(frozen=True, slots=True)
class Poll:
    """Look at the chain once (the actor sends itself one every ``poll_interval``)."""


@dataclass(frozen=True, slots=True)
class Sync:
    """Answer ``reply`` with the number of commands still on their way to the ledger
    (credits, sends, settlements), once every message before this one is handled: how a
    test or the demo waits for a poll's consequences."""

    reply: Any


@dataclass
class ChainStatus:
    """What ``/health`` and ``/metrics`` show of a chain."""

    chain: str
    node_ok: bool = False
    head: int | None = None
    processed: int | None = None
    """The newest block scanned."""
    pending_deposits: int = 0
    queued_withdrawals: int = 0
    last_error: str | None = None
    last_poll: float | None = None
    """``time.time()`` of the last poll that reached the node."""
    polls: int = 0
    node_errors: int = 0
    credited: int = 0
    reorgs: int = 0


@dataclass
class _Sending:
    """The one withdrawal whose signed transaction waits for the ledger's record."""

    withdrawal_id: str
    nonce: int
    tx_hash: str
    raw_tx: str


@dataclass
class _Pending:
    crediting: dict[str, str] = field(default_factory=dict)
    """Deposits whose credit is on its way: id → deposit address."""
    settling: set[str] = field(default_factory=set)
    reversing: set[str] = field(default_factory=set)
    sending: _Sending | None = None


def units_to_amount(units: int, chain_decimals: int, ledger_decimals: int) -> Decimal:
    """A chain amount as the ledger credits it: rounded down to the asset's decimals (what
    is finer stays with the exchange; crediting more than arrived is never an option)."""
    exact = Decimal(units).scaleb(-chain_decimals)
    return exact.quantize(Decimal(1).scaleb(-ledger_decimals), rounding=ROUND_DOWN)


def amount_to_units(amount: Decimal, chain_decimals: int) -> int:
    units = amount.scaleb(chain_decimals)
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more decimals than the chain's {chain_decimals}")
    return int(units)


class ChainWatcherActor(Supervised):
    def __init__(self, settings: ChainSettings, wallet: HDWallet,
                 ledger: pykka.ActorRef[Any], decimals: dict[str, int], *,
                 node: Callable[[], Node], database_url: str | None,
                 on_status: Callable[[ChainStatus], None] | None = None,
                 on_deposit: Callable[[str, dict[str, Any]], None] | None = None,
                 auto_poll: bool = True,
                 watermarks: Watermarks | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.watermarks = watermarks
        """The event log's and the tables' positions: a poll reads the tables (deposits
        pending, withdrawals to send, nonces) only once they show every command
        acknowledged before it, its own credits and sends included."""
        self.settings = settings
        self.wallet = wallet
        self.ledger = ledger
        self.decimals = dict(decimals)
        """The ledger's decimals per asset (what a credit is rounded to)."""
        self._make_node = node
        self._database_url = database_url
        self.on_status = on_status
        self.on_deposit = on_deposit
        """Told ``(user id, deposit)`` of what only the watcher knows: a deposit seen, its
        confirmations rising, its block gone (credits and reversals are journaled and
        reach the user through the committed batches instead)."""
        self.auto_poll = auto_poll
        self.status = ChainStatus(settings.name)
        self.tokens = {t.contract.lower(): t for t in settings.tokens}
        self.addresses: dict[str, str] = {}
        """Deposit address (lowercase) → user id."""
        self._last_index = 0
        self.blocks: dict[int, str] = {}
        self.pending = _Pending()
        self.next_nonce: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db: Database | None = None
        self.store: ChainStore | None = None
        self.node: Node | None = None
        self.sweeper: Sweeper | None = None
        self._timer: threading.Timer | None = None
        self._swept = -math.inf
        """``time.monotonic()`` of the last sweeping round."""

    # -- lifecycle -----------------------------------------------------------------------

    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(self._database_url)
        self.store = ChainStore(self.db, self.settings.name)
        self._run(self.db.connect())
        self.blocks = self._run(self.store.blocks())
        self.node = self._make_node()
        self.sweeper = Sweeper(self.settings, self.wallet, self.node, self.store, self._run,
                               self._take_nonce)
        self.sweeper.dirty |= self._run(self.store.credited_addresses())
        self.status.processed = max(self.blocks) if self.blocks else None
        log.info("chain watcher started", extra={
            "chain": self.settings.name, "hot_wallet": self.wallet.hot_address,
            "processed": max(self.blocks) if self.blocks else None,
            "confirmations": self.settings.confirmations,
            "assets": list(self.settings.assets)})
        if self.auto_poll:
            self.actor_ref.tell(Poll())

    def teardown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        connected = self.db is not None and self.db.is_connected
        close_loop(self.loop, self.db.disconnect() if connected and self.db else None)

    def _run(self, coro: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    def handle(self, message: Any) -> None:
        match message:
            case Poll():
                try:
                    self._poll()
                finally:
                    self._report()
                    if self.auto_poll:
                        self._schedule()
            case Answer():
                self._answered(message)
            case Sync():
                p = self.pending
                message.reply.resolve(len(p.crediting) + len(p.settling)
                                      + (p.sending is not None))
            case _:
                raise TypeError(f"ChainWatcherActor: unexpected {message!r}")

    def _schedule(self) -> None:
        ref = self.actor_ref

        def poll() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Poll())

        self._timer = threading.Timer(self.settings.poll_interval, poll)
        self._timer.daemon = True
        self._timer.start()

    def _tell_user(self, user_id: str, deposit: dict[str, Any]) -> None:
        if self.on_deposit is not None:
            self.on_deposit(user_id, deposit)

    def _report(self) -> None:
        if self.on_status is not None:
            self.on_status(dataclasses.replace(self.status))

    # -- one poll ------------------------------------------------------------------------

    def _poll(self) -> None:
        assert self.node is not None
        assert self.store is not None
        self.status.polls += 1
        self.status.last_error = None  # what goes wrong in this poll sets it
        wm = self.watermarks
        if wm is not None and not wm.wait_projected(wm.logged, PROJECTION_WAIT):
            # Acting on tables that lack an acknowledged send or credit could send a
            # withdrawal twice or reuse a nonce: this poll waits for the next.
            self.status.last_error = "the tables lag the event log; poll skipped"
            log.warning("chain poll skipped: the projection is behind",
                        extra={"chain": self.settings.name, "logged": wm.logged,
                               "projected": wm.projected})
            return
        try:
            self._refresh_addresses()
            head = self.node.head()
            self.status.head = head
            self._check_reorg(head)
            self._scan(head)
            self._check_reversals()
            self._confirm(head)
            self._follow_withdrawals(head)
            self._sweep(head)
        except NodeError as exc:
            self.status.node_ok = False
            self.status.node_errors += 1
            self.status.last_error = str(exc)[:300]
            log.warning("chain node unavailable; deposits and withdrawals wait",
                        extra={"chain": self.settings.name, "error": str(exc)[:300]})
            return
        except TransactionRefused as exc:  # the node is up; the poll's last step stops
            self.status.last_error = str(exc)[:300]
            log.warning("the node refused a transaction",
                        extra={"chain": self.settings.name, "error": str(exc)[:300]})
        self.status.node_ok = True
        self.status.last_poll = time.time()

    def _sweep(self, head: int) -> None:
        """A sweeping round, if due: once caught up with the chain (catching up comes
        first), at most every ``sweep_interval``, and never while a withdrawal's nonce
        waits for the ledger's record (sweeps may take hot-wallet nonces: were that record
        refused, its nonce is handed out again)."""
        now = time.monotonic()
        if (self.sweeper is None or self.pending.sending is not None
                or self.status.processed != head
                or now - self._swept < self.settings.sweep_interval):
            return
        self._swept = now
        self.sweeper.run(head)

    def _refresh_addresses(self) -> None:
        assert self.store is not None
        for address, user_id, index in self._run(self.store.addresses(self._last_index)):
            self.addresses[address] = user_id
            self._last_index = max(self._last_index, index)
            if self.sweeper is not None:
                self.sweeper.indexes[address] = index

    def _check_reorg(self, head: int) -> None:
        """Walk down from the newest processed block while the node disagrees."""
        assert self.node is not None
        assert self.store is not None
        if not self.blocks:
            return
        top = max(self.blocks)
        n = min(top, head)
        while n in self.blocks and self.node.block_hash(n) != self.blocks[n]:
            n -= 1
        if n == top:
            return
        fork = n
        for deposit_id, user_id, tx_hash in self._run(self.store.rewind(fork)):
            self._tell_user(user_id, {"id": deposit_id, "status": "orphaned",
                                      "tx_hash": tx_hash})
        self.blocks = {k: v for k, v in self.blocks.items() if k <= fork}
        self.status.reorgs += 1
        log.warning("chain reorganisation: blocks above the fork are rescanned",
                    extra={"chain": self.settings.name, "fork_block": fork,
                           "dropped_blocks": top - fork})

    def _check_reversals(self) -> None:
        """Credited deposits whose block is no longer canonical — read from the database
        after the rescan, so a transaction mined again on the new branch (its row moved
        to its new block) stands, and a reversal the ledger did not record is found again
        by the next poll (or the next watcher)."""
        assert self.store is not None
        if not self.blocks:
            return
        for deposit_id, user_id, number, block_hash in self._run(
                self.store.credited_since(min(self.blocks))):
            canonical = self.blocks.get(number)
            if canonical is None or canonical == block_hash or (
                    deposit_id in self.pending.reversing):
                continue
            log.error("a credited deposit left the chain; an admin must act",
                      extra={"chain": self.settings.name, "deposit_id": deposit_id,
                             "block": number})
            self.pending.reversing.add(deposit_id)
            command_id = f"chain-reversed:{self.settings.name}:{deposit_id}"
            self.ledger.tell(ReverseDeposit(command_id, deposit_id, user_id,
                                            Tell(self.actor_ref, ("reverse", deposit_id),
                                                 command_id)))

    def _scan(self, head: int) -> None:
        assert self.node is not None
        assert self.store is not None
        if self.blocks:
            first = max(self.blocks) + 1
        elif self.settings.start_block is not None:
            first = self.settings.start_block
        else:
            first = head  # a fresh database: from now on
        last = min(head, first + self.settings.max_blocks_per_poll - 1)
        if first > last:
            return
        transfers, hashes = self.node.transfers(first, last, set(self.addresses),
                                                [t.contract for t in self.tokens.values()])
        hot = self.wallet.hot_address.lower()
        # The hot wallet's own transfers into deposit addresses (gas for sweeping tokens)
        # are the exchange's money moving, not deposits.
        seen = [d for d in map(self._deposit, (t for t in transfers if t.sender != hot))
                if d is not None]
        self._run(self.store.processed(hashes, seen))
        self.blocks.update(hashes)
        for old in [n for n in self.blocks if n < last - 256]:
            del self.blocks[old]
        self.status.processed = last
        if seen:
            log.info("deposits seen", extra={"chain": self.settings.name, "count": len(seen),
                                             "blocks": f"{first}-{last}"})
        if last < head:
            log.info("catching up with the chain", extra={
                "chain": self.settings.name, "processed": last, "head": head})

    def _deposit(self, t: Transfer) -> SeenDeposit | None:
        asset = ETH if t.token is None else self.tokens[t.token.lower()].symbol
        chain_decimals = self.settings.chain_decimals(asset)
        if asset not in self.decimals:
            log.error("deposit of an asset the exchange does not list",
                      extra={"asset": asset, "tx_hash": t.tx_hash})
            return None
        amount = units_to_amount(t.value, chain_decimals, self.decimals[asset])
        exact = Decimal(t.value).scaleb(-chain_decimals)
        dust = exact < self.settings.min_deposit.get(asset, Decimal(0)) or amount == 0
        return SeenDeposit(t.tx_hash, t.log_index, t.block_number, t.block_hash, t.to,
                           self.addresses[t.to], asset, exact if amount == 0 else amount,
                           "ignored" if dust else "pending")

    def _confirm(self, head: int) -> None:
        assert self.store is not None
        pending = self._run(self.store.pending())
        self.status.pending_deposits = len(pending)
        counts: dict[str, int] = {}
        for d in pending:
            confirmations = max(0, head - d.block_number + 1)
            if confirmations != d.confirmations:
                counts[d.id] = confirmations
                self._tell_user(d.user_id, {
                    "id": d.id, "asset": d.asset, "amount": plain(d.amount),
                    "status": "pending", "confirmations": confirmations,
                    "required_confirmations": self.settings.confirmations,
                    "tx_hash": d.tx_hash, "log_index": d.log_index})
            if confirmations < self.settings.confirmations or d.id in self.pending.crediting:
                continue
            command_id = f"chain:{self.settings.name}:{d.tx_hash}:{d.log_index}"
            self.pending.crediting[d.id] = d.address
            self.ledger.tell(CreditDeposit(command_id, d.id, d.user_id, d.asset, d.amount,
                                           confirmations,
                                           Tell(self.actor_ref, ("credit", d.id), command_id)))
        self._run(self.store.confirmations(counts))

    # -- withdrawals ---------------------------------------------------------------------

    def _take_nonce(self) -> int:
        """The hot wallet's next nonce: after everything recorded and everything the node
        knows (recorded first: a recorded transaction the node lost is re-sent, its nonce
        is not handed out again)."""
        assert self.node is not None
        assert self.store is not None
        if self.next_nonce is None:
            hot = self.wallet.hot_address
            recorded = self._run(self.store.last_nonce(hot))
            self.next_nonce = max(self.node.nonce(hot),
                                  0 if recorded is None else recorded + 1)
        nonce = self.next_nonce
        self.next_nonce += 1
        return nonce

    def _follow_withdrawals(self, head: int) -> None:
        assert self.store is not None
        rows: list[ChainWithdrawal] = self._run(self.store.withdrawals())
        self.status.queued_withdrawals = sum(1 for w in rows if w.status == "queued")
        for w in rows:
            if w.status == "broadcast" and w.id not in self.pending.settling:
                self._follow(w, head)
        if self.pending.sending is None:
            queued = [w for w in rows if w.status == "queued"
                      and w.id not in self.pending.settling]
            if queued:
                try:
                    self._sign(queued[0])
                except NodeError:
                    raise
                except Exception as exc:  # this withdrawal cannot be sent: fail it alone
                    log.exception("withdrawal cannot be signed; failed",
                                  extra={"withdrawal_id": queued[0].id})
                    self.next_nonce = None  # the nonce taken was not used
                    self._settle(queued[0], False, None, f"cannot be signed: {exc}"[:200])

    def _sign(self, w: ChainWithdrawal, nonce: int | None = None,
              replacing: str | None = None) -> None:
        """Sign ``w``'s transaction and have the ledger record it (sent on its answer).
        A replacement (``replacing``: the signed transaction it replaces) pays at least
        ``FEE_BUMP`` times the old fees, as nodes require to accept it."""
        assert self.node is not None
        max_fee, tip = self.node.fees()
        if replacing is not None:
            old_max, old_tip = Node.fees_of(replacing)
            tip = max(tip, int(old_tip * FEE_BUMP) + 1)
            max_fee = max(max_fee, int(old_max * FEE_BUMP) + 1, tip)
        tx: dict[str, Any] = {"chainId": self.node.chain_id(), "type": 2,
                              "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
        token = self.settings.token(w.asset)
        units = amount_to_units(w.amount, self.settings.chain_decimals(w.asset))
        if token is None:
            tx |= {"to": w.to_address, "value": units, "gas": ETH_TRANSFER_GAS}
        else:
            tx |= {"to": token.contract, "value": 0, "gas": self.settings.gas_limit_token,
                   "data": self.node.token_call_data(token.contract, w.to_address, units)}
        needed = tx["value"] + tx["gas"] * max_fee
        if replacing is None and self.node.balance(self.wallet.hot_address) < needed:
            # Not signed, no nonce taken: it waits, queued, until the hot wallet is refilled
            # (a transaction the node refuses would hold up every later nonce).
            self.status.last_error = (f"hot wallet cannot pay withdrawal {w.id}: needs "
                                      f"{needed} wei")
            log.warning("hot wallet short of ETH; withdrawals wait",
                        extra={"withdrawal_id": w.id, "needed_wei": needed})
            return
        nonce = self._take_nonce() if nonce is None else nonce
        tx["nonce"] = nonce
        tx_hash, raw = self.node.sign(self.wallet.hot_account(), tx)
        self.pending.sending = _Sending(w.id, nonce, tx_hash, raw)
        command_id = f"withdrawal-sent:{w.id}:{tx_hash}"
        self.ledger.tell(WithdrawalSent(command_id, w.id, nonce, tx_hash, raw,
                                        Tell(self.actor_ref, ("sent", w.id), command_id)))
        log.info("withdrawal signed", extra={"withdrawal_id": w.id, "nonce": nonce,
                                              "tx_hash": tx_hash,
                                              "replacement": replacing is not None})

    def _follow(self, w: ChainWithdrawal, head: int) -> None:
        assert self.node is not None
        assert self.store is not None
        assert w.tx_hash is not None
        assert w.nonce is not None
        receipt = self.node.receipt(w.tx_hash)
        if receipt is None:  # perhaps an earlier (replaced) transaction was mined instead
            for other in self._run(self.store.sent_hashes(w.id)):
                if other != w.tx_hash:
                    receipt = self.node.receipt(other) or receipt
        if receipt is not None:
            if head - receipt.block_number + 1 >= self.settings.confirmations:
                self._settle(w, receipt.ok, w.tx_hash,
                             None if receipt.ok else "the transaction reverted")
            return
        if self.node.nonce(self.wallet.hot_address, pending=False) > w.nonce:
            self._settle(w, False, w.tx_hash, "dropped: its nonce was used by another "
                                              "transaction")
            return
        if not self.node.known(w.tx_hash):
            assert w.raw_tx is not None
            log.warning("withdrawal transaction unknown to the node; sent again",
                        extra={"withdrawal_id": w.id, "tx_hash": w.tx_hash})
            self.node.send_raw(w.raw_tx)
            return
        waited = (datetime.now(UTC) - _aware(w.updated_at)).total_seconds()
        if waited > self.settings.replace_after and self.pending.sending is None:
            assert w.raw_tx is not None
            self._sign(w, nonce=w.nonce, replacing=w.raw_tx)

    def _settle(self, w: ChainWithdrawal, ok: bool, tx_hash: str | None,
                reason: str | None) -> None:
        command_id = f"withdrawal-done:{w.id}"
        self.pending.settling.add(w.id)
        self.ledger.tell(WithdrawalDone(command_id, w.id, ok, tx_hash, reason,
                                        Tell(self.actor_ref, ("done", w.id), command_id)))

    # -- answers from the ledger ---------------------------------------------------------

    def _answered(self, a: Answer) -> None:
        kind, key = a.tag
        failed = isinstance(a.value, BaseException)  # Unavailable, or another failure
        refused = isinstance(a.value, Rejected)
        if kind == "credit":
            address = self.pending.crediting.pop(key, None)
            if not failed and not refused:
                self.status.credited += 1
                if self.sweeper is not None and address is not None:
                    self.sweeper.dirty.add(address)
            elif refused and a.value.code is not RejectCode.ALREADY_EXISTS:
                log.error("deposit credit refused", extra={"deposit_id": key,
                                                           "code": a.value.code.value})
        elif kind == "sent":
            sending, self.pending.sending = self.pending.sending, None
            if sending is None or sending.withdrawal_id != key:
                return
            if failed or refused:  # not recorded: its nonce was not used
                self.next_nonce = None
                log.warning("withdrawal not recorded; will sign again",
                            extra={"withdrawal_id": key, "answer": repr(a.value)})
                return
            try:
                assert self.node is not None
                self.node.send_raw(sending.raw_tx)
            except (NodeError, TransactionRefused) as exc:  # recorded: re-sent by a poll
                log.warning("withdrawal broadcast failed; will retry",
                            extra={"withdrawal_id": key, "error": str(exc)[:300]})
            if self.auto_poll:
                self.actor_ref.tell(Poll())  # the next queued one
        elif kind == "done":
            self.pending.settling.discard(key)
        elif kind == "reverse":
            self.pending.reversing.discard(key)  # recorded, or found again next poll
            if failed or refused:
                log.error("reversed deposit not recorded; will retry",
                          extra={"deposit_id": key, "answer": repr(a.value)})


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
