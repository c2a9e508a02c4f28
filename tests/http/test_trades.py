"""``/api/v1/trades``: a pair's recent trades and a user's own history, on both databases.

Trades are made through the API (funded users placing crossing limit orders)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from excentra.http.app import create_app
from excentra.http.ratelimit import Policy
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio

Headers = dict[str, str]




async def traders(api: Api) -> tuple[Headers, Headers]:
    """A seller (maker) and a buyer (taker) with plenty of funds."""
    _, seller = await api.funded(BTC="10", ETH="10")
    _, buyer = await api.funded(USDT="1000000")
    return seller, buyer


async def cross(api: Api, seller: Headers, buyer: Headers, price: str, quantity: str,
                symbol: str = "BTC/USDT") -> None:
    await api.limit(seller, "sell", price, quantity, symbol)
    placed = await api.limit(buyer, "buy", price, quantity, symbol)
    assert placed["status"] == "filled", placed


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


async def test_recent_trades_newest_first_with_fields(api: Api) -> None:
    seller, buyer = await traders(api)
    for price, qty in (("100", "0.01"), ("101", "0.02"), ("102", "0.03")):
        await cross(api, seller, buyer, price, qty)
    r = await api.client.get("/api/v1/trades/BTC-USDT")
    assert r.status_code == 200, r.text
    trades = r.json()
    assert [(Decimal(t["price"]), Decimal(t["quantity"])) for t in trades] == [
        (Decimal(102), Decimal("0.03")), (Decimal(101), Decimal("0.02")),
        (Decimal(100), Decimal("0.01"))]
    assert {t["symbol"] for t in trades} == {"BTC/USDT"}
    assert {t["taker_side"] for t in trades} == {"buy"}
    assert all(t["created_at"].endswith("Z") and len(t["id"]) == 36 for t in trades)
    r = await api.client.get("/api/v1/trades/BTC-USDT", params={"limit": 2})
    assert [Decimal(t["price"]) for t in r.json()] == [102, 101]
    r = await api.client.get("/api/v1/trades/ETH-USDT")
    assert r.status_code == 200
    assert r.json() == []


async def test_trades_of_one_order_newest_first_by_seq(api: Api) -> None:
    """One buy sweeping two asks: both trades share created_at; the later fill is newer."""
    seller, buyer = await traders(api)
    await api.limit(seller, "sell", "100", "0.01")
    await api.limit(seller, "sell", "101", "0.02")
    await api.limit(buyer, "buy", "101", "0.03")
    r = await api.client.get("/api/v1/trades/BTC-USDT")
    trades = r.json()
    assert trades[0]["created_at"] == trades[1]["created_at"]
    assert [Decimal(t["price"]) for t in trades] == [101, 100]


async def test_taker_side_sell(api: Api) -> None:
    seller, buyer = await traders(api)
    await api.limit(buyer, "buy", "100", "0.01")
    await api.limit(seller, "sell", "100", "0.01")
    [trade] = (await api.client.get("/api/v1/trades/BTC-USDT")).json()
    assert trade["taker_side"] == "sell"


@pytest.mark.parametrize(("path", "status", "message"), [
    ("BTC-USDT-X", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("BTCUSDT", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("BTC-XYZ", 400, "BTC/XYZ market not supported"),
    ("xyz-btc", 400, "XYZ/BTC market not supported"),
    ("%20-USDT", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("A" * 70 + "-USDT", 400, "Invalid path parameter `symbol`: longer than 42 characters"),
    ("AAAAAAAAAAA-USDT", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("..%2F..", 404, "Not Found"),
    ("..%2F..%2Fpairs", 404, "Not Found"),
])
async def test_recent_trades_symbol_errors(api: Api, path: str, status: int,
                                           message: str) -> None:
    r = await api.client.get(f"/api/v1/trades/{path}")
    assert error(r) == (status, message)


async def test_recent_trades_symbol_normalised(api: Api) -> None:
    seller, buyer = await traders(api)
    await cross(api, seller, buyer, "100", "0.01")
    for path in ("btc-usdt", "%20btc%20-%20Usdt%20"):
        r = await api.client.get(f"/api/v1/trades/{path}")
        assert r.status_code == 200, r.text
        assert [t["symbol"] for t in r.json()] == ["BTC/USDT"]


@pytest.mark.parametrize(("limit", "message"), [
    ("0", "must be between 1 and 10000"), ("10001", "must be between 1 and 10000"),
    ("-1", "must be between 1 and 10000"), ("ten", "expected an integer, got 'ten'"),
])
async def test_recent_trades_limit_bounds(api: Api, limit: str, message: str) -> None:
    r = await api.client.get("/api/v1/trades/BTC-USDT", params={"limit": limit})
    assert error(r) == (400, f"Invalid query parameter `limit`: {message}")


async def test_recent_trades_limit_10000_accepted(api: Api) -> None:
    r = await api.client.get("/api/v1/trades/BTC-USDT", params={"limit": "10000"})
    assert r.status_code == 200
    assert r.json() == []


async def test_my_trades_sides_totals_and_pagination(api: Api) -> None:
    seller, buyer = await traders(api)
    for price, qty in (("100.5", "0.01"), ("101", "0.02"), ("102.25", "0.03")):
        await cross(api, seller, buyer, price, qty)
    await cross(api, seller, buyer, "2000", "0.5", "ETH/USDT")
    r = await api.client.get("/api/v1/trades/me", headers=buyer, params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["page"], body["limit"], body["total"]) == (1, 2, 4)
    assert [(t["symbol"], Decimal(t["price"])) for t in body["data"]] == [
        ("ETH/USDT", 2000), ("BTC/USDT", Decimal("102.25"))]
    assert {t["side"] for t in body["data"]} == {"buy"}
    assert Decimal(body["data"][1]["total"]) == Decimal("3.0675")  # 102.25 × 0.03
    r = await api.client.get("/api/v1/trades/me", headers=buyer,
                             params={"limit": 2, "page": 2})
    assert [Decimal(t["price"]) for t in r.json()["data"]] == [101, Decimal("100.5")]
    assert r.json()["total"] == 4
    r = await api.client.get("/api/v1/trades/me", headers=seller,
                             params={"order": "ASC", "pair": "btc-usdt"})
    body = r.json()
    assert body["total"] == 3
    assert [Decimal(t["price"]) for t in body["data"]] == [Decimal("100.5"), 101,
                                                            Decimal("102.25")]
    assert {t["side"] for t in body["data"]} == {"sell"}
    assert Decimal(body["data"][0]["total"]) == Decimal("1.005")
    r = await api.client.get("/api/v1/trades/me", headers=buyer, params={"pair": "SOL-USDT"})
    assert r.json() == {"data": [], "page": 1, "limit": 20, "total": 0}


async def test_my_trades_only_mine(api: Api) -> None:
    seller, buyer = await traders(api)
    await cross(api, seller, buyer, "100", "0.01")
    _, other = await api.user()
    r = await api.client.get("/api/v1/trades/me", headers=other)
    assert r.json() == {"data": [], "page": 1, "limit": 20, "total": 0}


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"pair": "BTC-XYZ"}, 422, "Invalid pair symbol: BTC/XYZ"),
    ({"pair": "BTC/USDT/X"}, 400, "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ({"pair": "BTC-USDT-X"}, 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ({"page": "0"}, 400, "Invalid query parameter `page`: must be between 1 and 1000000"),
    ({"limit": "0"}, 400, "Invalid query parameter `limit`: must be between 1 and 1000"),
    ({"limit": "1001"}, 400, "Invalid query parameter `limit`: must be between 1 and 1000"),
    ({"order": "up"}, 400,
     "Invalid query parameter `order`: unknown value 'up', expected one of asc, desc"),
])
async def test_my_trades_errors(api: Api, params: dict[str, str], status: int,
                                message: str) -> None:
    _, headers = await api.user()
    r = await api.client.get("/api/v1/trades/me", headers=headers, params=params)
    assert error(r) == (status, message)


async def test_my_trades_needs_a_user_and_comes_before_symbol_route(api: Api) -> None:
    r = await api.client.get("/api/v1/trades/me")
    assert error(r) == (401, "No authorization header")
    r = await api.client.get("/api/v1/trades/me", headers={"Authorization": "Bearer x"})
    assert error(r) == (401, "User not logged in")


async def test_market_routes_are_rate_limited_by_ip(database_url: str) -> None:
    limits = {name: Policy(2, 60) for name in ("trades", "orderbook", "ticker")}
    app = create_app(settings_for(database_url, rate_limits=limits), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        for path in ("/api/v1/trades/BTC-USDT", "/api/v1/orderbook/BTC-USDT",
                     "/api/v1/ticker/BTC-USDT"):
            first = await api.client.get(path)
            assert first.headers["X-RateLimit-Limit"] == "2"
            assert first.headers["X-RateLimit-Remaining"] == "1"
            await api.client.get(path)
            r = await api.client.get(path)
            assert r.status_code == 429, path
            assert r.json()["error"].startswith("rate limit exceeded, try again after: ")
            assert int(r.headers["Retry-After"]) >= 1
            other = await api.client.get(path, headers={"X-Forwarded-For": "10.0.0.9"})
            assert other.status_code != 429, path  # another client IP has its own window
        for path in ("/api/v1/ticker", "/api/v1/candles/BTC-USDT", "/api/v1/pairs/active"):
            for _ in range(3):
                r = await api.client.get(path)
                assert r.status_code == 200, path
                assert "X-RateLimit-Limit" not in r.headers
