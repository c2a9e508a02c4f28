"""Fixtures of the chain tests: ``chain`` runs a test on eth-tester and on ganache.

One ganache node serves the whole session (starting one costs about half a second warm,
plus the one-time npm install); each test gets it fresh-looking by a snapshot taken before
the test and reverted after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chain.nodes import ChainHarness, Ganache, GanacheHarness, TesterHarness

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
