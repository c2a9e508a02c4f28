"""Custody on the private channel: a user connected to ``orders:<id>`` hears its chain
deposits credited (``deposit_update``) and its on-chain withdrawals requested, reviewed,
sent and settled (``withdrawal_update``), each with the command's result; nobody else
does. Served by a real uvicorn with an in-process dev chain the test drives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from excentra.chain.devchain import DevChain
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings
from excentra.chain.wallet import HDWallet
from excentra.http.app import create_app
from tests.http.conftest import FAST_PASSWORDS, settings_for
from tests.live import live_server
from tests.ws.support import TICKER_INTERVAL, Client, Server, User

pytestmark = pytest.mark.asyncio

D = Decimal
MNEMONIC = "test test test test test test test test test test test junk"
ETH_WEI = 10**18
DESTINATION = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"


@asynccontextmanager
async def serving_chain(database_url: str, dev: DevChain) -> AsyncIterator[Server]:
    """``tests.ws.support.serving`` with a chain: ETH only, 2 confirmations, approval
    above 1 ETH, polled only when the test says."""
    chain = ChainSettings(rpc_url="http://devchain", confirmations=2,
                          start_block=dev.head(), approval_above={"ETH": D(1)})
    settings = settings_for(database_url, ticker_interval=TICKER_INTERVAL, chain=chain,
                            wallet_mnemonic=MNEMONIC)
    app = create_app(settings, passwords=FAST_PASSWORDS, chain_node=lambda: Node(dev.w3),
                     chain_auto_poll=False)
    with live_server(app) as (base, services):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Server(base, services, http)


async def sync(srv: Server) -> None:
    await srv.call(srv.services.exchange.chain_sync("ethereum"))


async def private(srv: Server, user: User) -> Client:
    ws = await srv.connect()
    await ws.auth(user)
    await ws.subscribe(f"orders:{user.id}")
    return ws


async def update(ws: Client, kind: str) -> dict[str, Any]:
    """The next event, which must be a ``kind`` update: its result."""
    event = await ws.event()
    assert (event["type"], set(event)) == (kind, {"type", "data"}), event
    data: dict[str, Any] = event["data"]
    return data


async def test_deposit_and_withdrawal_updates_reach_their_user_only(
        database_url: str) -> None:
    dev = DevChain()
    dev.send_eth(HDWallet(MNEMONIC).hot_address, 10 * ETH_WEI)
    async with serving_chain(database_url, dev) as srv:
        alice, bystander = await srv.user(), await srv.user()
        admin = await srv.user(role="admin")
        async with await private(srv, alice) as ws, await private(srv, bystander) as other:
            r = await srv.http.get("/api/v1/deposits/address", params={"asset": "ETH"},
                                   headers=alice.headers)
            assert r.status_code == 200, r.text
            dev.send_eth(r.json()["address"], 2 * ETH_WEI)
            await sync(srv)
            seen = await update(ws, "deposit_update")  # the watcher's own observation
            assert (seen["status"], seen["asset"], D(seen["amount"]), seen["confirmations"],
                    seen["required_confirmations"]) == ("pending", "ETH", D(2), 1, 2)
            dev.mine(1)
            await sync(srv)
            confirming = await update(ws, "deposit_update")
            assert (confirming["id"], confirming["status"], confirming["confirmations"]) == (
                seen["id"], "pending", 2)
            credited = await update(ws, "deposit_update")
            assert (credited["status"], credited["asset"], D(credited["available"]),
                    D(credited["held"])) == ("credited", "ETH", D(2), D(0))

            r = await srv.http.post("/api/v1/withdrawals", headers=alice.headers, json={
                "asset": "ETH", "amount": "0.5", "address": DESTINATION})
            assert r.status_code == 201, r.text
            requested = await update(ws, "withdrawal_update")
            assert (requested["id"], requested["status"], requested["to_address"],
                    D(requested["held"])) == (r.json()["id"], "queued", DESTINATION,
                                              D("0.5005"))
            await sync(srv)
            sent = await update(ws, "withdrawal_update")
            assert (sent["id"], sent["status"]) == (requested["id"], "broadcast")
            assert sent["tx_hash"].startswith("0x")
            assert "raw_tx" not in sent
            dev.mine(2)
            await sync(srv)
            done = await update(ws, "withdrawal_update")
            assert (done["id"], done["status"], done["tx_hash"]) == (
                requested["id"], "confirmed", sent["tx_hash"])

            r = await srv.http.post("/api/v1/withdrawals", headers=alice.headers, json={
                "asset": "ETH", "amount": "1.2", "address": DESTINATION})
            assert r.status_code == 201, r.text
            waiting = await update(ws, "withdrawal_update")
            assert waiting["status"] == "pending_approval"
            r = await srv.http.post(f"/api/v1/admin/withdrawals/{waiting['id']}/reject",
                                    headers=admin.headers, json={"reason": "no"})
            assert r.status_code == 200, r.text
            rejected = await update(ws, "withdrawal_update")
            assert (rejected["id"], rejected["status"]) == (waiting["id"], "rejected")

            r = await srv.http.post("/api/v1/balances/withdraw", headers=alice.headers,
                                    json={"asset": "ETH", "amount": "0.01"})
            assert r.status_code == 422, r.text  # ETH moves on chain only: no event
            await ws.quiet(0.3)
            await other.quiet(0.3)
