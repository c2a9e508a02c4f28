"""A ``kill -9`` between the event log and its projection, on both databases.

``excentra serve`` starts with the projector paused (``EXCENTRA_PROJECTOR_PAUSED=1``):
every command it answers 200 is acknowledged from the event log only, the tables stay
behind. A read that must show such a command (the writer's own orders) waits
``READ_WAIT`` and answers 503 with ``Retry-After`` — never the stale tables. The server
is then killed with SIGKILL and restarted normally on the same database: the start
projects the log, so every acknowledged order, cancel and deposit is in the tables as it
was answered, the projection has reached the log's end, conservation holds and the book
is the open orders on record.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from excentra.db import Database
from excentra.db.audit import audit
from tests.e2e.test_chaos import _book_is_the_open_orders
from tests.e2e.test_crash import _check_status, _order
from tests.e2e.test_serve import _wait_healthy, child_env, free_port, ok, start_serve

D = Decimal
pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
SYMBOL = "BTC/USDT"


@dataclass
class Trader:
    user_id: str
    headers: dict[str, str]


@dataclass
class Acks:
    """What the paused server answered 200, as the client saw it."""

    orders: dict[str, tuple[Trader, str, dict[str, Any]]] = field(default_factory=dict)
    """order id -> (placer, client order id, the placement's answer)"""
    cancels: dict[str, tuple[Trader, dict[str, Any]]] = field(default_factory=dict)
    """order id -> (canceller, the cancel's answer)"""
    deposits: list[tuple[Trader, str, dict[str, Any]]] = field(default_factory=list)
    """(depositor, idempotency key, the deposit's answer)"""


async def _register(c: httpx.AsyncClient, name: str) -> Trader:
    """A registered trader: its id is read before it writes anything (a read of a user
    with nothing in the log does not wait, even with the projector paused)."""
    token = (await ok(await c.post("/api/v1/auth/register", json={
        "email": f"{name}-{uuid.uuid4().hex[:6]}@example.com",
        "password": "password123"}), 201))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = await ok(await c.get("/api/v1/users/me", headers=headers))
    return Trader(me["id"], headers)


async def _deposit(c: httpx.AsyncClient, t: Trader, asset: str, amount: str,
                   acks: Acks) -> None:
    key = f"fund-{asset}-{len(acks.deposits)}"
    answer = await ok(await c.post(
        "/api/v1/balances/deposit", headers={**t.headers, "Idempotency-Key": key},
        json={"asset": asset, "amount": amount}))
    acks.deposits.append((t, key, answer))


async def _place(c: httpx.AsyncClient, t: Trader, side: str, price: str, quantity: str,
                 acks: Acks) -> dict[str, Any]:
    cid = f"lc-{len(acks.orders)}"
    answer: dict[str, Any] = await ok(await c.post("/api/v1/orders", headers=t.headers, json={
        "symbol": SYMBOL, "side": side, "order_type": "limit", "price": price,
        "quantity": quantity, "client_order_id": cid}))
    acks.orders[answer["order_id"]] = (t, cid, answer)
    return answer


async def _cancel(c: httpx.AsyncClient, t: Trader, order_id: str, acks: Acks) -> None:
    answer = await ok(await c.delete(f"/api/v1/orders/{order_id}", headers=t.headers))
    acks.cancels[order_id] = (t, answer)


async def _load(c: httpx.AsyncClient, buyer: Trader, seller: Trader, acks: Acks) -> None:
    """Funding, resting orders, crossing orders (trades that fill the seller's resting
    orders) and cancels — all acknowledged while the tables do not move."""
    await _deposit(c, buyer, "USDT", "5000", acks)
    await _deposit(c, seller, "BTC", "1", acks)
    await _deposit(c, seller, "USDT", "100", acks)
    asks = [await _place(c, seller, "sell", price, "0.002", acks)
            for price in ("100", "101", "103", "104")]
    assert [a["status"] for a in asks] == ["open"] * 4, asks
    taker = await _place(c, buyer, "buy", "101", "0.003", acks)  # 0.002@100, 0.001@101
    assert (taker["status"], [(D(t["price"]), D(t["quantity"])) for t in taker["trades"]]) \
        == ("filled", [(D(100), D("0.002")), (D(101), D("0.001"))]), taker
    partial = await _place(c, buyer, "buy", "103", "0.004", acks)  # 0.001@101, 0.002@103
    assert partial["status"] == "partially_filled", partial
    resting = await _place(c, buyer, "buy", "99", "0.005", acks)
    assert resting["status"] == "open", resting
    await _cancel(c, buyer, partial["order_id"], acks)  # its 0.001 left at 103
    await _cancel(c, seller, asks[3]["order_id"], acks)  # untouched at 104
    await _place(c, seller, "sell", "99", "0.001", acks)  # fills the buyer's 99 in part
    await _place(c, seller, "sell", "102", "0.003", acks)  # rests


async def _lag(db: Database) -> tuple[int, int]:
    """(the log's last entry, the projection's watermark), read from the tables."""
    logged = int(await db.fetch_val("SELECT COALESCE(MAX(seq), 0) FROM event_log") or 0)
    projected = int(await db.fetch_val(
        "SELECT seq FROM projection_state WHERE name = 'tables'") or 0)
    return logged, projected


async def test_kill_9_between_log_and_projection_loses_no_acknowledged_command(
        database_url: str, tmp_path: Path) -> None:
    env = {**child_env(database_url), "RATE_LIMITS": "off", "DEPOSIT_LIMITS": "none"}
    port = free_port()
    server = start_serve({**env, "EXCENTRA_PROJECTOR_PAUSED": "1", "READ_WAIT": "1"},
                         tmp_path, port, 0)
    acks = Acks()
    try:
        await _wait_healthy(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
            buyer, seller = [await _register(c, name) for name in ("buyer", "seller")]
            await _load(c, buyer, seller, acks)

            # Acknowledged, not projected: the tables lag the log.
            async with Database(database_url) as db:
                logged, projected = await _lag(db)
                assert projected < logged, (projected, logged)
                assert logged >= len(acks.orders) + len(acks.cancels) + len(acks.deposits)
                for order_id in acks.orders:
                    assert await _order(db, order_id) is None, order_id
            health = await ok(await c.get("/health"))
            assert health["log"]["lag"] == logged - projected > 0, health
            # The writer's read cannot show its writes: 503, never the stale tables.
            r = await c.get("/api/v1/orders", headers=buyer.headers)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "1"
            assert "error" in r.json(), r.text

        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(10) == -signal.SIGKILL

        server = start_serve(env, tmp_path, port, 1)  # projector running
        await _wait_healthy(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
            health = await ok(await c.get("/health"))
            assert (health["log"]["lag"], health["log"]["logged"]) == (0, logged), health
            async with Database(database_url) as db:
                assert await _lag(db) == (logged, logged)
                await _check_projected(db, acks)
                assert await audit(db) == []  # conservation, holds = open orders
                await _book_is_the_open_orders(c, db)
            for trader in (buyer, seller):
                await _check_listed(c, trader, acks)
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(15)


async def _check_projected(db: Database, acks: Acks) -> None:
    """Every acknowledged command is in the tables as it was answered."""
    for order_id, (trader, cid, answer) in acks.orders.items():
        row = await _order(db, order_id)
        assert row is not None, f"acknowledged order missing: {answer}"
        assert (str(row["user_id"]), row["client_order_id"]) == (trader.user_id, cid)
        if order_id in acks.cancels:
            cancel = acks.cancels[order_id][1]
            assert row["status"] == "cancelled", (cancel, row)
            assert row["filled_quantity"] == D(cancel["filled_quantity"]), (cancel, row)
            assert row["remaining_quantity"] == D(cancel["remaining_quantity"]), (cancel, row)
        else:
            _check_status({"result": answer}, row)
        stored = await db.fetch_val("SELECT result FROM commands WHERE command_id = :id",
                                    {"id": f"order:{trader.user_id}:{cid}"})
        assert stored is not None, f"acknowledged order's command missing: {answer}"
        assert json.loads(stored) == answer, (stored, answer)
    for order_id in acks.cancels:
        assert await db.fetch_val(
            "SELECT COUNT(*) FROM commands WHERE command_id LIKE :p",
            {"p": f"cancel:{order_id}:%"}, as_type=int) == 1, order_id
    for trader, key, answer in acks.deposits:
        stored = await db.fetch_val("SELECT result FROM commands WHERE command_id = :id",
                                    {"id": f"deposit:{trader.user_id}:{key}"})
        assert stored is not None, f"acknowledged deposit missing: {answer}"
        result = json.loads(stored)
        assert (result["asset"], D(result["available"]), D(result["held"])) == (
            answer["asset"], D(answer["available"]), D(answer["held"])), (result, answer)
        assert await db.fetch_val(  # and its credit
            "SELECT COUNT(*) FROM ledger_entries WHERE command_id = :id",
            {"id": f"deposit:{trader.user_id}:{key}"}, as_type=int), answer


async def _check_listed(c: httpx.AsyncClient, trader: Trader, acks: Acks) -> None:
    """The writer's read now answers, with its acknowledged orders in their states."""
    page = await ok(await c.get("/api/v1/orders", headers=trader.headers,
                                params={"limit": 1000}))
    listed = {o["id"]: o for o in page["data"]}
    mine = {oid: answer for oid, (t, _, answer) in acks.orders.items() if t is trader}
    assert set(listed) == set(mine), (listed, mine)
    for order_id, answer in mine.items():
        shown = listed[order_id]
        if order_id in acks.cancels:
            assert shown["status"] == "cancelled", shown
        else:
            _check_status({"result": answer}, {**shown, "filled_quantity": D(
                shown["filled_quantity"])})
