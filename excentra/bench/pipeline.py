"""``excentra bench pipeline``: durable orders and cancels per second through the facade.

N coroutines (one user each) place limit orders and cancel their own open ones through the
``Exchange``: the whole pipeline (idempotency lookup, hold, match, settle, group commit,
acknowledgement) on a fresh SQLite file and a fresh PostgreSQL database. Buyers and sellers
quote around one price, a few ticks through it, so that trades happen; a user only ever
quotes one side, so no order crosses its owner's own.

Reported per backend (median of ``--runs``): acknowledged orders + cancels per second
(acknowledged = in the event log), p50/p99 latency of a facade call, the journal's mean
batch size (commands per commit), the projection's lag (log entries not yet in the tables,
p99 over the run) and how long after the last acknowledgement the tables had everything
("drain"). With ``--profile``, CPU µs per command per thread and for the PostgreSQL server
(``excentra.bench.cpu``), counted from the first command to the end of the drain.
The ``ratio=`` is durable commands/s over the engine alone: the same command flow, in
the order it was issued, replayed straight through ``OrderBook`` on one thread.
Users, balances and deposits are set up before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # no stubs

from excentra.actors.bridge import Rejected
from excentra.actors.journal import JournalStats
from excentra.bench import cpu
from excentra.bench.common import key_values
from excentra.db.users import create_user
from excentra.engine import OrderBook, OrderType, PairSpec, Side
from excentra.exchange import Exchange

log = logging.getLogger("excentra.bench.pipeline")

PG_URL_ENV = "EXCENTRA_BENCH_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DECIMALS = {"BTC/USDT": (8, 6), "ETH/USDT": (18, 6), "SOL/USDT": (9, 6)}
"""(base, quote) decimals of the seeded pairs, on their default grid (as the core's)."""
SYMBOLS = tuple(DECIMALS)
MID, TICK, LOT = Decimal("100.00"), Decimal("0.01"), Decimal("0.0001")
FUNDS = {"USDT": Decimal(100_000_000), "BTC": Decimal(1_000_000),
         "ETH": Decimal(1_000_000), "SOL": Decimal(1_000_000)}

# The flow replayed through the engine: (0, key, user, side, price, quantity, symbol) for a
# placement, (1, key, user, None, None, None, symbol) for a cancel of placement ``key``.
FlowOp = tuple[int, str, int, Side | None, Decimal | None, Decimal | None, str]


@dataclass
class Load:
    """What the coroutines did: the flow (issue order), latencies, acknowledgements."""

    flow: list[FlowOp] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    acked: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    backend: str
    commands_per_sec: float
    p50_ms: float
    p99_ms: float
    mean_batch: float
    engine_ops_per_sec: float
    acked: int
    issued: int
    lag_p99: float = 0.0
    """Log entries not yet projected, p99 of the samples taken at each projected batch."""
    drain_ms: float = 0.0
    """From the last acknowledgement until the tables showed every entry."""
    profile: dict[str, float] = field(default_factory=dict)
    """CPU µs per command per thread group (``--profile``)."""


# -- the load -----------------------------------------------------------------------------


async def worker(ex: Exchange, load: Load, index: int, user: str, commands: int,
                 deadline: float, a: argparse.Namespace, seed: int) -> None:
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 (a workload, not a secret)
    side = Side.BUY if index % 2 == 0 else Side.SELL
    sign = 1 if side is Side.BUY else -1
    own: list[tuple[str, str, str]] = []  # (order id, flow key, symbol) believed open
    n = 0
    while n < commands and time.perf_counter() < deadline:
        n += 1
        key = f"w{index}-{n}"
        started = time.perf_counter()
        if own and rng.random() < a.cancel_share:
            order_id, placed, symbol = own.pop(rng.randrange(len(own)))
            load.flow.append((1, placed, index, None, None, None, symbol))
            r = await ex.cancel_order(user, order_id)
        else:
            symbol = rng.choice(SYMBOLS)
            price = MID + sign * rng.randint(-8, 2) * TICK
            quantity = rng.randint(1, 500) * LOT
            load.flow.append((0, key, index, side, price, quantity, symbol))
            r = await ex.place_order(user, symbol, side, OrderType.LIMIT, price=price,
                                     quantity=quantity,
                                     client_order_id=key if a.client_ids else None)
            if not isinstance(r, Rejected) and r["status"] in ("open", "partially_filled"):
                own.append((r["order_id"], key, symbol))
        load.latencies.append(time.perf_counter() - started)
        if isinstance(r, Rejected):
            load.rejected[r.code.value] = load.rejected.get(r.code.value, 0) + 1
        else:
            load.acked += 1


async def setup_users(ex: Exchange, n: int) -> list[str]:
    users = [str(await create_user(ex.db, f"bench{i}@example.com")) for i in range(n)]
    results = await asyncio.gather(*(ex.deposit(u, asset, amount)
                                     for u in users for asset, amount in FUNDS.items()))
    failed = [r for r in results if isinstance(r, Rejected)]
    if failed:
        raise SystemExit(f"setup deposits rejected: {failed[:3]}")
    return users


async def journal_stats(ex: Exchange) -> JournalStats:
    """A copy of the journal actor's counters (asked by message, like any actor state)."""
    stats = await ex.journal_stats()
    if isinstance(stats, Rejected):
        raise SystemExit(f"the journal did not answer: {stats}")
    return stats


@dataclass
class Timed:
    """What one timed load measured besides the ``Load``."""

    seconds: float
    mean_batch: float
    lag_p99: float
    drain_ms: float
    profile: dict[str, float]


async def run_pipeline(url: str, a: argparse.Namespace, seed: int) -> tuple[Load, Timed]:
    """One timed load on a fresh database."""
    async with Exchange(url, projector=a.projector) as ex:
        users = await setup_users(ex, a.workers)
        await ex.watermarks.reached(ex.watermarks.logged, 60)  # the setup projected
        ex.watermarks.lags.clear()
        before = await journal_stats(ex)
        load = Load()
        per_worker, extra = divmod(a.commands, a.workers)
        deadline = time.perf_counter() + (a.seconds or math.inf)
        cpu_before = cpu.snapshot(with_postgres=url.startswith("postgresql"))
        started = time.perf_counter()
        await asyncio.gather(*(
            worker(ex, load, i, u, per_worker + (i < extra), deadline, a, seed)
            for i, u in enumerate(users)))
        seconds = time.perf_counter() - started
        if not await ex.watermarks.reached(ex.watermarks.logged, 300):
            raise SystemExit("the projection did not catch up within 300 s")
        drain = time.perf_counter() - started - seconds
        profile = cpu.per_command(cpu_before,
                                  cpu.snapshot(with_postgres=url.startswith("postgresql")),
                                  load.acked)
        lags = sorted(ex.watermarks.lags) or [0]
        lag_p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        after = await journal_stats(ex)
        batches = after.batches - before.batches
        writing = after.seconds - before.seconds
        mean_batch = (after.commands - before.commands) / batches if batches else 0.0
        log.info("journal", extra={
            "batches": batches, "busy_share": round(writing / seconds, 3),
            "mean_write_ms": round(writing / max(batches, 1) * 1e3, 2),
            "max_batch": after.max_batch})
        projected = await ex.projection_stats()
        if not isinstance(projected, Rejected):
            log.info("projector", extra={
                "transactions": projected.batches, "entries": projected.commands,
                "mean_batch": round(projected.mean_batch, 1),
                "busy_share": round(projected.seconds / (seconds + drain), 3),
                "lag_p99": lag_p99, "drain_ms": round(drain * 1e3, 1)})
    return load, Timed(seconds, mean_batch, lag_p99, drain * 1e3, profile)


# -- the engine alone ---------------------------------------------------------------------


def replay(flow: list[FlowOp]) -> float:
    """The flow through one ``OrderBook`` per pair, single-threaded: seconds."""
    books = {s: OrderBook(PairSpec.derive(s, *d)) for s, d in DECIMALS.items()}
    started = time.perf_counter()
    for kind, key, user, side, price, quantity, symbol in flow:
        if kind == 0:
            books[symbol].place_limit(key, user, side, price, quantity)  # type: ignore[arg-type]
        else:
            books[symbol].cancel(key, user)
    return time.perf_counter() - started


def engine_rate(flow: list[FlowOp], passes: int = 5) -> float:
    """Median of ``passes`` replays, the heap collected and frozen first (as in the
    engine bench: the pipeline's garbage must not be traversed inside the clock)."""
    gc.collect()
    gc.freeze()
    try:
        seconds = [replay(flow) for _ in range(passes)]
    finally:
        gc.unfreeze()
    log.info("engine replay", extra={"ops": len(flow),
                                     "seconds": [round(s, 4) for s in seconds]})
    return len(flow) / statistics.median(seconds)


# -- databases ------------------------------------------------------------------------------


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="excentra-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def _admin_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@asynccontextmanager
async def pg_database(server_url: str) -> AsyncIterator[str]:
    """A fresh, uniquely named database on the server, dropped afterwards."""
    name = f"excentra_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_admin_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(_admin_dsn(server_url))
        try:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()


async def pg_reachable(server_url: str) -> bool:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_admin_dsn(server_url)), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        log.warning("PostgreSQL unreachable: skipping it",
                    extra={"url": server_url, "error": repr(exc)})
        return False
    await conn.close()
    return True


# -- one backend ----------------------------------------------------------------------------


async def one_run(backend: str, a: argparse.Namespace, seed: int) -> RunResult:
    database = sqlite_database() if backend == "sqlite" else pg_database(a.pg_url)
    async with database as url:
        load, timed = await run_pipeline(url, a, seed)
    lat = sorted(load.latencies)
    cuts = statistics.quantiles(lat, n=100, method="inclusive")
    seconds, mean_batch = timed.seconds, timed.mean_batch
    result = RunResult(backend, load.acked / seconds, cuts[49] * 1e3, cuts[98] * 1e3,
                       mean_batch, engine_rate(load.flow), load.acked, len(load.flow),
                       timed.lag_p99, timed.drain_ms, timed.profile)
    log.info("pipeline run", extra={
        "backend": backend, "seconds": round(seconds, 3), "issued": result.issued,
        "acked": result.acked, "rejected": load.rejected,
        "cancels": sum(op[0] for op in load.flow),
        "commands_per_sec": round(result.commands_per_sec),
        "p50_ms": round(result.p50_ms, 2), "p99_ms": round(result.p99_ms, 2),
        "mean_batch": round(mean_batch, 1),
        "engine_ops_per_sec": round(result.engine_ops_per_sec)})
    return result


def _median(runs: list[RunResult], attr: str) -> float:
    values: list[float] = [getattr(r, attr) for r in runs]
    return statistics.median(values)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench pipeline", description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="runs per backend; medians reported")
    ap.add_argument("--commands", type=int, default=20_000,
                    help="orders + cancels issued per run (all workers together)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="stop each run after this long, even below --commands")
    ap.add_argument("--workers", type=int, default=64, help="concurrent coroutines (users)")
    ap.add_argument("--cancel-share", type=float, default=0.3,
                    help="share of commands that cancel one of the worker's open orders")
    ap.add_argument("--no-client-ids", dest="client_ids", action="store_false",
                    help="place orders without a client_order_id (no idempotency key)")
    ap.add_argument("--pg-url", default=os.environ.get(PG_URL_ENV, DEFAULT_PG_URL),
                    help=f"PostgreSQL server (a fresh database is made there; ${PG_URL_ENV})")
    ap.add_argument("--backends", default="sqlite,postgresql",
                    help="comma-separated: sqlite, postgresql")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--projector", choices=("process", "thread"), default="process",
                    help="where the tables are projected (the server's default: process)")
    ap.add_argument("--profile", action="store_true",
                    help="print CPU µs per command per thread and for the PostgreSQL "
                         "server (from /proc)")
    a = ap.parse_args(argv)
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if "postgresql" in backends and not asyncio.run(pg_reachable(a.pg_url)):
        backends.remove("postgresql")
    results: dict[str, list[RunResult]] = {}
    for backend in backends:
        for i in range(a.runs):
            log.info("run %d/%d on %s", i + 1, a.runs, backend)
            results.setdefault(backend, []).append(asyncio.run(one_run(backend, a, a.seed + i)))
    if not results:
        raise SystemExit("no backend ran")
    report(results, a)


def report(results: dict[str, list[RunResult]], a: argparse.Namespace) -> None:
    engine = statistics.median(r.engine_ops_per_sec for rs in results.values() for r in rs)
    for backend, runs in results.items():
        print(f"{backend:<10} {_median(runs, 'commands_per_sec'):>8,.0f} durable commands/s  "
              f"p50 {_median(runs, 'p50_ms'):.2f} ms  p99 {_median(runs, 'p99_ms'):.2f} ms  "
              f"mean batch {_median(runs, 'mean_batch'):.1f}  "
              f"projection lag p99 {_median(runs, 'lag_p99'):,.0f} entries, "
              f"drained {_median(runs, 'drain_ms'):,.0f} ms after the last ack  "
              f"(median of {len(runs)}; {a.workers} workers, {a.commands:,} commands)")
        if a.profile:
            print(f"  CPU µs per command on {backend} (median of {len(runs)}):")
            for name in runs[0].profile:
                values = [r.profile.get(name, 0.0) for r in runs]
                print(f"    {name:<28} {statistics.median(values):8.1f}")
    print(f"engine     {engine:>8,.0f} ops/s on the same flows, one thread")
    main_backend = "postgresql" if "postgresql" in results else "sqlite"
    short = {"postgresql": "pg", "sqlite": "sqlite"}

    def each(*columns: tuple[str, str, str]) -> dict[str, object]:
        """Per backend, then per (attribute, name, format): a median or "na"."""
        return {f"{short[b]}_{name}": format(_median(results[b], attr), fmt)
                if b in results else "na" for b in short for attr, name, fmt in columns}

    print(key_values({
        "ratio": f"{_median(results[main_backend], 'commands_per_sec') / engine:.4f}",
        **each(("commands_per_sec", "orders_per_sec", ".0f")),
        "engine_ops_per_sec": round(engine),
        **each(("p50_ms", "p50_ms", ".2f"), ("p99_ms", "p99_ms", ".2f")),
        **each(("mean_batch", "mean_batch", ".1f")),
        **each(("lag_p99", "lag_p99", ".0f"), ("drain_ms", "drain_ms", ".0f")),
    }))
