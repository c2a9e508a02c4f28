"""Custody when things fail: the node goes away (deposits wait, trading does not notice,
everything resumes when it returns), and the watcher dies in the middle of a credit (it
is restarted alone, and the deposit is credited exactly once)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from excentra.chain.node import Node
from excentra.chain.wallet import HDWallet
from excentra.chain.watcher import Poll
from excentra.engine import OrderType, Side
from tests.actors.helpers import assert_sound, balance, new_user, ok
from tests.chain.custody import (
    CHAIN,
    CONFIRMATIONS,
    ETHER,
    MNEMONIC,
    Custody,
    credited_user,
    custody_settings,
)
from tests.chain.nodes import AnvilHarness, GanacheHarness
from tests.live import Switch

D = Decimal
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def behind_switch(ganache: GanacheHarness,
                        database_url: str) -> AsyncIterator[tuple[Custody, Switch]]:
    """An exchange whose watcher reaches the node through a switch the test can open."""
    switch = Switch(ganache_server_url(ganache))
    usdt = await asyncio.to_thread(ganache.deploy_token, "Tether", "USDT", 6, 10 ** 15)
    c = Custody(ganache, usdt, database_url, HDWallet(MNEMONIC),
                custody_settings(ganache, usdt), lambda: Node.connect(switch.url))
    await c.start()
    try:
        yield c, switch
    finally:
        await c.stop()
        switch.down()


def ganache_server_url(harness: GanacheHarness) -> str:
    assert harness.url is not None
    return harness.url


@pytest.mark.ganache
async def test_node_down_deposits_wait_trading_goes_on_and_it_recovers(
        behind_switch: tuple[Custody, Switch]) -> None:
    c, switch = behind_switch
    ex = c.ex
    assert ex is not None
    seller, address = await credited_user(c, eth="1")
    buyer = await new_user(ex)
    ok(await ex.deposit(buyer, "USDT", D(3000)))

    switch.down()
    await asyncio.to_thread(c.chain.send_eth, address, ETHER // 2)  # straight to the node
    for _ in range(CONFIRMATIONS + 1):
        await c.sync(mine=1)
    status = ex.chain_status[CHAIN]
    assert not status.node_ok
    assert status.last_error
    assert status.node_errors >= CONFIRMATIONS + 1
    assert await balance(ex.db, seller, "ETH") == (D(1), 0)  # waits
    # trading does not notice
    ok(await ex.place_order(seller, "ETH/USDT", Side.SELL, OrderType.LIMIT, price=D(2000),
                            quantity=D("0.5")))
    ok(await ex.place_order(buyer, "ETH/USDT", Side.BUY, OrderType.LIMIT, price=D(2000),
                            quantity=D("0.5")))
    assert await balance(ex.db, buyer, "ETH") == (D("0.5"), 0)

    switch.up()
    await c.sync()
    assert ex.chain_status[CHAIN].node_ok
    assert await balance(ex.db, seller, "ETH") == (D(1), 0)  # 1 - 0.5 sold + 0.5 deposit
    await assert_sound(ex)


async def test_a_watcher_killed_mid_credit_credits_exactly_once(custody: Custody) -> None:
    c = custody
    ex = c.ex
    assert ex is not None
    assert ex.supervisor is not None
    user = await new_user(ex)
    address = await c.address(user)
    await asyncio.to_thread(c.chain.send_eth, address, 3 * ETHER)
    await c.sync(mine=CONFIRMATIONS - 2)  # one confirmation short
    assert await balance(ex.db, user, "ETH") == (0, 0)
    await asyncio.to_thread(c.chain.mine, 1)
    watcher = ex.supervisor.actors.watchers[CHAIN]  # type: ignore[union-attr]
    await ex.chain_sync(CHAIN, poll=False)
    watcher.tell(Poll())  # sends the credit ...
    watcher.tell("die")  # ... and dies before its answer can arrive (a bug's TypeError)
    for _ in range(200):
        await asyncio.sleep(0.02)
        current = ex.supervisor.actors.watchers[CHAIN]  # type: ignore[union-attr]
        if current is not watcher and current.is_alive():
            break
    assert ex.supervisor.watcher_restarts == 1
    await c.sync()  # the new watcher sees it pending (or credited) and credits at most once
    await c.sync(mine=1)
    assert await balance(ex.db, user, "ETH") == (D(3), 0)
    rows = await c.deposits()
    assert [(r["status"], r["amount"]) for r in rows] == [("credited", D(3))]
    await assert_sound(ex)


@pytest.mark.ganache
async def test_a_stuck_withdrawal_is_replaced_with_the_same_nonce_and_paid_once(
        anvil: AnvilHarness, database_url: str) -> None:
    """On anvil: ganache would mine the original and its replacement both (see Anvil)."""
    ganache = anvil
    usdt = await asyncio.to_thread(ganache.deploy_token, "Tether", "USDT", 6, 10 ** 15)
    settings = dataclasses.replace(custody_settings(ganache, usdt), replace_after=0.2)
    c = Custody(ganache, usdt, database_url, HDWallet(MNEMONIC), settings,
                lambda: Node.connect(ganache_server_url(ganache)))
    ex = await c.start()
    try:
        user, _ = await credited_user(c, eth="1")
        await c.sync(mine=2)  # swept into the hot wallet
        ganache.stop_mining()
        destination = "0x" + "3c" * 20
        w = ok(await ex.chain_withdraw(user, "ETH", D("0.25"), destination))
        await c.sync()  # signed, recorded, sent: waits in the node's pool
        first = await c.withdrawal(w["id"])
        assert first["status"] == "broadcast"
        await asyncio.sleep(0.3)
        await c.sync()  # stuck: replaced
        second = await c.withdrawal(w["id"])
        assert second["status"] == "broadcast"
        assert second["nonce"] == first["nonce"]
        assert second["tx_hash"] != first["tx_hash"]
        old_fee = Node.fees_of(str(first["raw_tx"]))
        new_fee = Node.fees_of(str(second["raw_tx"]))
        assert new_fee[0] >= old_fee[0] * 1.25
        assert new_fee[1] >= old_fee[1] * 1.25
        ganache.start_mining()
        for _ in range(CONFIRMATIONS + 1):
            await c.sync(mine=1)
        done = await c.withdrawal(w["id"])
        assert done["status"] == "confirmed"
        w3 = ganache.w3
        assert w3.eth.get_balance(w3.to_checksum_address(destination)) == ETHER // 4  # once
        assert await balance(ex.db, user, "ETH") == (D("0.7495"), 0)
        await assert_sound(ex)
    finally:
        ganache.start_mining()
        await c.stop()
