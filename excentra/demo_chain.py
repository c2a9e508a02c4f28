"""``excentra demo chain``: deposits, trading and withdrawals on an in-process Ethereum.

An eth-tester chain (py-evm) runs inside the process with our own ERC-20 "USDT"; the
exchange watches it on a fresh SQLite database (or ``DATABASE_URL``). Alice deposits ETH
and Bob USDT to their deposit addresses; the demo mines block after block, printing the
confirmations, until both are credited; they trade; the deposit addresses are swept into
the hot wallet; both withdraw, and the demo follows the transactions to confirmation and
prints every balance, on chain and in the ledger, and the ledger audit.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from decimal import Decimal
from typing import Any

from excentra.actors.bridge import Rejected
from excentra.actors.supervisor import Chain
from excentra.chain.devchain import DevChain
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings, Token
from excentra.chain.wallet import HDWallet
from excentra.db.audit import audit
from excentra.db.users import create_user
from excentra.engine import OrderType, Side
from excentra.exchange import Exchange

CONFIRMATIONS = 3
DEMO_MNEMONIC = "test test test test test test test test test test test junk"
"""A well-known public mnemonic: fine for a throwaway in-process chain, never elsewhere."""


def chain_demo() -> None:
    asyncio.run(_chain_demo())


async def _chain_demo() -> None:
    dev = DevChain()
    usdt = dev.deploy_token("Tether USD (demo)", "USDT", 6, 10 ** 15)
    settings = ChainSettings(rpc_url="http://in-process", confirmations=CONFIRMATIONS,
                             tokens=(Token("USDT", usdt, 6),), start_block=dev.head() + 1,
                             sweep_interval=0)
    wallet = HDWallet(DEMO_MNEMONIC)
    print(f"in-process chain (id {dev.w3.eth.chain_id}), USDT token at {usdt}, hot wallet "
          f"{wallet.hot_address}; deposits need {CONFIRMATIONS} confirmations")
    with tempfile.TemporaryDirectory(prefix="excentra-demo-") as tmp:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/demo.db"
        ex = Exchange(url, chains=[Chain(settings, wallet, lambda: Node(dev.w3),
                                         auto_poll=False)])
        await ex.start()
        try:
            await _run(ex, dev, usdt)
        finally:
            await ex.stop()


async def _run(ex: Exchange, dev: DevChain, usdt: str) -> None:
    d = Decimal
    tag = uuid.uuid4().hex[:8]
    alice = str(await create_user(ex.db, f"alice-{tag}@demo.test"))
    bob = str(await create_user(ex.db, f"bob-{tag}@demo.test"))
    a_addr, b_addr = await ex.deposit_address(alice, "ETH"), await ex.deposit_address(bob,
                                                                                     "USDT")
    assert a_addr is not None
    assert b_addr is not None
    print(f"alice's deposit address {a_addr}; bob's {b_addr}")

    dev.send_eth(a_addr, 2 * 10 ** 18)
    dev.send_token(usdt, b_addr, 5000 * 10 ** 6)
    print("alice sends 2 ETH, bob 5000 USDT")
    while True:
        await ex.chain_sync("ethereum")
        rows = await ex.db.fetch_all("SELECT asset, confirmations, status FROM chain_deposits "
                                     "ORDER BY asset")
        print("  block", dev.head(), "· " + ", ".join(
            f"{r['asset']} {r['status']} ({r['confirmations']}/{CONFIRMATIONS})" for r in rows))
        if all(r["status"] == "credited" for r in rows):
            break
        dev.mine(1)
    await _balances(ex, "credited", alice, bob)

    _ok(await ex.place_order(alice, "ETH/USDT", Side.SELL, OrderType.LIMIT, price=d(2000),
                             quantity=d(1)))
    _ok(await ex.place_order(bob, "ETH/USDT", Side.BUY, OrderType.LIMIT, price=d(2000),
                             quantity=d(1)))
    await _balances(ex, "after alice sells bob 1 ETH at 2000 USDT", alice, bob)

    for _ in range(3):  # sweeps: ETH first pays the gas of sweeping the token
        dev.mine(1)
        await ex.chain_sync("ethereum")
    hot = ex.chains["ethereum"].wallet.hot_address
    w3 = dev.w3
    print(f"swept into the hot wallet: "
          f"{d(w3.eth.get_balance(w3.to_checksum_address(hot))).scaleb(-18)} ETH, "
          f"{d(dev.token_balance(usdt, hot)).scaleb(-6)} USDT; deposit addresses left with "
          f"{w3.eth.get_balance(w3.to_checksum_address(a_addr))} wei and "
          f"{d(dev.token_balance(usdt, b_addr)).scaleb(-6)} USDT")

    out_a, out_b = "0x" + "a1" * 20, "0x" + "b2" * 20
    wa = _ok(await ex.chain_withdraw(alice, "USDT", d(1500), out_a))
    wb = _ok(await ex.chain_withdraw(bob, "ETH", d("0.9"), out_b))
    print(f"alice withdraws 1500 USDT (fee {wa['fee']}), bob 0.9 ETH (fee {wb['fee']}): "
          f"{wa['status']}, {wb['status']}")
    while True:
        await ex.chain_sync("ethereum")
        rows = await ex.db.fetch_all("SELECT asset, status, nonce FROM withdrawals "
                                     "ORDER BY asset")
        print("  block", dev.head(), "· " + ", ".join(
            f"{r['asset']} {r['status']} (nonce {r['nonce']})" for r in rows))
        if all(r["status"] in ("confirmed", "failed") for r in rows):
            break
        dev.mine(1)
    print(f"on chain: {out_a} holds {d(dev.token_balance(usdt, out_a)).scaleb(-6)} USDT, "
          f"{out_b} holds {d(w3.eth.get_balance(w3.to_checksum_address(out_b))).scaleb(-18)}"
          " ETH")
    await _balances(ex, "after the withdrawals", alice, bob)
    problems = await audit(ex.db)
    print("ledger audit:", problems if problems else "balanced")
    if problems or any(r["status"] != "confirmed" for r in rows):
        raise SystemExit("chain demo: something went wrong")


async def _balances(ex: Exchange, when: str, alice: str, bob: str) -> None:
    print(f"balances {when}:")
    for name, user in (("alice", alice), ("bob", bob)):
        rows = await ex.db.fetch_all(
            "SELECT asset, available, held FROM balances WHERE user_id = :u ORDER BY asset",
            {"u": uuid.UUID(user)}, types={"available": Decimal, "held": Decimal})
        print(f"  {name}: " + ", ".join(
            f"{r['asset']} {r['available'].normalize():f}"
            + (f" (+{r['held'].normalize():f} held)" if r["held"] else "") for r in rows))


def _ok(outcome: Any) -> Any:
    if isinstance(outcome, Rejected):
        raise SystemExit(f"chain demo: refused: {outcome.code}")
    return outcome
