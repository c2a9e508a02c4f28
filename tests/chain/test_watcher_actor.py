"""ChainWatcherActor, alone: the exchange's eyes and hands on one chain.

Its peers are an in-process dev chain (eth-tester, one block per transaction), a real
database (SQLite and PostgreSQL) and the ledger, which here is a recording probe: the
test answers each command's ``reply`` (a ``Tell``) itself, as the ledger and the journal
would. Protocol (``auto_poll=False``: every look at the chain is a ``Poll`` sent here):

    Poll()
        deposits to our addresses ─► chain_deposits rows, ``pending`` (``ignored``: dust),
                                     with their confirmation counts
        a pending deposit with ``confirmations`` blocks
                                   ─► CreditDeposit("chain:<chain>:<tx>:<log index>",
                                      deposit id, user, asset, exact amount, ...) to the
                                      ledger, once while unanswered; sent again after a
                                      failure (same command id); never for dust
        processed blocks no longer canonical
                                   ─► their pending deposits ``orphaned`` (never credited);
                                      credited ones: ReverseDeposit to the ledger
        a queued withdrawal        ─► signed with the hot wallet's next nonce and
                                      WithdrawalSent to the ledger, one at a time, and
                                      broadcast only once the ledger answered success; a
                                      refused one frees its nonce for the next signing
        the node unreachable       ─► nothing sent; the watcher lives on; ``on_status``
                                      says ``node_ok=False`` with the error
    Sync(reply)  ─► reply ← how many commands still wait for the ledger's answer
    Answer(...)  ─► (what a ``Tell`` delivers) the ledger's outcome of a command

A restarted watcher resumes after the last block the database says it processed.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pykka
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound

from excentra.actors.bridge import Rejected, Reply, Unavailable
from excentra.actors.custody import (
    CreditDeposit,
    ReverseDeposit,
    WithdrawalDone,
    WithdrawalSent,
)
from excentra.chain.devchain import DevChain
from excentra.chain.node import Node, Transfer
from excentra.chain.settings import ChainSettings, Token
from excentra.chain.store import deposit_address
from excentra.chain.wallet import HDWallet
from excentra.chain.watcher import ChainStatus, ChainWatcherActor, Poll, Sync
from excentra.db import Database, migrate
from excentra.db.users import create_user
from excentra.engine import RejectCode
from tests.actors.probes import TIMEOUT, Deaths, Probe, stopped

pytestmark = pytest.mark.asyncio

D = Decimal
MNEMONIC = "test test test test test test test test test test test junk"
WALLET = HDWallet(MNEMONIC)
CHAIN = "ethereum"
CONFIRMATIONS = 3
DECIMALS = {"ETH": 18, "USDT": 6}
ETHER = 10**18
USDT = 10**6
USDT_MIN_DEPOSIT = D("1")
NODE_DOWN_TIMEOUT = 60.0
"""Seconds a poll against a dead node may take (web3 retries a refused connection with
backoff, a few seconds per poll)."""


class RecordingNode(Node):
    """A node that remembers which block ranges the watcher scanned."""

    def __init__(self, w3: Any, scans: list[tuple[int, int]]) -> None:
        super().__init__(w3)
        self.scans = scans

    def transfers(self, first: int, last: int, addresses: set[str],
                  tokens: Any) -> tuple[list[Transfer], dict[int, str]]:
        self.scans.append((first, last))
        return super().transfers(first, last, addresses, tokens)


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    url: str
    db: Database
    dev: DevChain
    token: str
    settings: ChainSettings
    ledger: Probe
    deaths: Deaths
    statuses: list[ChainStatus] = field(default_factory=list)
    watchers: list[pykka.ActorRef[Any]] = field(default_factory=list)

    async def start(self, node: Callable[[], Node] | None = None) -> pykka.ActorRef[Any]:
        """A started watcher (its setup done: database open, blocks loaded)."""
        started = Reply(self.loop)
        ref = ChainWatcherActor.start(
            self.settings, WALLET, self.ledger.ref, DECIMALS,
            node=node or (lambda: Node(self.dev.w3)), database_url=self.url,
            on_status=self.statuses.append, auto_poll=False, name=f"chain:{CHAIN}",
            on_death=self.deaths, started=started)
        self.watchers.append(ref)
        assert await started.wait(TIMEOUT) == f"chain:{CHAIN}"
        return ref

    async def sync(self, ref: pykka.ActorRef[Any], timeout: float = TIMEOUT) -> int:
        """Once every message sent to the watcher so far is handled, and everything it
        sent the ledger has arrived there: how many commands await an answer."""
        reply = Reply(self.loop)
        ref.tell(Sync(reply))
        in_flight: int = await reply.wait(timeout)
        await self.ledger.sync()
        return in_flight

    async def poll(self, ref: pykka.ActorRef[Any], timeout: float = TIMEOUT) -> int:
        ref.tell(Poll())
        return await self.sync(ref, timeout)

    async def user(self) -> tuple[str, str]:
        """A new user and their deposit address (lowercase)."""
        user_id = str(await create_user(self.db, f"u-{uuid.uuid4().hex[:12]}@test.example"))
        return user_id, await deposit_address(self.db, user_id, CHAIN, WALLET.address)

    async def deposits(self) -> list[dict[str, Any]]:
        rows = await self.db.fetch_all(
            "SELECT id, tx_hash, log_index, block_number, user_id, asset, amount, "
            "confirmations, status FROM chain_deposits ORDER BY block_number, log_index",
            types={"amount": Decimal})
        return [{**r, "id": str(r["id"]), "user_id": str(r["user_id"])} for r in rows]

    async def deposit(self, tx_hash: str) -> dict[str, Any]:
        [row] = [r for r in await self.deposits() if r["tx_hash"] == tx_hash]
        return row

    async def set_deposit_status(self, deposit_id: str, status: str) -> None:
        """What the journal writes with a committed credit (or reversal)."""
        await self.db.execute("UPDATE chain_deposits SET status = :s WHERE id = :id",
                              {"s": status, "id": uuid.UUID(deposit_id)})

    async def withdrawal(self, user_id: str, amount: Decimal, to: str,
                         created_at: datetime) -> str:
        """A queued ETH withdrawal (held and approved by the ledger, waiting to be sent)."""
        withdrawal_id = uuid.uuid4()
        await self.db.execute(
            "INSERT INTO withdrawals (id, user_id, asset, amount, fee, to_address, status, "
            "created_at, updated_at, chain) VALUES (:id, :u, 'ETH', :amount, :fee, :to, "
            "'queued', :at, :at, :c)",
            {"id": withdrawal_id, "u": uuid.UUID(user_id), "amount": amount,
             "fee": D("0.0005"), "to": to, "at": created_at, "c": CHAIN})
        return str(withdrawal_id)

    async def recorded_sent(self, m: WithdrawalSent) -> None:
        """What the journal writes with a committed WithdrawalSent."""
        await self.db.execute(
            "UPDATE withdrawals SET status = 'broadcast', nonce = :n, tx_hash = :h, "
            "raw_tx = :r, updated_at = :now WHERE id = :id",
            {"n": m.nonce, "h": m.tx_hash, "r": m.raw_tx, "now": datetime.now(UTC),
             "id": uuid.UUID(m.withdrawal_id)})


@pytest_asyncio.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    db = Database(database_url)
    await db.connect()
    await migrate(db)
    dev = DevChain()
    token = dev.deploy_token("Tether", "USDT", 6, 1_000_000 * USDT)
    settings = ChainSettings(name=CHAIN, confirmations=CONFIRMATIONS,
                             tokens=(Token("USDT", token, 6),),
                             min_deposit={"USDT": USDT_MIN_DEPOSIT}, sweep_interval=0)
    loop = asyncio.get_running_loop()
    r = Rig(loop, database_url, db, dev, token, settings, Probe(loop), Deaths(loop))
    try:
        yield r
        assert r.deaths.reported == [], "the watcher died"
    finally:
        await stopped(*r.watchers, r.ledger.ref)
        await db.disconnect()


def node_knows(dev: DevChain, tx_hash: str) -> bool:
    try:
        dev.w3.eth.get_transaction(HexBytes(tx_hash))
    except TransactionNotFound:
        return False
    return True


# -- deposits -------------------------------------------------------------------------------


async def test_a_deposit_is_pending_until_its_confirmations_then_credited_once(
        rig: Rig) -> None:
    user_id, address = await rig.user()
    watcher = await rig.start()
    await rig.poll(watcher)  # a fresh database starts at the head
    wei = 1_234_567_890_123_456_789
    tx = rig.dev.send_eth(address, wei)

    assert await rig.poll(watcher) == 0
    row = await rig.deposit(tx)
    assert (row["status"], row["confirmations"], row["log_index"]) == ("pending", 1, -1)
    assert (row["user_id"], row["asset"], row["amount"]) == (
        user_id, "ETH", D("1.234567890123456789"))

    rig.dev.mine(CONFIRMATIONS - 2)
    assert await rig.poll(watcher) == 0
    assert (await rig.deposit(tx))["confirmations"] == CONFIRMATIONS - 1
    assert rig.ledger.of(CreditDeposit) == []

    rig.dev.mine(1)
    assert await rig.poll(watcher) == 1
    [credit] = rig.ledger.of(CreditDeposit)
    assert credit.command_id == f"chain:{CHAIN}:{tx}:-1"
    assert credit.reply.command_id == credit.command_id
    assert (credit.deposit_id, credit.user_id, credit.asset) == (row["id"], user_id, "ETH")
    assert isinstance(credit.amount, Decimal)
    assert credit.amount == D("1.234567890123456789")
    assert credit.confirmations == CONFIRMATIONS
    row = await rig.deposit(tx)
    assert (row["status"], row["confirmations"]) == ("pending", CONFIRMATIONS)


async def test_a_credit_is_sent_again_only_after_it_failed_and_never_after_success(
        rig: Rig) -> None:
    _, address = await rig.user()
    watcher = await rig.start()
    await rig.poll(watcher)
    tx = rig.dev.send_eth(address, ETHER)
    rig.dev.mine(CONFIRMATIONS - 1)
    await rig.poll(watcher)
    first = await rig.ledger.next(CreditDeposit)

    assert await rig.poll(watcher) == 1  # unanswered: still on its way, not sent again
    assert len(rig.ledger.of(CreditDeposit)) == 1

    first.reply.fail(Unavailable("the ledger is being rebuilt"))
    assert await rig.sync(watcher) == 0
    assert await rig.poll(watcher) == 1
    second = await rig.ledger.next(CreditDeposit)
    assert (second.command_id, second.deposit_id) == (first.command_id, first.deposit_id)

    await rig.set_deposit_status(second.deposit_id, "credited")  # the journal's commit
    second.reply.resolve({"id": second.deposit_id, "status": "credited"})
    assert await rig.sync(watcher) == 0
    assert await rig.poll(watcher) == 0
    rig.dev.mine(2)
    assert await rig.poll(watcher) == 0
    assert len(rig.ledger.of(CreditDeposit)) == 2
    assert (await rig.deposit(tx))["status"] == "credited"
    assert rig.statuses[-1].credited == 1


async def test_token_deposits_to_our_addresses_only_and_dust_is_ignored(rig: Rig) -> None:
    user_id, address = await rig.user()
    stranger = WALLET.address(999)  # derivable, but no user was given it
    watcher = await rig.start()
    await rig.poll(watcher)
    paid = rig.dev.send_token(rig.token, address, 25_500_000)  # 25.5 USDT
    not_ours = rig.dev.send_token(rig.token, stranger, 7 * USDT)
    token_dust = rig.dev.send_token(rig.token, address, 500_000)  # 0.5 < the 1 USDT minimum
    eth_dust = rig.dev.send_eth(address, 10**13)  # 0.00001 < the 0.0001 ETH default

    await rig.poll(watcher)
    rows = {r["tx_hash"]: r for r in await rig.deposits()}
    assert set(rows) == {paid, token_dust, eth_dust}
    assert not_ours not in rows
    assert rows[paid]["log_index"] >= 0
    assert (rows[paid]["asset"], rows[paid]["amount"], rows[paid]["status"],
            rows[paid]["user_id"]) == ("USDT", D("25.5"), "pending", user_id)
    assert (rows[token_dust]["asset"], rows[token_dust]["amount"],
            rows[token_dust]["status"]) == ("USDT", D("0.5"), "ignored")
    assert (rows[eth_dust]["asset"], rows[eth_dust]["amount"],
            rows[eth_dust]["status"]) == ("ETH", D("0.00001"), "ignored")

    rig.dev.mine(CONFIRMATIONS)
    await rig.poll(watcher)
    await rig.poll(watcher)
    [credit] = rig.ledger.of(CreditDeposit)
    assert credit.command_id == f"chain:{CHAIN}:{paid}:{rows[paid]['log_index']}"
    assert (credit.deposit_id, credit.asset, credit.amount) == (
        rows[paid]["id"], "USDT", D("25.5"))
    for dust in (token_dust, eth_dust):
        assert (await rig.deposit(dust))["status"] == "ignored"


# -- restarts -------------------------------------------------------------------------------


async def test_a_restarted_watcher_resumes_after_the_last_processed_block(rig: Rig) -> None:
    user_id, address = await rig.user()
    first_watcher = await rig.start()
    await rig.poll(first_watcher)
    before = rig.dev.send_eth(address, ETHER)
    await rig.poll(first_watcher)
    processed = rig.dev.head()
    assert (await rig.deposit(before))["status"] == "pending"
    await stopped(first_watcher)

    during = rig.dev.send_eth(address, 2 * ETHER)  # while no watcher runs
    scans: list[tuple[int, int]] = []
    watcher = await rig.start(lambda: RecordingNode(rig.dev.w3, scans))
    await rig.poll(watcher)
    assert scans == [(processed + 1, rig.dev.head())]  # nothing rescanned, nothing missed
    rows = await rig.deposits()
    assert [r["tx_hash"] for r in rows] == [before, during]
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rig.ledger.of(CreditDeposit) == []

    rig.dev.mine(CONFIRMATIONS)
    assert await rig.poll(watcher) == 2
    credits = rig.ledger.of(CreditDeposit)
    assert [(c.command_id, c.deposit_id, c.user_id, c.amount) for c in credits] == [
        (f"chain:{CHAIN}:{before}:-1", rows[0]["id"], user_id, D(1)),
        (f"chain:{CHAIN}:{during}:-1", rows[1]["id"], user_id, D(2))]


async def test_a_credit_in_flight_when_the_watcher_stops_is_sent_again_by_the_next(
        rig: Rig) -> None:
    _, address = await rig.user()
    first_watcher = await rig.start()
    await rig.poll(first_watcher)
    rig.dev.send_eth(address, ETHER)
    rig.dev.mine(CONFIRMATIONS - 1)
    await rig.poll(first_watcher)
    lost = await rig.ledger.next(CreditDeposit)
    await stopped(first_watcher)  # never answered (the ledger answers a dead actor: dropped)

    watcher = await rig.start()
    assert await rig.poll(watcher) == 1
    again = await rig.ledger.next(CreditDeposit)
    assert (again.command_id, again.deposit_id) == (lost.command_id, lost.deposit_id)


# -- reorganisations ------------------------------------------------------------------------


async def test_a_pending_deposit_reorganised_away_is_orphaned_and_never_credited(
        rig: Rig) -> None:
    _, address = await rig.user()
    watcher = await rig.start()
    await rig.poll(watcher)
    fork = rig.dev.snapshot()
    tx = rig.dev.send_eth(address, ETHER)
    await rig.poll(watcher)
    assert ((await rig.deposit(tx))["status"], (await rig.deposit(tx))["confirmations"]) == (
        "pending", 1)
    old_head = rig.dev.head()

    rig.dev.revert(fork)
    rig.dev.mine(3)  # another branch, longer than the abandoned one
    assert rig.dev.head() > old_head
    await rig.poll(watcher)
    assert (await rig.deposit(tx))["status"] == "orphaned"
    assert rig.statuses[-1].reorgs == 1

    rig.dev.mine(CONFIRMATIONS + 1)
    await rig.poll(watcher)
    await rig.poll(watcher)
    assert (await rig.deposit(tx))["status"] == "orphaned"
    assert rig.ledger.of(CreditDeposit) == []
    assert rig.ledger.of(ReverseDeposit) == []


async def _credited_then_reorganised(rig: Rig) -> tuple[pykka.ActorRef[Any], CreditDeposit,
                                                         ReverseDeposit]:
    """A deposit credited (the ledger's success and the journal's row), whose block then
    leaves the chain: the watcher's ReverseDeposit."""
    _, address = await rig.user()
    watcher = await rig.start()
    await rig.poll(watcher)
    fork = rig.dev.snapshot()
    rig.dev.send_eth(address, ETHER)
    rig.dev.mine(CONFIRMATIONS - 1)
    await rig.poll(watcher)
    credit = await rig.ledger.next(CreditDeposit)
    await rig.set_deposit_status(credit.deposit_id, "credited")
    credit.reply.resolve({"id": credit.deposit_id, "status": "credited"})
    assert await rig.sync(watcher) == 0

    rig.dev.revert(fork)
    rig.dev.mine(CONFIRMATIONS + 2)
    await rig.poll(watcher)
    reverse = await rig.ledger.next(ReverseDeposit)
    return watcher, credit, reverse


async def test_a_credited_deposit_reorganised_away_is_reversed_through_the_ledger(
        rig: Rig) -> None:
    watcher, credit, reverse = await _credited_then_reorganised(rig)
    assert reverse.command_id == f"chain-reversed:{CHAIN}:{credit.deposit_id}"
    assert reverse.reply.command_id == reverse.command_id
    assert (reverse.deposit_id, reverse.user_id) == (credit.deposit_id, credit.user_id)
    [row] = await rig.deposits()
    assert row["status"] == "credited"  # the ledger's journal marks it reversed, not the watcher

    await rig.set_deposit_status(reverse.deposit_id, "reversed")
    reverse.reply.resolve({"id": reverse.deposit_id, "status": "reversed"})
    await rig.poll(watcher)
    await rig.poll(watcher)
    assert len(rig.ledger.of(ReverseDeposit)) == 1
    assert len(rig.ledger.of(CreditDeposit)) == 1


async def test_a_reversal_that_failed_is_sent_again(rig: Rig) -> None:
    watcher, _, reverse = await _credited_then_reorganised(rig)
    reverse.reply.fail(Unavailable("the ledger is being rebuilt"))
    await rig.sync(watcher)
    await rig.poll(watcher)
    rig.dev.mine(1)
    await rig.poll(watcher)
    await stopped(watcher)
    restarted = await rig.start()
    await rig.poll(restarted)
    assert [r.command_id for r in rig.ledger.of(ReverseDeposit)][:2] == [
        reverse.command_id] * 2


# -- withdrawals ----------------------------------------------------------------------------


async def test_withdrawals_are_signed_one_at_a_time_recorded_before_broadcast(
        rig: Rig) -> None:
    hot = Web3.to_checksum_address(WALLET.hot_address)
    rig.dev.send_eth(hot, 10 * ETHER)
    user_id, _ = await rig.user()
    to_first, to_second = WALLET.address(500), WALLET.address(501)
    now = datetime.now(UTC)
    first_id = await rig.withdrawal(user_id, D("0.5"), to_first, now)
    second_id = await rig.withdrawal(user_id, D("0.25"), to_second, now + timedelta(seconds=1))
    nonce = rig.dev.w3.eth.get_transaction_count(hot)
    watcher = await rig.start()

    assert await rig.poll(watcher) == 1
    [sent] = rig.ledger.of(WithdrawalSent)
    assert (sent.withdrawal_id, sent.nonce) == (first_id, nonce)
    assert sent.command_id == f"withdrawal-sent:{first_id}:{sent.tx_hash}"
    assert Account.recover_transaction(sent.raw_tx) == hot
    assert "0x" + keccak(HexBytes(sent.raw_tx)).hex() == sent.tx_hash
    signed = TypedTransaction.from_bytes(HexBytes(sent.raw_tx)).as_dict()
    assert signed["nonce"] == nonce
    assert HexBytes(signed["to"]) == HexBytes(to_first)
    assert signed["value"] == ETHER // 2
    assert signed["chainId"] == rig.dev.w3.eth.chain_id
    assert not node_knows(rig.dev, sent.tx_hash)  # recorded first, then broadcast

    assert await rig.poll(watcher) == 1  # the second waits for the first's record
    assert len(rig.ledger.of(WithdrawalSent)) == 1
    assert not node_knows(rig.dev, sent.tx_hash)

    await rig.recorded_sent(sent)
    sent.reply.resolve({"id": first_id, "status": "broadcast"})
    assert await rig.sync(watcher) == 0
    assert node_knows(rig.dev, sent.tx_hash)
    assert rig.dev.w3.eth.get_balance(Web3.to_checksum_address(to_first)) == ETHER // 2

    await rig.poll(watcher)
    [_, refused] = rig.ledger.of(WithdrawalSent)
    assert (refused.withdrawal_id, refused.nonce) == (second_id, nonce + 1)
    refused.reply.resolve(Rejected(RejectCode.WITHDRAWAL_WRONG_STATE))
    assert await rig.sync(watcher) == 0
    assert not node_knows(rig.dev, refused.tx_hash)

    await rig.poll(watcher)
    [_, _, again] = rig.ledger.of(WithdrawalSent)
    assert (again.withdrawal_id, again.nonce) == (second_id, nonce + 1)  # nothing skipped
    assert rig.dev.w3.eth.get_transaction_count(hot) == nonce + 1


async def test_a_broadcast_withdrawal_is_settled_once_it_has_its_confirmations(
        rig: Rig) -> None:
    rig.dev.send_eth(WALLET.hot_address, 10 * ETHER)
    user_id, _ = await rig.user()
    withdrawal_id = await rig.withdrawal(user_id, D("0.5"), WALLET.address(500),
                                         datetime.now(UTC))
    watcher = await rig.start()
    await rig.poll(watcher)
    sent = await rig.ledger.next(WithdrawalSent)
    await rig.recorded_sent(sent)
    sent.reply.resolve({"id": withdrawal_id, "status": "broadcast"})
    await rig.sync(watcher)

    rig.dev.mine(CONFIRMATIONS - 2)
    assert await rig.poll(watcher) == 0
    assert rig.ledger.of(WithdrawalDone) == []
    rig.dev.mine(1)
    assert await rig.poll(watcher) == 1
    done = await rig.ledger.next(WithdrawalDone)
    assert (done.command_id, done.withdrawal_id, done.confirmed, done.tx_hash,
            done.reason) == (f"withdrawal-done:{withdrawal_id}", withdrawal_id, True,
                             sent.tx_hash, None)
    assert await rig.poll(watcher) == 1  # unanswered: not sent again
    assert len(rig.ledger.of(WithdrawalDone)) == 1


async def test_a_refused_withdrawal_frees_its_nonce_and_sweeps_wait_for_its_record(
        rig: Rig) -> None:
    hot = Web3.to_checksum_address(WALLET.hot_address)
    rig.dev.send_eth(hot, 10 * ETHER)
    user_id, address = await rig.user()
    watcher = await rig.start()
    await rig.poll(watcher)
    rig.dev.send_token(rig.token, address, 25 * USDT)
    rig.dev.mine(CONFIRMATIONS - 1)
    await rig.poll(watcher)
    credit = await rig.ledger.next(CreditDeposit)
    await rig.set_deposit_status(credit.deposit_id, "credited")
    credit.reply.resolve({"id": credit.deposit_id, "status": "credited"})  # to be swept
    await rig.withdrawal(user_id, D("0.5"), WALLET.address(500), datetime.now(UTC))
    nonce = rig.dev.w3.eth.get_transaction_count(hot)

    async def gas_nonces() -> list[int]:
        rows = await rig.db.fetch_all(
            "SELECT nonce FROM chain_transactions WHERE purpose = 'gas' "
            "AND from_address = :a", {"a": hot.lower()})
        return [int(r["nonce"]) for r in rows]

    await rig.poll(watcher)  # signs the withdrawal; no sweep while its nonce is unrecorded
    refused = await rig.ledger.next(WithdrawalSent)
    assert refused.nonce == nonce
    assert await gas_nonces() == []
    refused.reply.resolve(Rejected(RejectCode.WITHDRAWAL_WRONG_STATE))
    await rig.sync(watcher)
    await rig.poll(watcher)
    again = await rig.ledger.next(WithdrawalSent)
    assert again.nonce == nonce  # nothing skipped
    assert await gas_nonces() == []
    await rig.recorded_sent(again)  # as the journal would
    again.reply.resolve({"id": again.withdrawal_id, "status": "broadcast"})
    await rig.sync(watcher)
    await rig.poll(watcher)  # now the sweep may fund its gas: the next nonce
    assert await gas_nonces() == [nonce + 1]


# -- the node -------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_dead_node_is_reported_and_survived_and_nothing_is_sent(rig: Rig) -> None:
    user_id, _ = await rig.user()
    await rig.withdrawal(user_id, D("0.5"), WALLET.address(500), datetime.now(UTC))
    url = f"http://127.0.0.1:{_closed_port()}"
    watcher = await rig.start(lambda: Node.connect(url))

    await rig.poll(watcher, NODE_DOWN_TIMEOUT)
    await rig.poll(watcher, NODE_DOWN_TIMEOUT)
    assert watcher.is_alive()
    assert rig.ledger.received == []
    assert [s.node_ok for s in rig.statuses] == [False, False]
    last = rig.statuses[-1]
    assert (last.polls, last.node_errors, last.chain) == (2, 2, CHAIN)
    assert last.last_error
    assert last.last_poll is None
    assert await rig.deposits() == []
