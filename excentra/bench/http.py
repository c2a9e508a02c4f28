"""``excentra bench http``: durable order placement over real HTTP.

Starts ``excentra serve`` on a fresh PostgreSQL database (or SQLite with ``--backend``)
and, beside it, the ceiling app (``http_ceiling``: JSON parse + JWT check, nothing else)
under the same uvicorn. The same asyncio client (``--workers`` concurrent users, one
keep-alive connection each, a minimal HTTP/1.1 writer/reader) places crossing limit orders
against each in turn, runs interleaved, and the report gives durable orders/s, p50/p99
latency, and the ratio to the ceiling.

Even-numbered users sell 0.0001 BTC at 100 USDT, odd ones buy the same, so most orders
trade. Users are created in the database and their tokens minted with the server's
secret; funds arrive through ``POST /balances/deposit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import jwt

from excentra.bench.common import key_values
from excentra.bench.pipeline import DEFAULT_PG_URL, PG_URL_ENV, pg_database, pg_reachable
from excentra.db import Database, migrate
from excentra.db.users import create_user

log = logging.getLogger("excentra.bench.http")

SECRET = "bench-secret-" + "0" * 40
ORDER_PATH = "/api/v1/orders"
DEPOSITS = 40
"""0.05 BTC deposits per user: 2 BTC, 20,000 sell orders of 0.0001 each."""


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_command(port: int) -> list[str]:
    """Interpreter arguments that run ``excentra serve`` on ``port``."""
    return ["-c", "from excentra.cli import main; main()", "serve", "--host", "127.0.0.1",
            "--port", str(port)]


def serve_env(url: str) -> dict[str, str]:
    """The benchmarked server's settings: no rate limits (nor the per-address WebSocket
    cap: every client is on loopback; nor load shedding: capacity is what is measured), no
    seeded book, quiet logs."""
    return {"DATABASE_URL": url, "JWT_SECRET": SECRET, "SEED_BOOK": "0",
            "RATE_LIMITS": "off", "LOG_LEVEL": "WARNING",
            "WS_MAX_CONNECTIONS_PER_IP": "1000000", "MAX_PENDING_COMMANDS": "1000000"}


@asynccontextmanager
async def server(args: list[str], port: int, env: dict[str, str]) -> AsyncIterator[str]:
    """Run a server subprocess until ``/health`` answers on ``port``; stop it afterwards."""
    async with server_process(args, port, env) as (_, base):
        yield base


@asynccontextmanager
async def server_process(args: list[str], port: int, env: dict[str, str]
                         ) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """``server``, also yielding the process (to watch it, or read its CPU time)."""
    proc = subprocess.Popen([sys.executable, *args], env={**os.environ, **env},  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(300):
                if proc.poll() is not None:
                    raise SystemExit(f"server {args} exited with {proc.returncode}")
                try:
                    await probe.get(base + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"server {args} did not start")
        yield proc, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def make_users(url: str, n: int) -> list[str]:
    db = Database(url)
    await db.connect()
    try:
        await migrate(db)
        users = [str(await create_user(db, f"bench-http-{i}@example.com")) for i in range(n)]
    finally:
        await db.disconnect()
    return users


def token(user_id: str) -> str:
    claims = {"user_id": user_id, "role": "user", "exp": int(time.time()) + 24 * 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def fund(client: httpx.AsyncClient, base: str, users: list[str]) -> None:
    async def one(user: str) -> None:
        headers = {"Authorization": f"Bearer {token(user)}"}
        # Demo deposits are capped per request (0.05 BTC): enough of them that no seller
        # runs dry (a 422 would be a cheap non-order in the count).
        for asset, amount, times in (("USDT", "1000", 2), ("BTC", "0.05", DEPOSITS)):
            for _ in range(times):
                r = await client.post(f"{base}/api/v1/balances/deposit", headers=headers,
                                      json={"asset": asset, "amount": amount})
                r.raise_for_status()

    await asyncio.gather(*(one(u) for u in users))


class Connection:
    """A minimal HTTP/1.1 keep-alive client for one fixed request: httpx spends ~1 ms of
    CPU per request, which on this 2-core machine would measure the client, not the
    servers. Reads the status line, the headers and a ``content-length`` body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str) -> Connection:
        host, port = base.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def order_request(base: str, user: str, side: str) -> bytes:
    body = json.dumps({"symbol": "BTC/USDT", "side": side, "order_type": "limit",
                       "price": "100", "quantity": "0.0001"}).encode()
    host = base.removeprefix("http://")
    return (f"POST {ORDER_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token(user)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def drive(base: str, users: list[str], seconds: float) -> tuple[Load, float]:
    load = Load()
    deadline = time.perf_counter() + seconds

    async def worker(index: int, user: str) -> None:
        raw = order_request(base, user, "sell" if index % 2 == 0 else "buy")
        conn = await Connection.open(base)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, _ = await conn.request(raw)
                load.statuses[status] = load.statuses.get(status, 0) + 1
                if status == 200:
                    load.ok += 1
                    load.latencies.append(time.perf_counter() - started)
                else:
                    load.failed += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i, u) for i, u in enumerate(users)))
    return load, time.perf_counter() - started


@dataclass
class Measured:
    per_sec: float
    p50_ms: float
    p99_ms: float


def measured(load: Load, seconds: float) -> Measured:
    if len(load.latencies) < 2:
        raise SystemExit(f"too few successful requests: {load.statuses}")
    cuts = statistics.quantiles(sorted(load.latencies), n=100, method="inclusive")
    return Measured(load.ok / seconds, cuts[49] * 1e3, cuts[98] * 1e3)


async def bench(a: argparse.Namespace, url: str) -> tuple[list[Measured], list[Measured]]:
    users = await make_users(url, a.workers)
    port, ceiling_port = free_port(), free_port()
    env = serve_env(url)
    serve = serve_command(port)
    ceiling = ["-m", "uvicorn", "excentra.bench.http_ceiling:app", "--host", "127.0.0.1",
               "--port", str(ceiling_port), "--log-level", "warning", "--no-access-log"]
    ours: list[Measured] = []
    theirs: list[Measured] = []
    async with server(serve, port, env) as base, \
            server(ceiling, ceiling_port, {"JWT_SECRET": SECRET}) as ceiling_base:
        async with httpx.AsyncClient(timeout=60) as client:
            await fund(client, base, users)
        log.info("funded", extra={"users": len(users)})
        for run in range(a.runs):
            for name, target, into in (("ceiling", ceiling_base, theirs),
                                       ("excentra", base, ours)):
                await drive(target, users, a.warmup)
                load, seconds = await drive(target, users, a.seconds)
                into.append(measured(load, seconds))
                log.info("run", extra={"run": run + 1, "target": name,
                                       "per_sec": round(into[-1].per_sec),
                                       "p50_ms": round(into[-1].p50_ms, 2),
                                       "p99_ms": round(into[-1].p99_ms, 2),
                                       "statuses": load.statuses})
    return ours, theirs


async def run(a: argparse.Namespace) -> tuple[list[Measured], list[Measured]]:
    if a.backend == "postgresql":
        if not await pg_reachable(a.pg_url):
            raise SystemExit(f"PostgreSQL is not reachable at {a.pg_url}")
        async with pg_database(a.pg_url) as url:
            return await bench(a, url)
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        return await bench(a, f"sqlite:///{tmp}/bench.db")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench http", description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs; medians reported")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    ap.add_argument("--workers", type=int, default=64, help="concurrent users (connections)")
    ap.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--pg-url", default=os.environ.get(PG_URL_ENV, DEFAULT_PG_URL))
    a = ap.parse_args(argv)
    ours, theirs = asyncio.run(run(a))

    def med(runs: list[Measured], attr: str) -> float:
        values: list[float] = [getattr(r, attr) for r in runs]
        return statistics.median(values)

    for name, runs in (("excentra", ours), ("ceiling", theirs)):
        print(f"{name:<9} {med(runs, 'per_sec'):>8,.0f} req/s  p50 {med(runs, 'p50_ms'):.2f} ms"
              f"  p99 {med(runs, 'p99_ms'):.2f} ms  (median of {len(runs)}, {a.workers} "
              f"clients, {a.backend})")
    print(key_values({
        "ratio": f"{med(ours, 'per_sec') / med(theirs, 'per_sec'):.3f}",
        "http_orders_per_sec": round(med(ours, "per_sec")),
        "ceiling_per_sec": round(med(theirs, "per_sec")),
        "p50_ms": f"{med(ours, 'p50_ms'):.2f}", "p99_ms": f"{med(ours, 'p99_ms'):.2f}",
        "ceiling_p50_ms": f"{med(theirs, 'p50_ms'):.2f}",
        "ceiling_p99_ms": f"{med(theirs, 'p99_ms'):.2f}",
        "backend": a.backend, "workers": a.workers,
    }))
