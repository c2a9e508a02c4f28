"""``excentra bench soak``: minutes of mixed traffic; errors, latency, RSS, conservation.

Starts ``excentra serve`` in its own process on a fresh database (SQLite by default; with
``--database-url postgresql://…`` a fresh database on that server, dropped afterwards),
with rate limits lifted as the other benches do (``bench.http.serve_env``), creates and
funds ``--traders`` users, and drives from this process, for ``--minutes``: traders placing
and cancelling limit orders around a price (so trades happen), market orders, deposits,
withdrawals and reads (``bench.soak_traffic``), and ``--subscribers`` WebSocket clients on
the public channels and, half of them, a trader's private one. The number of clients is
bounded: the load generator and the server share the machine's cores.

Every ``--report-every`` seconds a progress line goes to stderr (ops so far, the current
rate, the server's RSS). At the end: ops/s and p50/p99 latency per kind, errors by status
(5xx and transport errors called out), the server's RSS at start (after funding), peak and
end (``VmRSS`` of ``/proc/<pid>/status``, sampled each second), and, once the server has
stopped, the ledger audit of the database (``excentra.db.audit``): every asset's balances
add up to deposits minus withdrawals, every user's ``held`` equals its open orders'
reservations, no finished order holds funds. Exit status 1 if the audit fails, any answer
was a 5xx, any request got no answer, or the server died.

``--tracemalloc DIR`` runs the server under ``tracemalloc`` and has it dump a snapshot at
each third of the run (``SIGUSR1``); the report lists the allocation sites that grew most
between them (slows the server: for finding a leak, not for figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from excentra.bench.common import key_values
from excentra.bench.http import (
    free_port,
    fund,
    make_users,
    serve_command,
    serve_env,
    server_process,
)
from excentra.bench.pipeline import pg_database, pg_reachable, sqlite_database
from excentra.bench.soak_traffic import KINDS, Tally, Trader, cuts, subscriber
from excentra.db import Database
from excentra.db.audit import audit

TRACED_SERVE = """\
import os, signal, sys, tracemalloc
tracemalloc.start()
DIR, dumped = sys.argv.pop(1), [0]
def dump(_signum, _frame):
    dumped[0] += 1
    path = os.path.join(DIR, f"snapshot-{dumped[0]}")
    tracemalloc.take_snapshot().dump(path + ".part")
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR1, dump)
from excentra.cli import main
main()
"""
"""The server under ``tracemalloc``: a snapshot into DIR (its first argument) per SIGUSR1."""


@dataclass
class Rss:
    """The server's resident set size in bytes, sampled."""

    pid: int
    start: int = 0
    peak: int = 0
    end: int = 0
    series: list[tuple[float, int]] = field(default_factory=list)

    def read(self) -> int:
        """``VmRSS`` now (0 once the process is gone)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def sample(self, at: float) -> int:
        now = self.read()
        self.peak = max(self.peak, now)
        self.series.append((at, now))
        return now


@dataclass
class Run:
    """What a soak measured."""

    seconds: float
    tally: Tally
    rss: Rss
    problems: list[str]
    """The audit's findings, and the server's death if it died."""
    orders: int = 0
    trades: int = 0
    growth: list[str] = field(default_factory=list)
    """With ``--tracemalloc``: the sites that grew most, as readable lines."""


def mb(size: int) -> str:
    return f"{size / 2**20:.1f}"


async def soak(a: argparse.Namespace, url: str) -> Run:
    users = await make_users(url, a.traders)
    port = free_port()
    command = serve_command(port)
    if a.tracemalloc:
        Path(a.tracemalloc).mkdir(parents=True, exist_ok=True)
        command = ["-c", TRACED_SERVE, str(Path(a.tracemalloc).resolve()), *command[2:]]
    async with server_process(command, port, serve_env(url)) as (proc, base):
        async with httpx.AsyncClient(timeout=60) as client:
            await fund(client, base, users)
        rss = Rss(proc.pid)
        rss.start = rss.sample(0.0)
        tally, stop = Tally(), asyncio.Event()
        clients = [Trader(base, u, a.seed + i, tally).run(stop) for i, u in enumerate(users)]
        ws_url = base.replace("http://", "ws://") + "/ws"
        clients += [subscriber(ws_url, users[i % len(users)] if i % 2 == 0 else None,
                               tally, stop) for i in range(a.subscribers)]
        running = [asyncio.ensure_future(c) for c in clients]
        started = time.perf_counter()
        died = await watch(a, proc, rss, tally)
        stop.set()
        await asyncio.gather(*running)
        seconds = time.perf_counter() - started
        rss.end = rss.read()
    problems = [f"the server died (exit code {died})"] if died is not None else []
    run = Run(seconds, tally, rss, problems)
    await check(url, run)
    if a.tracemalloc:
        run.growth = growth(Path(a.tracemalloc))
    return run


async def watch(a: argparse.Namespace, proc: Any, rss: Rss, tally: Tally) -> int | None:
    """Sample RSS each second and report progress until the time is up; the server's exit
    code if it died meanwhile. With ``--tracemalloc``, a snapshot at each third."""
    started = time.perf_counter()
    duration = a.seconds if a.seconds is not None else a.minutes * 60
    thirds = [duration * k / 3 for k in (1, 2, 3)] if a.tracemalloc else []
    last_report, last_ops = started, 0
    while (elapsed := time.perf_counter() - started) < duration:
        await asyncio.sleep(min(1.0, duration - elapsed))
        if proc.poll() is not None:
            return int(proc.returncode)
        now = time.perf_counter()
        rss.sample(now - started)
        if thirds and now - started >= thirds[0] - 1.0:
            thirds.pop(0)
            await snapshot(proc, Path(a.tracemalloc))
        if now - last_report >= a.report_every:
            ops = tally.ops
            rate = (ops - last_ops) / (now - last_report)
            print(f"[{now - started:6.0f} s] ops {ops:,}  now {rate:,.0f}/s  5xx "
                  f"{tally.server_errors}  transport {sum(tally.transport.values())}"
                  f"  ws events {tally.ws_events:,}  server RSS {mb(rss.series[-1][1])} MB",
                  file=sys.stderr, flush=True)
            last_report, last_ops = now, ops
    return None


async def snapshot(proc: Any, folder: Path) -> None:
    """Have the traced server dump a snapshot; wait until the file is whole."""
    expected = len(list(folder.glob("snapshot-*[0-9]"))) + 1
    os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not (folder / f"snapshot-{expected}").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the traced server wrote no snapshot")
        await asyncio.sleep(0.2)


def growth(folder: Path, top: int = 15) -> list[str]:
    """The allocation sites that grew most from each snapshot to the next."""
    paths = sorted(folder.glob("snapshot-*[0-9]"), key=lambda p: int(p.name.split("-")[1]))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    snaps = [tracemalloc.Snapshot.load(str(p)).filter_traces(ignore) for p in paths]
    lines: list[str] = []
    for i in range(1, len(snaps)):
        lines.append(f"growth from snapshot {i} to {i + 1}:")
        for stat in snaps[i].compare_to(snaps[i - 1], "lineno")[:top]:
            lines.append(f"  {stat}")
    return lines


async def check(url: str, run: Run) -> None:
    """The audit of the stopped server's database, and what it holds."""
    db = Database(url)
    await db.connect()
    try:
        run.problems += await audit(db)
        run.orders = int(await db.fetch_val("SELECT COUNT(*) FROM orders"))
        run.trades = int(await db.fetch_val("SELECT COUNT(*) FROM trades"))
    finally:
        await db.disconnect()


@contextlib.asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """A fresh database: SQLite in a temporary folder, or one made on a PostgreSQL
    server (dropped afterwards); any other URL is used as given."""
    if url is None:
        async with sqlite_database() as fresh:
            yield fresh
    elif url.startswith("postgres"):
        if not await pg_reachable(url):
            raise SystemExit(f"PostgreSQL is not reachable at {url}")
        async with pg_database(url) as fresh:
            yield fresh
    else:
        yield url


def report(a: argparse.Namespace, run: Run) -> bool:
    """Print the figures; whether the soak passed."""
    t, seconds = run.tally, run.seconds
    backend = "postgresql" if (a.database_url or "").startswith("postgres") else "sqlite"
    print(f"soak {seconds:.0f} s on {backend}: {a.traders} traders, {a.subscribers} "
          f"WebSocket subscribers")
    print(f"{'kind':<10} {'ok':>9} {'ok/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in KINDS:
        p50, p99 = cuts(t.latencies[kind])
        print(f"{kind:<10} {t.ok[kind]:>9,} {t.ok[kind] / seconds:>8.1f} {p50:>8.2f} "
              f"{p99:>8.2f}")
    total_ok = sum(t.ok.values())
    print(f"{'all':<10} {total_ok:>9,} {total_ok / seconds:>8.1f}")
    by_status: dict[int, int] = {}
    for (_, status), n in t.statuses.items():
        by_status[status] = by_status.get(status, 0) + n
    print("errors by status: " + (", ".join(
        f"{s}×{n}" for s, n in sorted(by_status.items())) or "none") + "  (" + ", ".join(
        f"{k} {s}×{n}" for (k, s), n in sorted(t.statuses.items())) + ")")
    for (kind, status), body in sorted(t.samples.items()):
        print(f"  first {kind} {status}: {body}")
    transport = sum(t.transport.values())
    if t.server_errors or transport:
        print(f"!!! {t.server_errors} answers were 5xx and {transport} requests got no "
              f"answer: {dict(t.transport)}")
    print(f"websocket: {t.ws_events:,} events received; trouble: {dict(t.ws_errors) or 'none'}")
    print(f"server RSS MB: start {mb(run.rss.start)}  peak {mb(run.rss.peak)}  "
          f"end {mb(run.rss.end)}")
    print(f"on record: {run.orders:,} orders, {run.trades:,} trades")
    print("conservation: " + ("ok (balances = deposits - withdrawals per asset; held = open "
                              "orders' reservations)" if not run.problems else "FAILED"))
    for problem in run.problems[:20]:
        print(f"!!! {problem}")
    for line in run.growth:
        print(line)
    passed = not (run.problems or t.server_errors or transport)
    print(key_values({
        "passed": passed, "seconds": round(seconds), "backend": backend,
        "ops_per_sec": round(t.ops / seconds, 1), "server_errors": t.server_errors,
        "transport_errors": transport, "rss_start_mb": mb(run.rss.start),
        "rss_peak_mb": mb(run.rss.peak), "rss_end_mb": mb(run.rss.end),
        "orders": run.orders, "trades": run.trades,
        "conservation": "ok" if not run.problems else "failed"}))
    return passed


async def _main(a: argparse.Namespace) -> Run:
    async with database(a.database_url) as url:
        return await soak(a, url)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="how long (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="how long, in seconds "
                    "(overrides --minutes; for quick checks)")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server (a fresh database is made there); "
                         "default: SQLite in a temporary folder")
    ap.add_argument("--traders", type=int, default=16,
                    help="users placing, cancelling and reading, one connection each")
    ap.add_argument("--subscribers", type=int, default=8, help="WebSocket clients")
    ap.add_argument("--report-every", type=float, default=10.0,
                    help="seconds between progress lines (stderr)")
    ap.add_argument("--seed", type=int, default=1, help="the traders' random seed")
    ap.add_argument("--tracemalloc", metavar="DIR", default=None,
                    help="trace the server's allocations; snapshots go to DIR")
    a = ap.parse_args(argv)
    if a.traders < 1 or a.subscribers < 0 or (a.seconds or a.minutes * 60) <= 0:
        raise SystemExit("need traders ≥ 1, subscribers ≥ 0 and a positive duration")
    if not report(a, asyncio.run(_main(a))):
        raise SystemExit(1)
