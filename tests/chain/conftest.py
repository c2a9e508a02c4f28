"""Fixtures of the chain tests: ``chain`` runs a test on eth-tester and on ganache.

One ganache node serves the whole session (starting one costs about half a second warm,
plus the one-time npm install); each test gets it fresh-looking by a snapshot taken before
the test and reverted after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from excentra.chain.wallet import HDWallet
from tests.chain.custody import MNEMONIC, Custody, custody_settings, node_for
from tests.chain.nodes import (
    Anvil,
    AnvilHarness,
    ChainHarness,
    Ganache,
    GanacheHarness,
    TesterHarness,
)

CHAINS = [
    pytest.param("tester", id="tester"),
    pytest.param("ganache", id="ganache", marks=pytest.mark.ganache),
]


@pytest.fixture(scope="session")
def ganache_server() -> Iterator[str]:
    """The URL of the session's ganache node (skips, or fails under CI, without Node.js)."""
    node = Ganache()
    url = node.start()
    try:
        yield url
    finally:
        node.stop()


@pytest.fixture(params=CHAINS)
def chain(request: pytest.FixtureRequest) -> Iterator[ChainHarness]:
    """A dev chain of the parametrized kind, in the state it had before the test."""
    if request.param == "tester":
        yield TesterHarness()
        return
    harness = GanacheHarness(request.getfixturevalue("ganache_server"))
    snap = harness.snapshot()
    try:
        yield harness
    finally:
        harness.revert(snap)


@pytest_asyncio.fixture
async def custody(chain: ChainHarness, database_url: str) -> AsyncIterator[Custody]:
    """An exchange watching ``chain`` (its own USDT token deployed), on a fresh database."""
    usdt = await asyncio.to_thread(chain.deploy_token, "Tether", "USDT", 6, 10 ** 15)
    c = Custody(chain, usdt, database_url, HDWallet(MNEMONIC), custody_settings(chain, usdt),
                node_for(chain))
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


@pytest.fixture
def ganache(ganache_server: str) -> Iterator[GanacheHarness]:
    """The session's ganache node, as it was before the test (for ganache-only tests)."""
    harness = GanacheHarness(ganache_server)
    snap = harness.snapshot()
    try:
        yield harness
    finally:
        harness.revert(snap)


@pytest.fixture(scope="session")
def anvil_server() -> Iterator[str]:
    """The URL of the session's anvil node (installed from npm like ganache)."""
    node = Anvil()
    url = node.start()
    try:
        yield url
    finally:
        node.stop()


@pytest.fixture
def anvil(anvil_server: str) -> Iterator[AnvilHarness]:
    harness = AnvilHarness(anvil_server)
    snap = harness.snapshot()
    try:
        yield harness
    finally:
        harness.start_mining()
        harness.revert(snap)
