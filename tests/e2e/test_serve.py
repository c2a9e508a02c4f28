"""``excentra serve`` for real: the installed command in a child process, spoken to over
TCP with httpx, stopped with SIGTERM (graceful: exit status 0, every log line JSON).

The first admin comes from ``excentra admin create`` (the only way, API.md); traders
register through the API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

D = Decimal
BIN = Path(sys.executable).parent
EXCENTRA = str(BIN / "excentra")
STARTUP_TIMEOUT = 20.0
SECRET = "e2e-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "JWT_SECRET", "PORT", "SEED_BOOK", "LOG_LEVEL")}
    env.update({"DATABASE_URL": database_url, "JWT_SECRET": SECRET, "SEED_BOOK": "0",
                "LOG_LEVEL": "INFO"})
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


@pytest_asyncio.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    env = child_env(database_url)
    made = subprocess.run(  # also migrates the fresh database
        [EXCENTRA, "admin", "create", "--email", "root@example.com", "--password",
         "rootpassword1"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [EXCENTRA, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    running = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_healthy(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_serve(env: dict[str, str], cwd: Path, port: int, attempt: int) -> Server:
    """``excentra serve`` on 127.0.0.1:``port`` in ``cwd``, logging to its own file per
    ``attempt`` (tests that kill and restart it)."""
    log = cwd / f"server-{attempt}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [EXCENTRA, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", log)


async def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=server.base_url, timeout=1) as client:
        while time.monotonic() < deadline:
            assert server.process.poll() is None, server.log.read_text()
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"no healthy server within {STARTUP_TIMEOUT}s:\n{server.log.read_text()}")


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_serve_trades_over_http_and_stops_cleanly_on_sigterm(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
        health = await ok(await c.get("/health"))
        assert (health["status"], health["db"]) == ("ok", True)
        root = bearer((await ok(await c.post("/api/v1/auth/login", json={
            "email": "root@example.com", "password": "rootpassword1"})))["access_token"])
        alice, bob = [bearer((await ok(await c.post("/api/v1/auth/register", json={
            "email": f"{name}@example.com", "password": "password123"}), 201))["access_token"])
            for name in ("alice", "bob")]
        await ok(await c.post("/api/v1/balances/deposit", headers=alice,
                              json={"asset": "USDT", "amount": "1000"}))
        await ok(await c.post("/api/v1/balances/deposit", headers=bob,
                              json={"asset": "BTC", "amount": "0.05"}))
        ask = await ok(await c.post("/api/v1/orders", headers=bob, json={
            "symbol": "BTC/USDT", "side": "sell", "order_type": "limit", "price": "10000",
            "quantity": "0.05"}))
        bid = await ok(await c.post("/api/v1/orders", headers=alice, json={
            "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "10000",
            "quantity": "0.02"}))
        assert (ask["status"], bid["status"]) == ("open", "filled")
        assert [(D(t["price"]), D(t["quantity"])) for t in bid["trades"]] == [
            (D(10000), D("0.02"))]
        assert await balances(c, alice) == {"USDT": (D(800), 0), "BTC": (D("0.02"), 0)}
        assert await balances(c, bob) == {"USDT": (D(200), 0), "BTC": (0, D("0.03"))}
        cancelled = await ok(await c.delete(f"/api/v1/orders/{ask['order_id']}", headers=bob))
        assert (cancelled["status"], D(cancelled["remaining_quantity"])) == ("cancelled",
                                                                           D("0.03"))
        assert await balances(c, bob) == {"USDT": (D(200), 0), "BTC": (D("0.03"), 0)}
        stats = await ok(await c.get("/api/v1/admin/stats", headers=root))
        # root, alice, bob: the system accounts (market maker, fees) are not users
        assert (stats["total_users"], stats["total_trades"], stats["orders_processed"]) == (
            3, 1, 2)
        assert [(v["symbol"], D(v["volume"])) for v in stats["volume_24h"]] == [
            ("BTC/USDT", D("0.02"))]
        metrics = (await c.get("/metrics")).text
        assert 'excentra_orders_total{outcome="placed"} 2.0' in metrics
    _send_garbage(server)  # uvicorn's own complaint must be a JSON line too

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0, server.log.read_text()
    lines = server.log_lines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = [e["msg"] for e in entries]
    assert "server ready" in messages
    assert messages[-1] == "stopped by signal"
    assert "server stopped" in messages
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    assert all("color_message" not in e for e in entries)
    assert ("uvicorn.error", "Invalid HTTP request received.") in [
        (e["logger"], e["msg"]) for e in entries]


def _send_garbage(server: Server) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)  # uvicorn answers 400 and closes


def test_serve_options_default_to_port_env_and_all_interfaces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from excentra.cli import _serve_arguments

    monkeypatch.delenv("PORT", raising=False)
    args = _serve_arguments([])
    assert (args.host, args.port, args.database_url) == ("0.0.0.0", 3000, None)  # noqa: S104
    monkeypatch.setenv("PORT", "4100")
    assert _serve_arguments([]).port == 4100
    args = _serve_arguments(["--host", "127.0.0.1", "--port", "5", "--database-url", "x"])
    assert (args.host, args.port, args.database_url) == ("127.0.0.1", 5, "x")


async def balances(client: httpx.AsyncClient, headers: dict[str, str]
                   ) -> dict[str, tuple[Decimal, Decimal]]:
    rows = await ok(await client.get("/api/v1/balances", headers=headers))
    return {b["asset"]: (D(b["available"]), D(b["held"])) for b in rows}
