"""``/api/v1/orders`` over HTTP: the original's flows, every documented error, the
additions (client_order_id, time_in_force, post_only) and ownership."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

ORDERS = "/api/v1/orders"


def limit(side: str, price: str, quantity: str, symbol: str = "BTC/USDT",
          **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "order_type": "limit", "price": price,
            "quantity": quantity, **extra}


def market(side: str, quantity: str, symbol: str = "BTC/USDT") -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "order_type": "market", "quantity": quantity}


async def balances(api: Api, headers: dict[str, str]) -> dict[str, tuple[Decimal, Decimal]]:
    r = await api.client.get("/api/v1/balances", headers=headers)
    assert r.status_code == 200, r.text
    return {b["asset"]: (Decimal(b["available"]), Decimal(b["held"])) for b in r.json()}


async def place(api: Api, headers: dict[str, str], body: dict[str, Any],
                status: int = 200) -> dict[str, Any]:
    r = await api.client.post(ORDERS, headers=headers, json=body)
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_register_deposit_place_match_balances(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    rested = await place(api, seller, limit("sell", "10000", "0.05"))
    assert rested["status"] == "open"
    assert Decimal(rested["remaining_quantity"]) == Decimal("0.05")
    assert rested["trades"] == []
    filled = await place(api, buyer, limit("buy", "10000", "0.02"))
    assert filled["status"] == "filled"
    assert Decimal(filled["filled_quantity"]) == Decimal("0.02")
    assert Decimal(filled["remaining_quantity"]) == 0
    assert [(Decimal(t["price"]), Decimal(t["quantity"])) for t in filled["trades"]] == [
        (Decimal(10000), Decimal("0.02"))]
    assert await balances(api, buyer) == {"USDT": (Decimal(800), 0), "BTC": (Decimal("0.02"), 0)}
    assert await balances(api, seller) == {"BTC": (0, Decimal("0.03")), "USDT": (Decimal(200), 0)}


async def test_price_improvement_is_released_not_held(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await place(api, seller, limit("sell", "9000", "0.01"))
    await place(api, buyer, limit("buy", "10000", "0.01"))
    assert await balances(api, buyer) == {"USDT": (Decimal(910), 0), "BTC": (Decimal("0.01"), 0)}


async def test_cancel_releases_the_hold(api: Api) -> None:
    _, buyer = await api.funded(USDT="1000")
    order = await place(api, buyer, limit("buy", "20000", "0.03"))
    assert await balances(api, buyer) == {"USDT": (Decimal(400), Decimal(600))}
    r = await api.client.delete(f"{ORDERS}/{order['order_id']}", headers=buyer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["id"] == order["order_id"]
    assert Decimal(body["remaining_quantity"]) == Decimal("0.03")
    assert await balances(api, buyer) == {"USDT": (Decimal(1000), 0)}
    r = await api.client.delete(f"{ORDERS}/{order['order_id']}", headers=buyer)
    assert (r.status_code, r.json()) == (400, {"error": "Order is already cancelled"})


async def test_filled_order_cannot_be_cancelled(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await place(api, seller, limit("sell", "10000", "0.01"))
    filled = await place(api, buyer, limit("buy", "10000", "0.01"))
    r = await api.client.delete(f"{ORDERS}/{filled['order_id']}", headers=buyer)
    assert (r.status_code, r.json()) == (400, {"error": "Filled orders can not be cancelled"})


async def test_insufficient_balance_names_the_held_asset(api: Api) -> None:
    _, user = await api.funded(USDT="100")
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "10000", "0.02"))
    assert (r.status_code, r.json()) == (422, {"error": "Insufficient available USDT balance"})
    r = await api.client.post(ORDERS, headers=user, json=limit("sell", "10000", "0.02"))
    assert (r.status_code, r.json()) == (422, {"error": "Insufficient available BTC balance"})
    assert await balances(api, user) == {"USDT": (Decimal(100), 0)}
    r = await api.client.get(ORDERS, headers=user)
    assert r.json()["total"] == 0


async def test_self_trade_is_rejected_before_holding(api: Api) -> None:
    _, user = await api.funded(USDT="1000", BTC="0.05")
    await place(api, user, limit("sell", "10000", "0.01"))
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "10001", "0.01"))
    assert (r.status_code, r.json()) == (
        400, {"error": "Order would match against your own resting order"})
    assert await balances(api, user) == {"USDT": (Decimal(1000), 0),
                                         "BTC": (Decimal("0.04"), Decimal("0.01"))}


async def test_market_buy_spends_a_quote_budget(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await place(api, seller, limit("sell", "10000", "0.01"))
    await place(api, seller, limit("sell", "20000", "0.01"))
    out = await place(api, buyer, market("buy", "250"))
    assert out["status"] == "filled"
    assert Decimal(out["filled_quantity"]) == Decimal("0.0175")
    assert Decimal(out["remaining_quantity"]) == 0
    assert await balances(api, buyer) == {"USDT": (Decimal(750), 0),
                                          "BTC": (Decimal("0.0175"), 0)}
    r = await api.client.get(f"{ORDERS}/{out['order_id']}", headers=buyer)
    assert r.json()["price"] is None
    assert Decimal(r.json()["quantity"]) == 250


async def test_market_order_without_liquidity_is_cancelled_and_released(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    out = await place(api, seller, market("sell", "0.01"))
    assert out["status"] == "cancelled"
    assert Decimal(out["remaining_quantity"]) == Decimal("0.01")
    assert await balances(api, seller) == {"BTC": (Decimal("0.05"), 0)}


@pytest.mark.parametrize(("body", "status", "message"), [
    (limit("buy", "1", "1", symbol="BTCUSDT"), 400, "Symbol should contain '/' e.g 'BTC/USDT'"),
    ({**limit("buy", "1", "1"), "price": None}, 400, "A limit order should have a price"),
    (limit("buy", "0", "1"), 400, "Price is or less than zero"),
    (limit("buy", "-5", "1"), 400, "Price is or less than zero"),
    ({**market("buy", "1"), "price": "5"}, 400, "A market order does not need a price"),
    (limit("buy", "1", "0"), 400, "Quantity is or less than zero"),
    (limit("buy", "1", "-1"), 400, "Quantity is or less than zero"),
    (limit("buy", "1", "1", symbol="BTC/USDT/X"), 400,
     "Invalid asset symbol, expected e.g `BTC/USDT`"),
    (limit("buy", "1", "1", symbol="BTC/XYZ"), 422, "Invalid or unsupported trading pair"),
])
async def test_validation_messages(api: Api, body: dict[str, Any], status: int,
                                   message: str) -> None:
    _, user = await api.funded(USDT="1000", BTC="0.05")
    r = await api.client.post(ORDERS, headers=user, json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert (await api.client.get(ORDERS, headers=user)).json()["total"] == 0


async def test_too_many_decimals_names_the_asset(api: Api) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "1.0000001", "1"))
    assert (r.status_code, r.json()) == (
        422, {"error": "price has more decimal places than USDT allows (6 decimals)"})
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "1", "0.000000001"))
    assert (r.status_code, r.json()) == (
        422, {"error": "quantity has more decimal places than BTC allows (8 decimals)"})


async def test_off_grid_price_is_a_clear_422(api: Api) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "100.001", "1"))
    assert (r.status_code, r.json()) == (
        422, {"error": "price must be a multiple of 0.01 on BTC/USDT"})
    r = await api.client.post(ORDERS, headers=user, json=limit("buy", "100", "0.00001"))
    assert (r.status_code, r.json()) == (
        422, {"error": "quantity must be a multiple of 0.0001 on BTC/USDT"})


async def test_client_order_id_is_idempotent_per_user(api: Api) -> None:
    _, user = await api.funded(USDT="1000")
    _, other = await api.funded(USDT="1000")
    body = limit("buy", "10000", "0.01", client_order_id="my-order-1")
    first, again = await asyncio.gather(place(api, user, body), place(api, user, body))
    third = await place(api, user, body)
    assert first["order_id"] == again["order_id"] == third["order_id"]
    assert await balances(api, user) == {"USDT": (Decimal(900), Decimal(100))}
    theirs = await place(api, other, body)  # the id is per user
    assert theirs["order_id"] != first["order_id"]
    r = await api.client.get(ORDERS, headers=user)
    assert r.json()["total"] == 1
    assert r.json()["data"][0]["client_order_id"] == "my-order-1"


async def test_time_in_force_and_post_only(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await place(api, seller, limit("sell", "10000", "0.01"))
    fok = await place(api, buyer, limit("buy", "10000", "0.02", time_in_force="FOK"))
    assert (fok["status"], fok["trades"]) == ("cancelled", [])
    ioc = await place(api, buyer, limit("buy", "10000", "0.02", time_in_force="IOC"))
    assert ioc["status"] == "cancelled"
    assert Decimal(ioc["filled_quantity"]) == Decimal("0.01")
    await place(api, seller, limit("sell", "10000", "0.01"))
    r = await api.client.post(ORDERS, headers=buyer,
                              json=limit("buy", "10000", "0.01", post_only=True))
    assert (r.status_code, r.json()) == (400, {"error": "Post-only order would take liquidity"})
    rest = await place(api, buyer, limit("buy", "9000", "0.01", post_only=True))
    assert rest["status"] == "open"
    assert await balances(api, buyer) == {"USDT": (Decimal(810), Decimal(90)),
                                          "BTC": (Decimal("0.01"), 0)}
    r = await api.client.post(ORDERS, headers=buyer, json={**market("buy", "10"),
                                                          "time_in_force": "IOC"})
    assert r.status_code == 400


async def test_users_cannot_see_or_cancel_each_others_orders(api: Api) -> None:
    _, alice = await api.funded(USDT="1000")
    _, bob = await api.funded(USDT="1000")
    order = await place(api, alice, limit("buy", "10000", "0.01"))
    url = f"{ORDERS}/{order['order_id']}"
    for method in ("GET", "DELETE"):
        r = await api.client.request(method, url, headers=bob)
        assert (r.status_code, r.json()) == (404, {"error": "Order not found"})
    assert (await api.client.get(ORDERS, headers=bob)).json()["total"] == 0
    r = await api.client.get(url, headers=alice)
    assert r.status_code == 200
    assert r.json()["status"] == "open"
    r = await api.client.get(f"{ORDERS}/{uuid.uuid4()}", headers=alice)
    assert (r.status_code, r.json()) == (404, {"error": "Order not found"})
    r = await api.client.get(f"{ORDERS}/not-a-uuid", headers=alice)
    assert r.status_code == 400
    assert "order_id" in r.json()["error"]


async def test_listing_filters_and_pages(api: Api) -> None:
    _, user = await api.funded(USDT="1000", ETH="0.5")
    ids = [(await place(api, user, limit("buy", f"{100 + i}", "0.01")))["order_id"]
           for i in range(5)]
    await place(api, user, limit("sell", "5000", "0.1", symbol="ETH/USDT"))
    r = await api.client.get(ORDERS, headers=user, params={"pair": "BTC-USDT", "limit": 2})
    page = r.json()
    assert (page["total"], page["page"], page["limit"]) == (5, 1, 2)
    assert [o["id"] for o in page["data"]] == ids[::-1][:2]
    r = await api.client.get(ORDERS, headers=user,
                             params={"pair": "btc-usdt", "limit": 2, "page": 3, "order": "ASC"})
    assert [o["id"] for o in r.json()["data"]] == ids[4:]
    r = await api.client.get(ORDERS, headers=user, params={"status": "open,partially_filled"})
    assert r.json()["total"] == 6
    r = await api.client.get(ORDERS, headers=user, params={"status": "filled"})
    assert r.json()["total"] == 0
    for params, message in [
        ({"status": "foo"}, "unknown status: foo"),
        ({"pair": "BTC/USDT/X"}, "Invalid asset symbol, expected e.g `BTC/USDT`"),
        ({"pair": "BTC-USDT-X"}, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ]:
        r = await api.client.get(ORDERS, headers=user, params=params)
        assert (r.status_code, r.json()) == (400, {"error": message})
    r = await api.client.get(ORDERS, headers=user, params={"pair": "BTC-XYZ"})
    assert (r.status_code, r.json()) == (422, {"error": "Invalid pair symbol: BTC/XYZ"})
    for params in ({"page": 0}, {"limit": 0}, {"limit": 1001}, {"limit": -1}, {"order": "up"},
                   {"page": "x"}):
        r = await api.client.get(ORDERS, headers=user, params=params)
        assert r.status_code == 400, params
        assert "error" in r.json()


async def test_auth_is_checked_first(api: Api) -> None:
    r = await api.client.post(ORDERS, content=b"{not json")
    assert (r.status_code, r.json()) == (401, {"error": "No authorization header"})
    r = await api.client.get(ORDERS, headers={"Authorization": "Token abc"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Bearer token"})
    r = await api.client.get(ORDERS, headers={"Authorization": "Bearer abc.def.ghi"})
    assert (r.status_code, r.json()) == (401, {"error": "User not logged in"})
