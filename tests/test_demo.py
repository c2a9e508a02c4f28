"""The demos run as a user runs them: ``excentra demo …`` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXCENTRA = [sys.executable, "-c", "from excentra.cli import main; main()"]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([*EXCENTRA, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "LOG_LEVEL": "warning", **(env or {})},
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_engine_demo_narrates_a_session() -> None:
    out = run("demo", "engine")
    assert "trade     c1 took 0.5000 from a1 @ 50000.00" in out
    assert "rejected  e1: price_off_tick" in out
    assert "(self_trade)" in out


@pytest.mark.slow
def test_supervisor_demo_recovers_with_nothing_acknowledged_lost(database_url: str) -> None:
    out = run("demo", "supervisor", env={"DATABASE_URL": database_url})
    assert "supervisor rebuilt the BTC/USDT book alone (1 book recovery, 0 whole-core)" in out
    assert "equals the open orders in the database: True" in out
    assert "ETH/USDT meanwhile (its own book actor): 40 of 40 orders acknowledged" in out
    assert "acknowledged orders missing from the database: 0" in out
    assert "orders placed twice: 0" in out
    assert "ledger audit: balanced" in out


def test_chain_demo_deposits_trades_and_withdraws_on_an_in_process_chain(
        database_url: str) -> None:
    out = run("demo", "chain", env={"DATABASE_URL": database_url})
    assert "ETH credited (3/3), USDT credited (3/3)" in out
    assert "pending (1/3)" in out  # confirmations were counted, not skipped
    assert "alice: ETH 1, USDT 2000" in out
    assert "deposit addresses left with 0 wei and 0.000000 USDT" in out
    assert "holds 1500.000000 USDT" in out
    assert "holds 0.900000000000000000 ETH" in out
    assert "bob: ETH 0.0995, USDT 3000" in out  # 1 - 0.9 - the 0.0005 fee, exactly
    assert "ledger audit: balanced" in out
