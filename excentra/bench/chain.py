"""``excentra bench chain``: how fast the chain watcher catches up on a backlog of deposits.

A backlog of ``--deposits`` transfers, one per block (ETH and an ERC-20, to ``--users``
deposit addresses), is mined on an in-process chain (eth-tester, py-evm) or a development
node (``--node-url``: anvil, ganache) while the exchange is down, as after an outage;
then the exchange starts and its watcher
catches up: scan, record, confirm, credit each deposit through the ledger and the journal.
Reported per database backend (median of ``--runs``): deposits credited per second, blocks
per second, and the ``ratio=`` of the catch-up time to the *floor* measured in the same
run — reading the same blocks, receipts and logs from the same node with the same
``Node`` calls and nothing else (no database, no ledger; the best of two reads, after a
warm-up read before the watcher's): what the exchange adds over reading the node.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from dataclasses import dataclass
from decimal import Decimal

from web3 import HTTPProvider, Web3
from web3.types import TxParams, Wei

from excentra.actors.supervisor import Chain
from excentra.bench.common import key_values
from excentra.bench.pipeline import (
    DEFAULT_PG_URL,
    PG_URL_ENV,
    pg_database,
    sqlite_database,
)
from excentra.chain import erc20
from excentra.chain.devchain import ChainOps, DevChain
from excentra.chain.node import Node
from excentra.chain.settings import ChainSettings, Token
from excentra.chain.wallet import HDWallet
from excentra.db.users import create_user
from excentra.exchange import Exchange

IN_PROCESS_POLL_BLOCKS = 25
"""Blocks per poll (``max_blocks_per_poll``) on the in-process chain, which reads slowly
(a poll must finish within the facade's wait); on a node, the default (500)."""

log = logging.getLogger("excentra.bench.chain")

MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


@dataclass
class Run:
    deposits: int
    blocks: int
    seconds: float
    floor_seconds: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds


def dev_chain(node_url: str | None) -> ChainOps:
    """The in-process chain, or a development node's JSON-RPC (its first account funded
    and unlocked, as anvil's and ganache's are)."""
    if node_url is None:
        return DevChain()
    remote = ChainOps()
    remote.w3 = Web3(HTTPProvider(node_url, request_kwargs={"timeout": 30}))
    remote.funder = remote.w3.eth.accounts[0]
    return remote


async def one_run(url: str, node_url: str | None, deposits: int, users: int) -> Run:
    dev = dev_chain(node_url)
    usdt = dev.deploy_token("Tether", "USDT", 6, 10 ** 18)
    settings = ChainSettings(rpc_url=node_url or "http://in-process", confirmations=1,
                             tokens=(Token("USDT", usdt, 6),), start_block=dev.head() + 1,
                             max_blocks_per_poll=IN_PROCESS_POLL_BLOCKS if node_url is None
                             else ChainSettings.max_blocks_per_poll)
    wallet = HDWallet(MNEMONIC)
    chain = Chain(settings, wallet, lambda: Node(dev.w3), auto_poll=False)
    ex = Exchange(url, chains=[chain])
    await ex.start()
    try:
        ids = [str(await create_user(ex.db, f"bench{i}@chain.bench")) for i in range(users)]
        addresses = [await ex.deposit_address(u, "ETH") for u in ids]
    finally:
        await ex.stop()  # down while the backlog is mined
    first = dev.head() + 1
    log.info("mining the backlog", extra={"deposits": deposits})
    token = dev.w3.eth.contract(address=usdt, abi=erc20.ABI)
    sent = None
    for n in range(deposits):  # each in its own block (the dev nodes mine on arrival)
        to = Web3.to_checksum_address(str(addresses[n % users]))
        tx: TxParams = {"from": dev.funder, "gas": 100_000}
        if n % 2:
            tx |= {"to": usdt, "data": token.encode_abi("transfer", [to, 10 ** 6])}
        else:
            tx |= {"to": to, "value": Wei(10 ** 15)}
        sent = dev.w3.eth.send_transaction(tx)  # not waited for, one by one: fast
        if (n + 1) % 500 == 0:
            log.info("backlog progress", extra={"deposits": n + 1, "of": deposits})
    if sent is not None:
        dev.w3.eth.wait_for_transaction_receipt(sent)
    last = dev.head()
    expected = deposits

    node = Node(dev.w3)
    lowered = {a.lower() for a in addresses if a is not None}

    def read_all() -> float:
        started = time.perf_counter()
        step = settings.max_blocks_per_poll
        for lo in range(first, last + 1, step):
            node.transfers(lo, min(last, lo + step - 1), lowered, [usdt])
        return time.perf_counter() - started

    read_all()  # warm the node's caches, as for the watcher that follows

    ex = Exchange(url, chains=[chain])
    await ex.start()
    try:
        started = time.perf_counter()
        while True:
            await ex.chain_sync(settings.name)
            credited = int(await ex.db.fetch_val(
                "SELECT COUNT(*) FROM chain_deposits WHERE status = 'credited'"))
            if credited >= expected:
                break
        seconds = time.perf_counter() - started
        total = await ex.db.fetch_val("SELECT SUM(CAST(available AS NUMERIC)) FROM balances "
                                      "WHERE asset = 'USDT' AND user_id IN (SELECT user_id "
                                      "FROM deposit_addresses)")
        assert Decimal(str(total)) == expected // 2, total  # every token deposit, once
    finally:
        await ex.stop()
    floor = min(read_all(), read_all())
    return Run(expected, last - first + 1, seconds, floor)


async def bench(backends: list[str], runs: int, node_url: str | None, deposits: int,
                users: int) -> None:
    for backend in backends:
        results = []
        for n in range(runs):
            database = sqlite_database() if backend == "sqlite" else pg_database(backend)
            async with database as url:
                results.append(await one_run(url, node_url, deposits, users))
            log.info("run done", extra={"backend": backend, "run": n + 1})
        median = sorted(results, key=lambda r: r.seconds)[len(results) // 2]
        print(key_values({
            "backend": "sqlite" if backend == "sqlite" else "postgresql",
            "node": "in-process" if node_url is None else node_url,
            "deposits": median.deposits, "blocks": median.blocks,
            "deposits_per_s": round(median.deposits / median.seconds),
            "blocks_per_s": round(median.blocks / median.seconds),
            "floor_blocks_per_s": round(median.blocks / median.floor_seconds),
            "ratio": round(median.ratio, 2),
            "spread_s": f"{min(r.seconds for r in results):.2f}-"
                        f"{max(r.seconds for r in results):.2f}",
            "runs": len(results)}))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench chain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deposits", type=int, default=None,
                    help="transfers in the backlog, one per block (default 150 in-process, "
                         "2000 on a node)")
    ap.add_argument("--node-url", default=None,
                    help="a development node (anvil, ganache) instead of the in-process "
                         "chain, which is slow to read (py-evm): the ratio then measures "
                         "mostly it")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg-url", default=None,
                    help=f"PostgreSQL server (default ${PG_URL_ENV} or {DEFAULT_PG_URL})")
    args = ap.parse_args(argv)
    deposits = args.deposits or (150 if args.node_url is None else 2000)
    pg = args.pg_url or os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    backends = {"sqlite": ["sqlite"], "postgresql": [pg], "both": ["sqlite", pg]}[args.backend]
    asyncio.run(bench(backends, args.runs, args.node_url, deposits, args.users))
