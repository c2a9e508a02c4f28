"""``excentra bench soak`` for a few seconds, as a user runs it: it starts its own server,
drives mixed traffic, and reports figures and a passed audit; and its verdict fails on a
5xx, an unanswered request or a failed audit."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from excentra.bench.soak import Rss, Run, report
from excentra.bench.soak_traffic import KINDS, Tally
from tests.conftest import pg_server_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_a_short_soak_passes_and_reports_every_figure(backend: str) -> None:
    url = ["--database-url", pg_server_url()] if backend == "postgresql" else []
    done = subprocess.run(
        [sys.executable, "-c", "from excentra.cli import main; main()", "bench", "soak",
         "--seconds", "5", "--traders", "4", "--subscribers", "2", "--report-every", "2",
         *url], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert f"on {backend}: 4 traders, 2 WebSocket subscribers" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    for kind in ("limit", "cancel", "market", "orderbook", "balances"):
        assert int(rows[kind][1].replace(",", "")) > 0, out  # each kind was answered
    assert "server RSS MB: start " in out
    assert "conservation: ok" in out
    last = dict(item.split("=", 1) for item in out.strip().splitlines()[-1].split())
    assert last["passed"] == "True"
    assert last["server_errors"] == last["transport_errors"] == "0"
    assert int(last["trades"]) > 0, "the traffic must trade"
    assert float(last["rss_peak_mb"]) >= float(last["rss_start_mb"]) > 0
    assert "] ops " in done.stderr  # progress lines


def _run(tally: Tally, problems: list[str]) -> Run:
    rss = Rss(pid=0, start=50 << 20, peak=60 << 20, end=55 << 20)
    return Run(10.0, tally, rss, problems, orders=10, trades=5)


_ARGS = argparse.Namespace(database_url=None, traders=2, subscribers=0)


def test_the_verdict_fails_on_a_5xx(capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    tally.ok["limit"] = 3
    tally.statuses[("limit", 503)] = 1
    assert not report(_ARGS, _run(tally, []))
    assert "!!! 1 answers were 5xx" in capsys.readouterr().out


def test_the_verdict_fails_on_a_request_with_no_answer() -> None:
    tally = Tally()
    tally.transport["cancel"] = 1
    assert not report(_ARGS, _run(tally, []))


def test_the_verdict_fails_when_the_audit_does(capsys: pytest.CaptureFixture[str]) -> None:
    problem = "USDT: balances total 10 != journal total 9 (deposits - withdrawals)"
    assert not report(_ARGS, _run(Tally(), [problem]))
    out = capsys.readouterr().out
    assert "conservation: FAILED" in out
    assert f"!!! {problem}" in out


def test_a_clean_run_passes() -> None:
    tally = Tally()
    for kind in KINDS:
        tally.ok[kind] = 2
        tally.latencies[kind].extend([0.001, 0.002])
    tally.statuses[("cancel", 400)] = 1  # a cancel of an order filled meanwhile: fine
    assert report(_ARGS, _run(tally, []))
