"""A first flow over a real socket: subscribe, trade, receive events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from excentra.http.app import create_app
from tests.http.conftest import FAST_PASSWORDS, settings_for
from tests.live import live_server


async def recv(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


def test_trade_reaches_subscribers(database_url: str) -> None:
    with live_server(create_app(settings_for(database_url), passwords=FAST_PASSWORDS)) as (
            base, services):
        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=base) as http:
                tokens = []
                for i in range(2):
                    r = await http.post("/api/v1/auth/register",
                                        json={"email": f"w{i}@example.com",
                                              "password": "password123"})
                    tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
                    me = await http.get("/api/v1/users/me", headers=tokens[-1])
                    assert me.status_code == 200
                await http.post("/api/v1/balances/deposit", headers=tokens[0],
                                json={"asset": "BTC", "amount": "0.05"})
                await http.post("/api/v1/balances/deposit", headers=tokens[1],
                                json={"asset": "USDT", "amount": "1000"})
                async with websockets.connect(base.replace("http", "ws") + "/ws") as ws:
                    await ws.send(json.dumps({"action": "subscribe",
                                              "channel": "orderbook:btc/usdt"}))
                    assert await recv(ws) == {"type": "subscribed",
                                              "channel": "orderbook:BTC/USDT"}
                    snap = await recv(ws)
                    assert snap["data"]["seq"] == 0
                    await ws.send(json.dumps({"action": "subscribe",
                                              "channel": "trades:BTC/USDT"}))
                    assert (await recv(ws))["type"] == "subscribed"
                    r = await http.post("/api/v1/orders", headers=tokens[0], json={
                        "symbol": "BTC/USDT", "side": "sell", "order_type": "limit",
                        "price": "100", "quantity": "0.01"})
                    assert r.status_code == 200
                    book = await recv(ws)
                    assert book["data"]["seq"] == 1
                    assert book["data"]["snapshot"]["asks"] == [
                        {"price": "100.00", "quantity": "0.0100"}]
                    r = await http.post("/api/v1/orders", headers=tokens[1], json={
                        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                        "price": "100", "quantity": "0.01"})
                    trade = await recv(ws)
                    assert trade["data"]["type"] == "trade"
                    book = await recv(ws)
                    assert book["data"]["seq"] == 2
                    assert book["data"]["snapshot"]["asks"] == []

        asyncio.run(scenario())
        assert services is not None
