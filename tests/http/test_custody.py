"""On-chain custody over HTTP, against an in-process dev chain: deposit addresses, chain
deposits from pending to credited, on-chain withdrawals (validation before any hold, the
approval flow, sending and settling with exact balances), the lists, ``/health`` and
``/metrics``. The watcher polls only when a test says (``chain_sync``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from web3 import Web3

from excentra.chain.devchain import DevChain
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings, Token
from excentra.chain.wallet import HDWallet, parse_address
from excentra.http.app import create_app
from excentra.http.config import Settings
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for
from tests.http.test_health_metrics import scrape

pytestmark = pytest.mark.asyncio

D = Decimal
MNEMONIC = "test test test test test test test test test test test junk"
"""A valid BIP-39 phrase (Hardhat's): tests never write a mnemonic file."""
ETH_WEI = 10**18
FEE = D("0.0005")
"""The default ETH withdrawal fee."""
APPROVAL_ABOVE = D(1)
DESTINATION = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
"""An address nobody in the test uses: what arrives there is exactly what was sent."""


@dataclass
class Custody:
    api: Api
    dev: DevChain
    token: str

    async def sync(self) -> None:
        await self.api.services.exchange.chain_sync("ethereum")

    async def address(self, headers: dict[str, str], asset: str = "ETH") -> str:
        r = await self.api.client.get("/api/v1/deposits/address", params={"asset": asset},
                                      headers=headers)
        assert r.status_code == 200, r.text
        address: str = r.json()["address"]
        return address

    async def withdraw(self, headers: dict[str, str], amount: str, asset: str = "ETH",
                       address: str = DESTINATION) -> httpx.Response:
        return await self.api.client.post("/api/v1/withdrawals", headers=headers, json={
            "asset": asset, "amount": amount, "address": address})

    async def balance(self, headers: dict[str, str], asset: str = "ETH") -> tuple[D, D]:
        r = await self.api.client.get(f"/api/v1/balances/{asset}", headers=headers)
        assert r.status_code == 200, r.text
        return D(r.json()["available"]), D(r.json()["held"])

    async def get(self, path: str, headers: dict[str, str], **params: Any) -> Any:
        r = await self.api.client.get(path, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def chain_settings(dev: DevChain, token: str, **overrides: Any) -> ChainSettings:
    values: dict[str, Any] = {
        "rpc_url": "http://devchain", "confirmations": 2,
        "tokens": (Token("USDT", token, 6),), "start_block": dev.head(),
        "approval_above": {"ETH": APPROVAL_ABOVE}}
    values.update(overrides)
    return ChainSettings(**values)


@pytest_asyncio.fixture
async def custody(database_url: str) -> AsyncIterator[Custody]:
    dev = DevChain()
    token = dev.deploy_token("Tether USD", "USDT", 6, 10**15)
    hot = HDWallet(MNEMONIC).hot_address  # pays the withdrawals and their gas
    dev.send_eth(hot, 10 * ETH_WEI)
    dev.send_token(token, hot, 10**12)
    settings = settings_for(database_url, chain=chain_settings(dev, token),
                            wallet_mnemonic=MNEMONIC)
    app = create_app(settings, passwords=FAST_PASSWORDS, chain_node=lambda: Node(dev.w3),
                     chain_auto_poll=False)
    async for api in running_api(app):
        yield Custody(api, dev, token)


# -- deposits -------------------------------------------------------------------------------


async def test_deposit_address_is_stable_per_user_and_chain(custody: Custody) -> None:
    api = custody.api
    _, alice = await api.user()
    _, bob = await api.user()
    first = await custody.address(alice)
    assert first == parse_address(first)  # checksummed
    assert await custody.address(alice) == first
    assert await custody.address(alice, "usdt") == first  # one address per chain
    assert await custody.address(bob) != first
    r = await api.client.get("/api/v1/deposits/address", params={"asset": "ETH"})
    assert r.status_code == 401


@pytest.mark.parametrize(("asset", "message"), [
    ("BTC", "BTC has no on-chain deposits; use /api/v1/balances/deposit"),
    ("DOGE", "DOGE is not supported"),
    (None, "Query parameter `asset` is required, e.g. ?asset=ETH"),
])
async def test_deposit_address_refuses_an_asset_without_a_chain(
        custody: Custody, asset: str | None, message: str) -> None:
    _, headers = await custody.api.user()
    params = {} if asset is None else {"asset": asset}
    r = await custody.api.client.get("/api/v1/deposits/address", params=params,
                                     headers=headers)
    status = 400 if asset is None else 422  # well-formed, but no asset with a chain
    assert (r.status_code, r.json()) == (status, {"error": message})


async def test_a_deposit_is_pending_with_its_confirmations_then_credited(
        custody: Custody) -> None:
    api, dev = custody.api, custody.dev
    _, alice = await api.user()
    address = await custody.address(alice)
    tx_hash = dev.send_eth(address, ETH_WEI // 4)  # mined at once: its first confirmation
    await custody.sync()
    page = await custody.get("/api/v1/deposits", alice)
    assert (page["page"], page["limit"], page["total"]) == (1, 20, 1)
    [eth] = page["data"]
    assert set(eth) == {"id", "chain", "asset", "amount", "status", "confirmations",
                        "required_confirmations", "tx_hash", "log_index", "block_number",
                        "address", "created_at", "credited_at"}
    assert (eth["chain"], eth["asset"], D(eth["amount"]), eth["status"],
            eth["confirmations"], eth["required_confirmations"], eth["tx_hash"],
            eth["log_index"], eth["block_number"], eth["address"], eth["credited_at"]) == (
        "ethereum", "ETH", D("0.25"), "pending", 1, 2, tx_hash, -1, dev.head(), address,
        None)
    assert await custody.balance(alice) == (D(0), D(0))

    dev.send_token(custody.token, address, 12_500_000)  # 12.5 USDT; ETH's 2nd block
    await custody.sync()
    usdt, eth = (await custody.get("/api/v1/deposits", alice))["data"]  # newest first
    assert (eth["status"], eth["confirmations"]) == ("credited", 2)
    assert eth["credited_at"] is not None
    assert (usdt["asset"], D(usdt["amount"]), usdt["status"], usdt["confirmations"]) == (
        "USDT", D("12.5"), "pending", 1)
    assert usdt["log_index"] >= 0
    assert await custody.balance(alice) == (D("0.25"), D(0))
    assert await custody.balance(alice, "USDT") == (D(0), D(0))

    dev.mine(1)
    await custody.sync()
    page = await custody.get("/api/v1/deposits", alice)
    assert [(d["asset"], d["status"]) for d in page["data"]] == [
        ("USDT", "credited"), ("ETH", "credited")]
    assert await custody.balance(alice, "USDT") == (D("12.5"), D(0))

    only = await custody.get("/api/v1/deposits", alice, status="credited", asset="usdt")
    assert [d["asset"] for d in only["data"]] == ["USDT"]
    assert only["total"] == 1
    _, bob = await api.user()
    assert (await custody.get("/api/v1/deposits", bob))["total"] == 0
    for bad in ({"status": "lost"}, {"asset": "NO-PE"}, {"limit": "0"}):
        r = await api.client.get("/api/v1/deposits", params=bad, headers=alice)
        assert r.status_code == 400, bad
    r = await api.client.get("/api/v1/deposits", params={"asset": "NOPE"}, headers=alice)
    assert (r.status_code, r.json()) == (422, {"error": "unknown asset: NOPE"})


# -- withdrawals: refused before anything is held -----------------------------------------------


def _miscased(address: str) -> str:
    """``address`` with one letter's case flipped: the EIP-55 checksum no longer holds."""
    i = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1:]


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"address": _miscased(DESTINATION)}, 400, "checksum"),
    ({"address": "0x1234"}, 400, "40"),
    ({"address": "0x" + "0" * 40}, 400, "zero address"),
    ({"amount": "0.0001"}, 400, "minimum ETH withdrawal of 0.001"),
    ({"amount": "0"}, 400, "greater than zero"),
    ({"amount": "-1"}, 400, "greater than zero"),
    ({"amount": "5"}, 422, "plus the 0.0005 ETH network fee"),
    ({"amount": "0.0010000000000000001"}, 422, "decimal places"),
    ({"asset": "USDT", "amount": "5.1234567"}, 422, "decimal places"),
    ({"asset": "BTC"}, 422, "BTC has no on-chain withdrawals; use /api/v1/balances/withdraw"),
    ({"asset": "NOPE"}, 422, "not supported"),
    ({"asset": "NO PE"}, 400, "not supported"),
    ({"address": None}, 422, "address"),
])
async def test_a_refused_withdrawal_holds_nothing(custody: Custody, body: dict[str, Any],
                                                  status: int, fragment: str) -> None:
    api = custody.api
    _, alice = await api.funded(ETH="2", USDT="100", BTC="1")
    request = {"asset": "ETH", "amount": "0.1", "address": DESTINATION, **body}
    r = await api.client.post("/api/v1/withdrawals", headers=alice, json=request)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    assert await custody.balance(alice) == (D(2), D(0))
    assert await custody.balance(alice, "USDT") == (D(100), D(0))
    assert (await custody.get("/api/v1/withdrawals", alice))["total"] == 0


async def test_malformed_and_unauthorised_withdrawal_requests(custody: Custody) -> None:
    api = custody.api
    user_id, alice = await api.funded(ETH="2")
    r = await api.client.post("/api/v1/withdrawals", headers={
        **alice, "content-type": "application/json"}, content=b'{"asset": "ETH",')
    assert r.status_code == 400
    r = await api.client.post("/api/v1/withdrawals", json={
        "asset": "ETH", "amount": "0.1", "address": DESTINATION})
    assert r.status_code == 401
    _, admin = await api.user(role="admin")
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/suspend", headers=admin,
                               json={"suspended": True})
    assert r.status_code == 200, r.text
    r = await custody.withdraw(alice, "0.1")
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    assert await custody.balance(alice) == (D(2), D(0))


# -- withdrawals: held, sent, settled ---------------------------------------------------------


async def send_and_settle(custody: Custody) -> None:
    """Poll: the queued withdrawal is signed, recorded and sent (mined at once); then two
    blocks on top and a poll: it has its confirmations and is settled."""
    await custody.sync()
    custody.dev.mine(2)
    await custody.sync()


async def test_a_lowercase_address_is_accepted_and_the_withdrawal_sent(
        custody: Custody) -> None:
    _, alice = await custody.api.funded(ETH="2")
    r = await custody.withdraw(alice, "0.1", address=DESTINATION.lower())
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["status"], made["asset"], D(made["amount"]), D(made["fee"]),
            made["address"], D(made["available"]), D(made["held"])) == (
        "queued", "ETH", D("0.1"), FEE, DESTINATION, D("1.8995"), D("0.1005"))
    await send_and_settle(custody)
    [w] = (await custody.get("/api/v1/withdrawals", alice))["data"]
    assert (w["id"], w["status"], w["chain"], w["nonce"], w["reason"]) == (
        made["id"], "confirmed", "ethereum", 0, None)
    assert w["tx_hash"].startswith("0x")
    assert await custody.balance(alice) == (D("1.8995"), D(0))
    assert custody.dev.w3.eth.get_balance(Web3.to_checksum_address(DESTINATION)) == (
        ETH_WEI // 10)


async def test_a_token_withdrawal_arrives_exactly(custody: Custody) -> None:
    _, alice = await custody.api.funded(USDT="100")
    r = await custody.withdraw(alice, "25.5", asset="USDT")
    assert r.status_code == 201, r.text
    assert (D(r.json()["available"]), D(r.json()["held"])) == (D("73.5"), D("26.5"))
    await send_and_settle(custody)
    assert await custody.balance(alice, "USDT") == (D("73.5"), D(0))
    assert custody.dev.token_balance(custody.token, DESTINATION) == 25_500_000


async def test_above_the_limit_an_admin_approves_then_it_is_sent(custody: Custody) -> None:
    api = custody.api
    _, alice = await api.funded(ETH="2")
    _, admin = await api.user(role="admin")
    r = await custody.withdraw(alice, "1.5")
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["status"], D(made["available"]), D(made["held"])) == (
        "pending_approval", D("0.4995"), D("1.5005"))
    approve = f"/api/v1/admin/withdrawals/{made['id']}/approve"

    r = await api.client.post(approve, headers=alice)
    assert r.status_code == 403
    await custody.sync()  # the watcher leaves it alone while it waits
    [w] = (await custody.get("/api/v1/withdrawals", alice))["data"]
    assert (w["status"], w["tx_hash"]) == ("pending_approval", None)

    r = await api.client.post(approve, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": made["id"], "status": "queued", "asset": "ETH",
                        "amount": made["amount"], "fee": made["fee"], "tx_hash": None}
    for again in (approve, approve.replace("approve", "reject")):
        r = await api.client.post(again, headers=admin)
        assert (r.status_code, r.json()["error"]) == (409, (
            "The withdrawal is queued: only one awaiting approval can be approved or "
            "rejected")), r.text

    await send_and_settle(custody)
    [w] = (await custody.get("/api/v1/withdrawals", alice))["data"]
    assert w["status"] == "confirmed"
    assert await custody.balance(alice) == (D(2) - D("1.5") - FEE, D(0))
    assert custody.dev.w3.eth.get_balance(Web3.to_checksum_address(DESTINATION)) == (
        3 * ETH_WEI // 2)


async def test_an_admin_rejects_and_the_hold_is_released(custody: Custody) -> None:
    api = custody.api
    _, alice = await api.funded(ETH="2")
    _, admin = await api.user(role="admin")
    made = (await custody.withdraw(alice, "1.5")).json()
    reject = f"/api/v1/admin/withdrawals/{made['id']}/reject"
    r = await api.client.post(reject, headers=admin, json={"reason": "bad\x00reason"})
    assert r.status_code == 400
    r = await api.client.post(reject, headers=admin, json={"reason": "  unknown payee "})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["status"]) == (made["id"], "rejected")
    assert await custody.balance(alice) == (D(2), D(0))
    [w] = (await custody.get("/api/v1/withdrawals", alice))["data"]
    assert (w["status"], w["reason"]) == ("rejected", "unknown payee")
    for action in ("reject", "approve"):
        r = await api.client.post(reject.replace("reject", action), headers=admin)
        assert (r.status_code, r.json()) == (409, {
            "error": "The withdrawal is rejected: only one awaiting approval can be "
                     "approved or rejected"})
    await custody.sync()
    assert custody.dev.w3.eth.get_balance(Web3.to_checksum_address(DESTINATION)) == 0


@pytest.mark.parametrize("withdrawal_id", [
    "6f1c1fd2-6a39-4b5c-9d0e-6f0e0f7b9a11", "not-a-uuid"])
async def test_reviewing_an_unknown_withdrawal_is_404(custody: Custody,
                                                      withdrawal_id: str) -> None:
    _, admin = await custody.api.user(role="admin")
    for action in ("approve", "reject"):
        r = await custody.api.client.post(
            f"/api/v1/admin/withdrawals/{withdrawal_id}/{action}", headers=admin)
        assert (r.status_code, r.json()) == (404, {"error": "Withdrawal not found"})


# -- the lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "message"), [
    ("deposit", "ETH is deposited on chain: send it to your deposit address "
                "(GET /api/v1/deposits/address?asset=ETH)"),
    ("withdraw", "ETH is withdrawn on chain: POST /api/v1/withdrawals"),
])
async def test_a_chain_asset_has_no_simulated_transfers(custody: Custody, path: str,
                                                        message: str) -> None:
    """A simulated deposit of ETH would mint funds its owner could then withdraw on chain
    from the hot wallet; a simulated withdrawal would burn them. Both are refused while a
    chain carries the asset (the token too); assets without a chain keep them."""
    api = custody.api
    _, alice = await api.funded(ETH="1", BTC="0.05")
    for asset in ("ETH", "USDT"):
        r = await api.client.post(f"/api/v1/balances/{path}", headers=alice,
                                  json={"asset": asset, "amount": "0.01"})
        assert r.status_code == 422, r.text
        assert r.json() == {"error": message.replace("ETH", asset)}
    assert await custody.balance(alice) == (D(1), 0)
    r = await api.client.post(f"/api/v1/balances/{path}", headers=alice,
                              json={"asset": "BTC", "amount": "0.01"})
    assert r.status_code == 200, r.text


async def test_withdrawals_are_listed_paginated_without_the_signed_transaction(
        custody: Custody) -> None:
    api = custody.api
    user_id, alice = await api.funded(ETH="5", BTC="0.05")
    made = [(await custody.withdraw(alice, amount)).json()["id"]
            for amount in ("0.1", "0.2", "1.5")]
    await custody.sync()  # the first queued one is signed and sent: it has a raw_tx
    r = await api.client.post("/api/v1/balances/withdraw", headers=alice,
                              json={"asset": "BTC", "amount": "0.01"})  # no chain: simulated
    assert r.status_code == 200, r.text

    first = await custody.get("/api/v1/withdrawals", alice, limit=2)
    second = await custody.get("/api/v1/withdrawals", alice, limit=2, page=2)
    assert (first["total"], first["page"], first["limit"], second["page"]) == (4, 1, 2, 2)
    items = first["data"] + second["data"]
    assert len(items) == 4
    assert [w["id"] for w in items[1:]] == made[::-1]  # newest first
    simulated = items[0]
    assert (simulated["chain"], simulated["address"], simulated["status"]) == (
        None, None, "confirmed")
    statuses = {w["id"]: w["status"] for w in items}
    assert [statuses[i] for i in made] == ["broadcast", "queued", "pending_approval"]
    for w in items:
        assert "raw_tx" not in w
        assert set(w) == {"id", "chain", "asset", "amount", "fee", "address", "status",
                          "tx_hash", "nonce", "reason", "created_at", "updated_at"}
    oldest = await custody.get("/api/v1/withdrawals", alice, order="asc", limit=1)
    assert oldest["data"][0]["id"] == made[0]
    only = await custody.get("/api/v1/withdrawals", alice, status="queued,broadcast")
    assert sorted(w["id"] for w in only["data"]) == sorted(made[:2])

    _, admin = await api.user(role="admin")
    review = await custody.get("/api/v1/admin/withdrawals", admin, status="pending_approval")
    assert [(w["id"], w["user_id"]) for w in review["data"]] == [(made[2], user_id)]
    assert review["data"][0]["email"].endswith("@example.com")
    assert "raw_tx" not in review["data"][0]
    mine = await custody.get("/api/v1/admin/withdrawals", admin, user_id=user_id)
    assert mine["total"] == 4
    r = await api.client.get("/api/v1/admin/withdrawals", headers=alice)
    assert r.status_code == 403
    r = await api.client.get("/api/v1/admin/withdrawals", headers=admin,
                             params={"user_id": "nope"})
    assert r.status_code == 400


async def test_admins_list_every_users_deposits(custody: Custody) -> None:
    api, dev = custody.api, custody.dev
    alice_id, alice = await api.user()
    bob_id, bob = await api.user()
    dev.send_eth(await custody.address(alice), ETH_WEI)
    await custody.sync()  # seen first (one poll records its deposits at one time)
    dev.send_eth(await custody.address(bob), ETH_WEI)  # alice's second confirmation
    await custody.sync()
    _, admin = await api.user(role="admin")
    everyone = await custody.get("/api/v1/admin/deposits", admin)
    assert [(d["user_id"], d["status"]) for d in everyone["data"]] == [
        (bob_id, "pending"), (alice_id, "credited")]
    credited = await custody.get("/api/v1/admin/deposits", admin, status="credited")
    assert [d["user_id"] for d in credited["data"]] == [alice_id]
    assert credited["data"][0]["email"].endswith("@example.com")
    bobs = await custody.get("/api/v1/admin/deposits", admin, user_id=bob_id)
    assert bobs["total"] == 1
    r = await api.client.get("/api/v1/admin/deposits", headers=bob)
    assert r.status_code == 403


# -- health and metrics -------------------------------------------------------------------------


async def test_health_and_metrics_show_the_chain(custody: Custody) -> None:
    api, dev = custody.api, custody.dev
    _, alice = await api.user()
    dev.send_eth(await custody.address(alice), ETH_WEI)
    await custody.sync()
    r = await api.client.get("/health")
    assert r.status_code == 200, r.text
    chain = r.json()["chains"]["ethereum"]
    assert (chain["node_ok"], chain["head"], chain["processed"], chain["lag"],
            chain["pending_deposits"], chain["queued_withdrawals"], chain["last_error"]) == (
        True, dev.head(), dev.head(), 0, 1, 0, None)
    assert 0 <= chain["seconds_since_poll"] < 60

    dev.mine(1)
    await custody.sync()  # credited: counted from the answer on, reported by the next poll
    await custody.sync()  # (which also sweeps the deposit to the hot wallet: one block)
    found = await scrape(api)
    label = (("chain", "ethereum"),)
    assert found[("excentra_chain_node_up", label)] == 1
    assert found[("excentra_chain_head", label)] in (dev.head() - 1, dev.head())
    assert found[("excentra_chain_lag_blocks", label)] == 0
    assert found[("excentra_chain_pending_deposits", label)] == 0
    assert found[("excentra_chain_deposits_credited_total", label)] == 1
    assert found[("excentra_chain_node_errors_total", label)] == 0
    assert found[("excentra_chain_reorgs_total", label)] == 0


async def test_a_node_that_is_down_leaves_the_exchange_healthy(database_url: str) -> None:
    settings = settings_for(database_url, wallet_mnemonic=MNEMONIC,
                            chain=ChainSettings(rpc_url="http://127.0.0.1:9"))
    app = create_app(settings, passwords=FAST_PASSWORDS, chain_auto_poll=False)
    async for api in running_api(app):
        await api.services.exchange.chain_sync("ethereum")
        r = await api.client.get("/health")
        assert (r.status_code, r.json()["status"]) == (200, "ok")
        chain = r.json()["chains"]["ethereum"]
        assert (chain["node_ok"], chain["head"], chain["seconds_since_poll"]) == (
            False, None, None)
        assert chain["last_error"]
        found = await scrape(api)
        label = (("chain", "ethereum"),)
        assert found[("excentra_chain_node_up", label)] == 0
        assert found[("excentra_chain_node_errors_total", label)] == 1
        assert ("excentra_chain_head", label) not in found
        _, alice = await api.funded(BTC="1")
        r = await api.client.get("/api/v1/balances/BTC", headers=alice)
        assert r.status_code == 200


async def test_without_a_chain_health_has_no_chains(api: Api) -> None:
    r = await api.client.get("/health")
    assert "chains" not in r.json()
    _, alice = await api.user()
    r = await api.client.get("/api/v1/deposits/address", params={"asset": "ETH"},
                             headers=alice)
    assert r.status_code == 422  # ETH exists but has no chain here
    assert (await api.client.get("/api/v1/deposits", headers=alice)).json()["total"] == 0


# -- configuration -----------------------------------------------------------------------------


async def test_an_unlisted_token_is_left_without_a_chain(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    dev = DevChain()
    usdt = dev.deploy_token("Tether USD", "USDT", 6, 10**15)
    dai = dev.deploy_token("Dai", "DAI", 18, 10**24)
    chain = chain_settings(dev, usdt, tokens=(Token("USDT", usdt, 6), Token("DAI", dai, 18)),
                           withdrawal_fee={"DAI": D(2)})
    settings = settings_for(database_url, chain=chain, wallet_mnemonic=MNEMONIC)
    app = create_app(settings, passwords=FAST_PASSWORDS, chain_node=lambda: Node(dev.w3),
                     chain_auto_poll=False)
    async for api in running_api(app):
        assert "left without a chain" in caplog.text
        exchange = api.services.exchange
        assert exchange.chain_of("DAI") is None
        chain_of_usdt = exchange.chain_of("USDT")
        assert chain_of_usdt is not None
        assert chain_of_usdt.settings.assets == ("ETH", "USDT")
        _, alice = await api.user()
        r = await api.client.get("/api/v1/deposits/address", params={"asset": "DAI"},
                                 headers=alice)
        assert (r.status_code, r.json()) == (422, {"error": "DAI is not supported"})


async def test_settings_read_the_chain_and_the_mnemonic_from_the_environment() -> None:
    settings = Settings.from_env({"ETH_RPC_URL": "http://node:8545", "ETH_CONFIRMATIONS": "3",
                                  "WALLET_MNEMONIC": MNEMONIC})
    assert settings.chain.enabled
    assert settings.chain.confirmations == 3
    assert settings.wallet_mnemonic == MNEMONIC
    assert "junk" not in repr(settings)
    assert not Settings.from_env({}).chain.enabled
