"""A first flow through the HTTP layer: deposit, place, match, balances, cancel."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio


async def test_place_match_and_balances(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    r = await api.client.post("/api/v1/orders", headers=seller, json={
        "symbol": "BTC/USDT", "side": "sell", "order_type": "limit", "price": "10000",
        "quantity": "0.05"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"
    r = await api.client.post("/api/v1/orders", headers=buyer, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "10000",
        "quantity": "0.02"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "filled"
    assert r.json()["trades"] == [{"price": "10000.00", "quantity": "0.0200"}] or \
        Decimal(r.json()["trades"][0]["quantity"]) == Decimal("0.02")
    r = await api.client.get("/api/v1/balances", headers=buyer)
    got = {b["asset"]: (Decimal(b["available"]), Decimal(b["held"])) for b in r.json()}
    assert got == {"USDT": (Decimal(800), 0), "BTC": (Decimal("0.02"), 0)}
    r = await api.client.get("/api/v1/orders", headers=seller,
                             params={"status": "partially_filled"})
    assert r.status_code == 200, r.text
    [order] = r.json()["data"]
    r = await api.client.delete(f"/api/v1/orders/{order['id']}", headers=seller)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    r = await api.client.get("/api/v1/balances/btc", headers=seller)
    assert Decimal(r.json()["available"]) == Decimal("0.03")
    assert Decimal(r.json()["held"]) == 0
    r = await api.client.delete(f"/api/v1/orders/{order['id']}", headers=buyer)
    assert r.status_code == 404
    assert r.json() == {"error": "Order not found"}
