"""Helpers of the custody tests: an exchange watching a dev chain, restartable on the
same database, with polls driven by the test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from excentra.actors.supervisor import Chain
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings, Token
from excentra.chain.wallet import HDWallet
from excentra.exchange import Exchange
from tests.actors.helpers import balance, new_user
from tests.chain.nodes import ChainHarness

D = Decimal
MNEMONIC = ("legal winner thank year wave sausage worth useful legal winner thank yellow")
"""A BIP-39 test vector (not the dev nodes' own "test … junk": anvil funds those keys)."""
ETHER = 10 ** 18
CONFIRMATIONS = 3
CHAIN = "ethereum"


@dataclass
class Custody:
    """A chain, its token, and an exchange watching it (restartable on the same DB)."""

    chain: ChainHarness
    usdt: str
    database_url: str
    wallet: HDWallet
    settings: ChainSettings
    node: Callable[[], Node]
    ex: Exchange | None = None

    async def start(self) -> Exchange:
        self.ex = Exchange(self.database_url, chains=[
            Chain(self.settings, self.wallet, self.node, auto_poll=False)])
        await self.ex.start()
        return self.ex

    async def stop(self) -> None:
        if self.ex is not None:
            await self.ex.stop()
            self.ex = None

    async def sync(self, mine: int = 0) -> None:
        """Mine ``mine`` blocks, then poll and wait for what the poll set off."""
        assert self.ex is not None
        if mine:
            await asyncio.to_thread(self.chain.mine, mine)
        await self.ex.chain_sync(CHAIN)

    async def address(self, user: str) -> str:
        assert self.ex is not None
        address = await self.ex.deposit_address(user, "ETH")
        assert address is not None
        return address

    async def deposits(self) -> list[dict[str, object]]:
        assert self.ex is not None
        return await self.ex.db.fetch_all(
            "SELECT user_id, asset, amount, status, confirmations FROM chain_deposits "
            "ORDER BY block_number, log_index", types={"amount": Decimal})

    async def withdrawal(self, withdrawal_id: str) -> dict[str, object]:
        assert self.ex is not None
        row = await self.ex.db.fetch_one(
            "SELECT status, nonce, tx_hash, raw_tx, reason FROM withdrawals WHERE id = :id",
            {"id": uuid.UUID(withdrawal_id)})
        assert row is not None
        return row


def node_for(chain: ChainHarness) -> Callable[[], Node]:
    """Over JSON-RPC (HTTP) for a real node; the tester's in-process provider otherwise."""
    url = chain.url
    if url is not None:
        return lambda: Node.connect(url)
    return lambda: Node(chain.w3)


def custody_settings(chain: ChainHarness, usdt: str) -> ChainSettings:
    return ChainSettings(
        rpc_url="http://in-process", confirmations=CONFIRMATIONS,
        tokens=(Token("USDT", usdt, 6),), start_block=chain.head() + 1,
        min_deposit={"ETH": D("0.001"), "USDT": D("1")},
        withdrawal_fee={"ETH": D("0.0005"), "USDT": D("2")},
        withdrawal_min={"ETH": D("0.01"), "USDT": D("10")},
        approval_above={"ETH": D("5")}, sweep_interval=0)


async def credited_user(c: Custody, eth: str = "0", usdt: str = "0") -> tuple[str, str]:
    """A user funded through the chain (deposit, confirmations, credit; swept into the
    hot wallet by the following polls)."""
    assert c.ex is not None
    user = await new_user(c.ex)
    address = await c.address(user)
    if D(eth):
        await asyncio.to_thread(c.chain.send_eth, address, int(D(eth) * ETHER))
    if D(usdt):
        await asyncio.to_thread(c.chain.send_token, c.usdt, address, int(D(usdt) * 10 ** 6))
    await c.sync()
    await c.sync(mine=CONFIRMATIONS)
    assert await balance(c.ex.db, user, "ETH") == (D(eth), 0)
    assert await balance(c.ex.db, user, "USDT") == (D(usdt), 0)
    return user, address


async def fund_hot_wallet(c: Custody, wei: int = ETHER) -> None:
    await asyncio.to_thread(c.chain.send_eth, c.wallet.hot_address, wei)


