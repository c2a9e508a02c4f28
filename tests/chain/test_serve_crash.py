"""``kill -9`` of ``excentra serve`` while it watches a real node (anvil) and deposits
keep arriving: after each restart the watcher resumes from the database, and in the end
every transfer is credited exactly once, balances equal the sums sent, and the ledger
audit (conservation included) is clean. The kill times are random, seeded (printed;
``EXCENTRA_CRASH_SEED`` replays them)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from excentra.chain import erc20
from excentra.db import Database
from excentra.db.audit import audit
from tests.chain.custody import MNEMONIC
from tests.chain.nodes import AnvilHarness
from tests.e2e.test_serve import _wait_healthy, child_env, free_port, ok, start_serve

D = Decimal
pytestmark = [pytest.mark.slow, pytest.mark.ganache, pytest.mark.asyncio]
SEED = int(os.environ.get("EXCENTRA_CRASH_SEED") or random.SystemRandom().randrange(10**9))
USERS = 3
KILLS = 2


async def test_kill_9_of_the_server_never_credits_a_deposit_twice(
        anvil: AnvilHarness, database_url: str, tmp_path: Path) -> None:
    node = anvil  # not node: under this load its eager miner stalls for seconds
    rng = random.Random(SEED)
    print(f"chain crash seed={SEED}")
    usdt = await asyncio.to_thread(node.deploy_token, "Tether", "USDT", 6, 10 ** 15)
    env = {**child_env(database_url), "ETH_RPC_URL": node.url or "",
           "ETH_CONFIRMATIONS": "2", "ETH_POLL_INTERVAL": "0.05",
           "ETH_TOKENS": f"USDT:{usdt}:6", "WALLET_MNEMONIC": MNEMONIC,
           "ETH_START_BLOCK": str(node.head() + 1),
           "ETH_MIN_DEPOSIT": "ETH:0.001,USDT:1"}
    port = free_port()
    server = start_serve(env, tmp_path, port, 0)
    first_block = node.head() + 1
    try:
        await _wait_healthy(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
            users: list[tuple[str, str]] = []
            for i in range(USERS):
                token = (await ok(await c.post("/api/v1/auth/register", json={
                    "email": f"depositor{i}@example.com", "password": "password123"}),
                    201))["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                me = await ok(await c.get("/api/v1/users/me", headers=headers))
                address = (await ok(await c.get("/api/v1/deposits/address",
                                                params={"asset": "ETH"},
                                                headers=headers)))["address"]
                users.append((str(me["id"]), address))

        # A key of its own, signing locally and counting its nonces: one call per
        # transfer, and no reliance on a dev node's bookkeeping for its unlocked accounts
        # (ganache's goes wrong after an evm_revert).
        depositor_key = Account.create()
        await asyncio.to_thread(node.send_eth, depositor_key.address, 100 * 10 ** 18)
        await asyncio.to_thread(node.send_token, usdt, depositor_key.address, 10 ** 14)
        stop = threading.Event()

        failures: list[str] = []

        def deposit_forever() -> None:  # a deposit, or an empty block, every few ms
            w3 = node.w3
            token = w3.eth.contract(address=w3.to_checksum_address(usdt), abi=erc20.ABI)
            chain_id = w3.eth.chain_id
            nonce = w3.eth.get_transaction_count(depositor_key.address)
            n = 0
            while not stop.is_set():
                _user, address = users[n % USERS]
                n += 1
                if n % 3 == 0:
                    node.mine(1)
                    continue
                tx: dict[str, Any] = {"nonce": nonce, "chainId": chain_id, "gas": 100_000,
                                      "gasPrice": 10 ** 10}
                if n % 3 == 1:
                    tx |= {"to": address, "value": (n % 50 + 1) * 10 ** 15}
                else:
                    tx |= {"to": token.address, "value": 0, "data": token.encode_abi(
                        "transfer", [w3.to_checksum_address(address), (n % 50 + 1) * 10 ** 6])}
                try:  # node mines it before answering (eager instamine)
                    w3.eth.send_raw_transaction(
                        depositor_key.sign_transaction(tx).raw_transaction)
                except Exception as exc:  # what happened is read back from the chain below
                    failures.append(repr(exc)[:300])
                    nonce = w3.eth.get_transaction_count(depositor_key.address)
                    continue
                nonce += 1

        depositor = threading.Thread(target=deposit_forever, daemon=True)
        depositor.start()
        for attempt in range(1, KILLS + 1):
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            os.kill(server.process.pid, signal.SIGKILL)
            assert server.process.wait(10) == -signal.SIGKILL
            print(f"killed at block {node.head()}")
            server = start_serve(env, tmp_path, port, attempt)
            await _wait_healthy(server)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.to_thread(depositor.join, 30)
        await asyncio.to_thread(node.mine, 3)
        sent = await asyncio.to_thread(_sent_on_chain, node, usdt, depositor_key.address,
                                       first_block, dict(users))
        transfers = sum(n for n, _ in sent.values())
        print(f"depositor: {len(failures)} failed sends", failures[:3])
        await _all_credited(database_url, transfers)
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(15)
    async with Database(database_url) as db:
        rows = await db.fetch_all("SELECT tx_hash, log_index, status FROM chain_deposits")
        assert len(rows) == transfers
        assert len({(r["tx_hash"], r["log_index"]) for r in rows}) == transfers
        assert {r["status"] for r in rows} == {"credited"}
        entries = int(await db.fetch_val(
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'deposit'"))
        assert entries == transfers  # one credit per transfer, none twice
        for (user, asset), (_n, units) in sent.items():
            row = await db.fetch_one(
                "SELECT available FROM balances WHERE user_id = :u AND asset = :a",
                {"u": uuid.UUID(user), "a": asset}, types={"available": Decimal})
            assert row is not None
            expected = D(units).scaleb(-6)
            assert row["available"] == expected, (user, asset)
        assert await audit(db) == []
    print(f"{transfers} transfers across {KILLS} kill -9: each credited once")


def _sent_on_chain(chain: AnvilHarness, usdt: str, sender: str, first: int,
                   users: dict[str, str]) -> dict[tuple[str, str], tuple[int, int]]:
    """What really arrived, read back from the chain: ``(user, asset) -> (transfers,
    amount in micro-units)`` for successful transfers from ``sender`` to the users."""
    owner = {address.lower(): user for user, address in users.items()}
    out: dict[tuple[str, str], tuple[int, int]] = {}

    def add(user: str, asset: str, micro: int) -> None:
        n, total = out.get((user, asset), (0, 0))
        out[(user, asset)] = (n + 1, total + micro)

    w3 = chain.w3
    for number in range(first, chain.head() + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            to = (tx.get("to") or "").lower()
            if tx["from"] == sender and to in owner and tx["value"] > 0 and (
                    w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1):
                add(owner[to], "ETH", tx["value"] // 10 ** 12)
    for log in w3.eth.get_logs({"fromBlock": first, "toBlock": chain.head(),
                                "address": w3.to_checksum_address(usdt),
                                "topics": [erc20.transfer_topic()]}):
        source, to, value = erc20.decode_transfer(log)
        if source == sender and to.lower() in owner:
            add(owner[to.lower()], "USDT", value)
    return out


async def _all_credited(database_url: str, transfers: int, timeout: float = 60) -> None:
    async with Database(database_url) as db:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            done = int(await db.fetch_val(
                "SELECT COUNT(*) FROM chain_deposits WHERE status = 'credited'"))
            if done == transfers:
                return
            await asyncio.sleep(0.2)
        pytest.fail(f"{done} of {transfers} deposits credited within {timeout}s")
