"""On-chain custody end to end: a started ``Exchange`` with a chain watcher, on the
in-process chain (eth-tester) and on a real JSON-RPC node (ganache), on SQLite and
PostgreSQL. Every scenario ends with exact balances and the ledger's soundness check
(in-memory invariants, the durable audit — conservation included — and the two agreeing).

Polls are driven by the test (``chain_sync``: poll now, wait for what it set off), so the
confirmation counts are exact, not timing-dependent.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from excentra.actors.bridge import Rejected
from excentra.engine import OrderType, RejectCode, Side
from excentra.ledger import FEE_ACCOUNT
from tests.actors.helpers import assert_sound, balance, new_user, ok
from tests.chain.custody import (
    CHAIN,
    CONFIRMATIONS,
    ETHER,
    Custody,
    credited_user,
    fund_hot_wallet,
)

D = Decimal
pytestmark = pytest.mark.asyncio


# -- deposits -------------------------------------------------------------------------------


async def test_a_deposit_is_credited_only_after_its_confirmations(custody: Custody) -> None:
    c = custody
    assert c.ex is not None
    user = await new_user(c.ex)
    address = await c.address(user)
    assert address == await c.address(user)  # stable
    await asyncio.to_thread(c.chain.send_eth, address, 2 * ETHER)
    await c.sync()
    for seen in range(1, CONFIRMATIONS):
        [row] = await c.deposits()
        assert (row["status"], row["confirmations"]) == ("pending", seen)
        assert await balance(c.ex.db, user, "ETH") == (0, 0)
        await c.sync(mine=1)
    [row] = await c.deposits()
    assert (row["status"], row["confirmations"], row["amount"]) == ("credited", 3, D(2))
    assert await balance(c.ex.db, user, "ETH") == (D(2), 0)
    await c.sync(mine=2)  # more confirmations credit nothing more
    assert await balance(c.ex.db, user, "ETH") == (D(2), 0)
    await assert_sound(c.ex)


async def test_eth_and_token_deposits_to_two_users_in_one_block(custody: Custody) -> None:
    c = custody
    assert c.ex is not None
    alice, bob = await new_user(c.ex), await new_user(c.ex)
    a_addr, b_addr = await c.address(alice), await c.address(bob)
    assert a_addr != b_addr
    second = c.chain.w3.eth.accounts[1]

    def send() -> None:
        with c.chain.one_block():
            c.chain.send_token(c.usdt, a_addr, 1_234_567_891)
            c.chain.send_eth(b_addr, ETHER // 4, sender=second)

    await asyncio.to_thread(send)
    await c.sync(mine=CONFIRMATIONS - 1)
    rows = await c.deposits()
    assert {(str(r["user_id"]), r["asset"], r["amount"], r["status"]) for r in rows} == {
        (alice, "USDT", D("1234.567891"), "credited"),
        (bob, "ETH", D("0.25"), "credited")}
    assert await balance(c.ex.db, alice, "USDT") == (D("1234.567891"), 0)
    assert await balance(c.ex.db, bob, "ETH") == (D("0.25"), 0)
    await assert_sound(c.ex)


async def test_dust_is_recorded_but_never_credited(custody: Custody) -> None:
    c = custody
    assert c.ex is not None
    user = await new_user(c.ex)
    address = await c.address(user)
    await asyncio.to_thread(c.chain.send_eth, address, ETHER // 10_000)  # 0.0001 < 0.001
    await asyncio.to_thread(c.chain.send_token, c.usdt, address, 999_999)  # 0.999999 < 1
    await c.sync(mine=CONFIRMATIONS + 1)
    assert {r["status"] for r in await c.deposits()} == {"ignored"}
    assert await balance(c.ex.db, user, "ETH") == (0, 0)
    assert await balance(c.ex.db, user, "USDT") == (0, 0)
    await assert_sound(c.ex)


async def test_no_double_credit_across_restarts(custody: Custody) -> None:
    c = custody
    user, address = await credited_user(c, eth="1")
    await asyncio.to_thread(c.chain.send_eth, address, ETHER // 2)
    await c.sync()  # seen, pending with one confirmation
    await c.stop()
    await asyncio.to_thread(c.chain.mine, 1)
    await asyncio.to_thread(c.chain.send_eth, address, ETHER // 4)  # while it is down
    ex = await c.start()
    await c.sync(mine=CONFIRMATIONS)
    await c.stop()
    ex = await c.start()  # a second restart: everything credited stays credited once
    await c.sync(mine=2)
    rows = await c.deposits()
    assert [(r["amount"], r["status"]) for r in rows] == [
        (D(1), "credited"), (D("0.5"), "credited"), (D("0.25"), "credited")]
    assert await balance(ex.db, user, "ETH") == (D("1.75"), 0)
    entries = await ex.db.fetch_val(
        "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'deposit' AND user_id = :u",
        {"u": uuid.UUID(user)})
    assert int(entries) == 3
    await assert_sound(ex)


async def test_a_reorg_before_the_confirmations_credits_nothing(custody: Custody) -> None:
    c = custody
    assert c.ex is not None
    user = await new_user(c.ex)
    address = await c.address(user)
    await c.sync(mine=1)
    snap = await asyncio.to_thread(c.chain.snapshot)
    await asyncio.to_thread(c.chain.send_eth, address, ETHER)
    await c.sync(mine=1)
    [row] = await c.deposits()
    assert (row["status"], row["confirmations"]) == ("pending", 2)
    await asyncio.to_thread(c.chain.revert, snap)  # the deposit's block is gone
    await asyncio.to_thread(c.chain.mine, 4)  # a longer branch without it
    await c.sync()
    await c.sync(mine=CONFIRMATIONS)
    [row] = await c.deposits()
    assert row["status"] == "orphaned"
    assert await balance(c.ex.db, user, "ETH") == (0, 0)
    status = c.ex.chain_status[CHAIN]
    assert status.reorgs == 1
    assert status.node_ok
    await assert_sound(c.ex)


# -- withdrawals ----------------------------------------------------------------------------


async def test_a_withdrawal_is_signed_mined_and_settled_with_its_fee_exact(
        custody: Custody) -> None:
    c = custody
    user, _ = await credited_user(c, eth="1", usdt="500")
    await fund_hot_wallet(c)
    await c.sync(mine=4)  # sweeps: the hot wallet holds the deposits
    destination = "0x" + "5e" * 20
    ex = c.ex
    assert ex is not None
    fees_before = (await balance(ex.db, FEE_ACCOUNT, "ETH"),
                   await balance(ex.db, FEE_ACCOUNT, "USDT"))
    eth = ok(await ex.chain_withdraw(user, "ETH", D("0.3"), destination))
    usdt = ok(await ex.chain_withdraw(user, "USDT", D("123.45"), destination))
    assert (eth["status"], D(eth["held"])) == ("queued", D("0.3005"))
    assert await balance(ex.db, user, "USDT") == (D("374.55"), D("125.45"))
    for _ in range(CONFIRMATIONS + 2):
        await c.sync(mine=1)
    w_eth, w_usdt = await c.withdrawal(eth["id"]), await c.withdrawal(usdt["id"])
    assert w_eth["status"] == w_usdt["status"] == "confirmed"
    assert {w_eth["nonce"], w_usdt["nonce"]} == {0, 1}
    w3 = c.chain.w3
    assert w3.eth.get_balance(w3.to_checksum_address(destination)) == 3 * ETHER // 10
    assert c.chain.token_balance(c.usdt, destination) == 123_450_000
    assert await balance(ex.db, user, "ETH") == (D("0.6995"), 0)
    assert await balance(ex.db, user, "USDT") == (D("374.55"), 0)
    assert await balance(ex.db, FEE_ACCOUNT, "ETH") == (fees_before[0][0] + D("0.0005"), 0)
    assert await balance(ex.db, FEE_ACCOUNT, "USDT") == (fees_before[1][0] + D(2), 0)
    await assert_sound(ex)


async def test_concurrent_withdrawals_get_distinct_nonces_and_all_confirm(
        custody: Custody) -> None:
    c = custody
    user, _ = await credited_user(c, eth="2")
    await fund_hot_wallet(c)
    await c.sync(mine=3)
    ex = c.ex
    assert ex is not None
    outcomes = await asyncio.gather(*(
        ex.chain_withdraw(user, "ETH", D("0.1"), "0x" + f"{i:02x}" * 20) for i in range(1, 6)))
    ids = [ok(o)["id"] for o in outcomes]
    for _ in range(CONFIRMATIONS + 6):
        await c.sync(mine=1)
    rows = [await c.withdrawal(i) for i in ids]
    assert {r["status"] for r in rows} == {"confirmed"}
    assert sorted(int(r["nonce"]) for r in rows) == [0, 1, 2, 3, 4]  # type: ignore[call-overload]
    assert await balance(ex.db, user, "ETH") == (D(2) - 5 * D("0.1005"), 0)
    await assert_sound(ex)


async def test_a_failed_transaction_releases_the_hold(custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user = await new_user(ex)
    ok(await ex.deposit(user, "USDT", D(100)))  # credited off-chain: the hot wallet has none
    await fund_hot_wallet(c)
    w = ok(await ex.chain_withdraw(user, "USDT", D(50), "0x" + "77" * 20))
    assert await balance(ex.db, user, "USDT") == (D(48), D(52))
    for _ in range(CONFIRMATIONS + 2):
        await c.sync(mine=1)
    row = await c.withdrawal(w["id"])
    assert row["status"] == "failed"
    assert "reverted" in str(row["reason"])
    assert row["tx_hash"] is not None
    assert await balance(ex.db, user, "USDT") == (D(100), 0)
    await assert_sound(ex)


async def test_refused_withdrawals_hold_nothing(custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user, _ = await credited_user(c, eth="0.1")
    to = "0x" + "88" * 20
    assert await ex.chain_withdraw(user, "ETH", D("0.005"), to) == Rejected(
        RejectCode.BELOW_MINIMUM)
    assert await ex.chain_withdraw(user, "ETH", D("0.1"), to) == Rejected(
        RejectCode.INSUFFICIENT_FUNDS)  # 0.1 + 0.0005 fee > 0.1
    assert await ex.chain_withdraw(user, "BTC", D(1), to) == Rejected(
        RejectCode.ASSET_NOT_FOUND)
    assert await balance(ex.db, user, "ETH") == (D("0.1"), 0)
    assert int(await ex.db.fetch_val("SELECT COUNT(*) FROM withdrawals")) == 0
    await assert_sound(ex)


async def test_above_the_limit_a_withdrawal_waits_for_an_admin(custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user, _ = await credited_user(c, eth="8")
    await c.sync(mine=3)  # swept: the hot wallet can pay
    big = ok(await ex.chain_withdraw(user, "ETH", D(6), "0x" + "99" * 20))
    small = ok(await ex.chain_withdraw(user, "ETH", D(1), "0x" + "98" * 20))
    assert (big["status"], small["status"]) == ("pending_approval", "queued")
    for _ in range(CONFIRMATIONS + 1):
        await c.sync(mine=1)
    assert (await c.withdrawal(big["id"]))["status"] == "pending_approval"
    assert (await c.withdrawal(small["id"]))["status"] == "confirmed"
    assert ok(await ex.review_withdrawal(big["id"], approve=True))["status"] == "queued"
    assert await ex.review_withdrawal(big["id"], approve=False) == Rejected(
        RejectCode.WITHDRAWAL_WRONG_STATE)
    for _ in range(CONFIRMATIONS + 1):
        await c.sync(mine=1)
    assert (await c.withdrawal(big["id"]))["status"] == "confirmed"
    assert await balance(ex.db, user, "ETH") == (D(8) - D("7.001"), 0)
    rejected = ok(await ex.chain_withdraw(user, "ETH", D("0.5"), "0x" + "97" * 20))
    assert rejected["status"] == "queued"  # under the limit: no admin
    await assert_sound(ex)


async def test_an_admin_rejection_releases_the_hold(custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user = await new_user(ex)
    ok(await ex.deposit(user, "ETH", D(10)))
    w = ok(await ex.chain_withdraw(user, "ETH", D(7), "0x" + "96" * 20))
    assert await balance(ex.db, user, "ETH") == (D("2.9995"), D("7.0005"))
    assert ok(await ex.review_withdrawal(w["id"], approve=False, reason="kyc"))[
        "status"] == "rejected"
    assert await balance(ex.db, user, "ETH") == (D(10), 0)
    await c.sync(mine=CONFIRMATIONS)
    assert (await c.withdrawal(w["id"]))["status"] == "rejected"
    assert await ex.review_withdrawal(str(uuid.uuid4()), approve=True) == Rejected(
        RejectCode.WITHDRAWAL_NOT_FOUND)
    await assert_sound(ex)


async def test_trading_goes_on_beside_custody(custody: Custody) -> None:
    """Deposits credited through the chain trade like any others."""
    c = custody
    ex = c.ex
    assert ex is not None
    seller, _ = await credited_user(c, eth="1")
    buyer, _ = await credited_user(c, usdt="5000")
    ok(await ex.place_order(seller, "ETH/USDT", Side.SELL, OrderType.LIMIT, price=D(2000),
                            quantity=D("0.5")))
    ok(await ex.place_order(buyer, "ETH/USDT", Side.BUY, OrderType.LIMIT, price=D(2000),
                            quantity=D("0.5")))
    assert (await balance(ex.db, buyer, "ETH"))[0] == D("0.5")
    await assert_sound(ex)


async def test_token_sweeps_fund_gas_from_the_hot_wallet_which_is_no_deposit(
        custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user, address = await credited_user(c, usdt="100")
    await fund_hot_wallet(c)
    for _ in range(3):
        await c.sync(mine=1)
    assert c.chain.token_balance(c.usdt, address) == 0
    assert c.chain.token_balance(c.usdt, c.wallet.hot_address) == 100 * 10 ** 6
    assert [r["asset"] for r in await c.deposits()] == ["USDT"]  # the gas is not one
    assert await balance(ex.db, user, "ETH") == (0, 0)
    sweeps = await ex.db.fetch_all("SELECT purpose, status FROM chain_transactions "
                                   "ORDER BY created_at")
    assert [(r["purpose"], r["status"]) for r in sweeps] == [("gas", "confirmed"),
                                                             ("sweep", "confirmed")]
    await assert_sound(ex)


async def test_a_credited_deposit_reorganised_away_is_marked_reversed_for_an_admin(
        custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user = await new_user(ex)
    address = await c.address(user)
    await c.sync(mine=1)
    snap = await asyncio.to_thread(c.chain.snapshot)
    await asyncio.to_thread(c.chain.send_eth, address, ETHER)
    await c.sync(mine=CONFIRMATIONS - 1)
    assert await balance(ex.db, user, "ETH") == (D(1), 0)  # credited
    await asyncio.to_thread(c.chain.revert, snap)  # a reorganisation deeper than that
    await asyncio.to_thread(c.chain.mine, CONFIRMATIONS + 3)
    await c.sync()
    await c.sync()
    [row] = await c.deposits()
    assert row["status"] == "reversed"
    assert await balance(ex.db, user, "ETH") == (D(1), 0)  # the credit stands ...
    kinds = [r["kind"] for r in await ex.db.fetch_all(
        "SELECT kind FROM commands WHERE user_id = :u ORDER BY created_at",
        {"u": uuid.UUID(user)})]
    assert kinds == ["chain_deposit", "deposit_reversed"]  # ... and the ledger recorded it
    await assert_sound(ex)


async def test_a_withdrawal_waits_queued_while_the_hot_wallet_cannot_pay(
        custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    user = await new_user(ex)
    ok(await ex.deposit(user, "ETH", D(3)))  # credited off-chain: the hot wallet is empty
    w = ok(await ex.chain_withdraw(user, "ETH", D(1), "0x" + "4d" * 20))
    for _ in range(3):
        await c.sync(mine=1)
    row = await c.withdrawal(w["id"])
    assert (row["status"], row["nonce"]) == ("queued", None)  # nothing signed, no nonce used
    status = ex.chain_status["ethereum"]
    assert status.node_ok
    assert "hot wallet" in str(status.last_error)
    await fund_hot_wallet(c, 2 * ETHER)
    for _ in range(CONFIRMATIONS + 1):
        await c.sync(mine=1)
    row = await c.withdrawal(w["id"])
    assert (row["status"], row["nonce"]) == ("confirmed", 0)
    assert await balance(ex.db, user, "ETH") == (D("1.9995"), 0)
    await assert_sound(ex)
