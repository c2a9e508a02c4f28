"""Market data: the order book, the 24h ticker and candles, on both databases.

Trades are made through the API. To place trades in the past (the 24h window, candle
buckets) a test moves a fresh trade's ``created_at`` back with a direct UPDATE: test setup
only — the code under test only reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from excentra.db import market as db_market
from excentra.http.ws.startup import reload_tickers
from excentra.market.ticker import PCT_PLACES, change_pct
from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

Headers = dict[str, str]
D = Decimal
BOOK = "/api/v1/orderbook/BTC-USDT"




async def traders(api: Api) -> tuple[Headers, Headers]:
    _, seller = await api.funded(BTC="10", ETH="10", SOL="100")
    _, buyer = await api.funded(USDT="1000000")
    return seller, buyer


async def trade(api: Api, seller: Headers, buyer: Headers, price: str, quantity: str,
                at: datetime | None = None, symbol: str = "BTC/USDT") -> None:
    """One trade (the buyer takes); moved back to ``at`` when given."""
    await api.limit(seller, "sell", price, quantity, symbol)
    assert (await api.limit(buyer, "buy", price, quantity, symbol))["status"] == "filled"
    if at is not None:
        await backdate(api, symbol, 1, at)


async def backdate(api: Api, symbol: str, count: int, at: datetime) -> None:
    """Move the pair's ``count`` newest trades to ``at`` (test setup, see the docstring)."""
    path = f"/api/v1/trades/{symbol.replace('/', '-')}"
    newest = (await api.client.get(path, params={"limit": count})).json()
    for t in newest:
        await api.services.db.execute("UPDATE trades SET created_at = :at WHERE id = :id",
                                      {"at": at, "id": uuid.UUID(t["id"])})
    await reload_tickers(api.services)  # the in-memory 24 h windows follow the edit


def levels(side: list[dict[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(lv["price"]), Decimal(lv["quantity"])) for lv in side]


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


# -- order book -----------------------------------------------------------------------------


async def test_orderbook_aggregates_levels_in_price_order(api: Api) -> None:
    s1, b1 = await traders(api)
    s2, b2 = await traders(api)
    for headers, side, price, qty in (
            (s1, "sell", "101", "0.01"), (s2, "sell", "101", "0.02"),
            (s1, "sell", "103", "0.05"), (s2, "sell", "102", "0.04"),
            (b1, "buy", "99", "0.1"), (b2, "buy", "99", "0.2"),
            (b1, "buy", "97.5", "0.01"), (b2, "buy", "98", "0.3")):
        await api.limit(headers, side, price, qty)
    r = await api.client.get(BOOK)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"symbol", "bids", "asks", "seq"}
    assert body["symbol"] == "BTC/USDT"
    assert levels(body["asks"]) == [(D(101), D("0.03")), (D(102), D("0.04")),
                                    (D(103), D("0.05"))]
    assert levels(body["bids"]) == [(D(99), D("0.3")), (D(98), D("0.3")),
                                    (D("97.5"), D("0.01"))]
    r = await api.client.get(BOOK, params={"levels": 2})
    assert levels(r.json()["asks"]) == [(D(101), D("0.03")), (D(102), D("0.04"))]
    assert levels(r.json()["bids"]) == [(D(99), D("0.3")), (D(98), D("0.3"))]
    r = await api.client.get(BOOK, params={"levels": 0})
    assert (r.json()["bids"], r.json()["asks"]) == ([], [])
    # a partial fill takes from the first order at the level: the level shows what remains
    await api.limit(b1, "buy", "101", "0.015")
    r = await api.client.get(BOOK, params={"levels": 1})
    assert levels(r.json()["asks"]) == [(D(101), D("0.015"))]


async def test_orderbook_seq_grows_by_one_per_command(api: Api) -> None:
    seller, buyer = await traders(api)
    before = (await api.client.get(BOOK)).json()
    assert before == {"symbol": "BTC/USDT", "bids": [], "asks": [], "seq": before["seq"]}
    assert isinstance(before["seq"], int)
    await api.limit(seller, "sell", "100", "0.01")
    await api.limit(seller, "sell", "100.5", "0.01")
    await api.limit(buyer, "buy", "101", "0.02")  # two fills, one command
    after = (await api.client.get(BOOK)).json()
    assert after["seq"] == before["seq"] + 3
    assert (after["bids"], after["asks"]) == ([], [])


@pytest.mark.parametrize(("query", "message"), [
    ("levels=1001", "Invalid query parameter `levels`: must be between 0 and 1000"),
    ("levels=-1", "Invalid query parameter `levels`: must be between 0 and 1000"),
    ("levels=x", "Invalid query parameter `levels`: expected an integer, got 'x'"),
])
async def test_orderbook_levels_bounds(api: Api, query: str, message: str) -> None:
    assert error(await api.client.get(f"{BOOK}?{query}")) == (400, message)
    assert (await api.client.get(f"{BOOK}?levels=1000")).status_code == 200


@pytest.mark.parametrize(("path", "status", "message"), [
    ("BTC-XYZ", 400, "BTC/XYZ market not supported"),
    ("BTC-USDT-X", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("-", 400, "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("%20", 400, "Symbol can not be empty"),
    ("B" * 65, 400, "Invalid path parameter `symbol`: longer than 42 characters"),
    ("..%2F..", 404, "Not Found"),
])
async def test_orderbook_symbol_errors(api: Api, path: str, status: int, message: str) -> None:
    assert error(await api.client.get(f"/api/v1/orderbook/{path}")) == (status, message)


async def test_orderbook_symbol_normalised(api: Api) -> None:
    r = await api.client.get("/api/v1/orderbook/%20eth%20-usdt")
    assert r.status_code == 200, r.text
    assert r.json()["symbol"] == "ETH/USDT"


# -- ticker ---------------------------------------------------------------------------------


async def test_ticker_numbers_against_a_hand_computation(api: Api) -> None:
    seller, buyer = await traders(api)
    now = datetime.now(UTC)
    await trade(api, seller, buyer, "100", "0.01", now - timedelta(hours=30))
    await trade(api, seller, buyer, "90", "0.02",  # the last before the window: baseline
                now - timedelta(hours=24, minutes=1))
    await trade(api, seller, buyer, "110", "0.03", now - timedelta(hours=2))
    await trade(api, seller, buyer, "97", "0.04")  # the most recent trade
    await trade(api, seller, buyer, "96", "0.05", now - timedelta(hours=1))  # placed last
    r = await api.client.get("/api/v1/ticker/BTC-USDT")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["symbol"] == "BTC/USDT"
    numbers = {k: Decimal(v) for k, v in got.items() if k != "symbol"}
    # (97 − 90) / 90 × 100 = 7.777…, half-even to 8 places
    assert numbers == {"last_price": 97, "high_24h": 110, "low_24h": 96,
                       "volume_24h": Decimal("0.12"),
                       "price_change_pct": Decimal("7.77777778")}
    assert got["price_change_pct"] == "7.77777778"


async def test_ticker_baseline_is_the_oldest_in_window_without_earlier_trades(
        api: Api) -> None:
    seller, buyer = await traders(api)
    now = datetime.now(UTC)
    await trade(api, seller, buyer, "2000", "0.5", now - timedelta(hours=23, minutes=59),
                symbol="ETH/USDT")
    await trade(api, seller, buyer, "1900", "0.25", now - timedelta(hours=3),
                symbol="ETH/USDT")
    await trade(api, seller, buyer, "2100", "0.5", symbol="ETH/USDT")
    got = (await api.client.get("/api/v1/ticker/ETH-USDT")).json()
    assert {k: Decimal(v) for k, v in got.items() if k != "symbol"} == {
        "last_price": 2100, "high_24h": 2100, "low_24h": 1900,
        "volume_24h": Decimal("1.25"), "price_change_pct": 5}
    await trade(api, seller, buyer, "20", "1", now - timedelta(hours=25),
                symbol="SOL/USDT")  # only outside the window: no ticker
    await trade(api, seller, buyer, "1000", "0.001")
    tickers = (await api.client.get("/api/v1/ticker")).json()
    assert [t["symbol"] for t in tickers] == ["BTC/USDT", "ETH/USDT"]
    assert tickers[1] == got
    assert Decimal(tickers[0]["price_change_pct"]) == 0
    assert error(await api.client.get("/api/v1/ticker/SOL-USDT")) == (
        404, "No trades found for this pair SOL/USDT")


async def test_ticker_without_trades(api: Api) -> None:
    assert (await api.client.get("/api/v1/ticker")).json() == []
    assert error(await api.client.get("/api/v1/ticker/BTC-USDT")) == (
        404, "No trades found for this pair BTC/USDT")


async def test_ticker_symbol_forms(api: Api) -> None:
    seller, buyer = await traders(api)
    await trade(api, seller, buyer, "100", "0.01")
    expected = (await api.client.get("/api/v1/ticker/BTC-USDT")).json()
    for path in ("BTC/USDT", "btc-usdt", "%20btc%20/%20usdt", "btc%2Fusdt"):
        r = await api.client.get(f"/api/v1/ticker/{path}")
        assert (r.status_code, r.json()) == (200, expected), path


@pytest.mark.parametrize(("path", "message"), [
    ("BTC-USDT-X", "Invalid asset symbol, expected e.g `BTC-USDT`"),
    ("BTC/USDT/X", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("..%2F..", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("..%2F..%2F..%2Fetc%2Fpasswd", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("", "Symbol can not be empty"),
    ("X" * 65, "Invalid path parameter `symbol`: longer than 42 characters"),
])
async def test_ticker_symbol_errors(api: Api, path: str, message: str) -> None:
    assert error(await api.client.get(f"/api/v1/ticker/{path}")) == (400, message)


@pytest.mark.parametrize("path", ["BTC-XYZ", "BTC/XYZ", "%200%20/%200%20%20"])
async def test_the_ticker_of_an_unknown_pair_is_404(api: Api, path: str) -> None:
    """Well-formed but no such pair: no such ticker (the original's message; it said 400)."""
    assert error(await api.client.get(f"/api/v1/ticker/{path}")) == (
        404, "Invalid pair symbol")


@pytest.mark.parametrize(("last", "baseline", "pct"), [
    ("3", "2", "50"), ("1", "3", "-66.66666667"), ("2", "3", "-33.33333333"),
    ("100.000000005", "100", "0"),            # half-even: ...0|5 → 0
    ("100.000000015", "100", "0.00000002"),   # half-even: ...1|5 → 2
    ("99.999999995", "100", "0.00000000"),    # −0 is written as 0
])
async def test_change_pct_rounding(last: str, baseline: str, pct: str) -> None:
    got = change_pct(Decimal(last), Decimal(baseline))
    assert got == Decimal(pct)
    assert format(got, "f") == format(Decimal(pct).quantize(PCT_PLACES), "f")


# -- candles --------------------------------------------------------------------------------


async def candle_trades(api: Api) -> int:
    """Trades around minute boundaries; returns the first bucket's start (unix seconds)."""
    seller, buyer = await traders(api)
    start = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
    at = datetime.fromtimestamp(start, UTC)
    # placed before the 100 trade but later in time: OHLC follows time, not placement
    await trade(api, seller, buyer, "105", "0.02", at + timedelta(seconds=59.999999))
    await trade(api, seller, buyer, "100", "0.01", at)
    await trade(api, seller, buyer, "99", "0.03", at + timedelta(seconds=60))
    await api.limit(seller, "sell", "101", "0.01")
    await api.limit(seller, "sell", "102", "0.01")
    await api.limit(buyer, "buy", "102", "0.02")  # two trades, one timestamp
    await backdate(api, "BTC/USDT", 2, at + timedelta(seconds=125))
    return start


def ohlcv(candles: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(c["time"], *(Decimal(c[k]) for k in ("open", "high", "low", "close", "volume")))
            for c in candles]


async def test_candles_buckets_and_ohlc(api: Api) -> None:
    start = await candle_trades(api)
    r = await api.client.get("/api/v1/candles/BTC-USDT")  # default interval 1m
    assert r.status_code == 200, r.text
    assert ohlcv(r.json()) == [
        (start, 100, 105, 100, 105, Decimal("0.03")),
        (start + 60, 99, 99, 99, 99, Decimal("0.03")),
        (start + 120, 101, 102, 101, 102, Decimal("0.02"))]
    r = await api.client.get("/api/v1/candles/BTC-USDT", params={"limit": 2})
    assert [c["time"] for c in r.json()] == [start + 60, start + 120]
    for interval in ("5m", "15m", "1h"):
        r = await api.client.get("/api/v1/candles/btc-usdt", params={"interval": interval})
        assert ohlcv(r.json()) == [(start, 100, 105, 99, 102, Decimal("0.08"))], interval
    r = await api.client.get("/api/v1/candles/BTC-USDT", params={"interval": "1d"})
    assert ohlcv(r.json()) == [(start // 86400 * 86400, 100, 105, 99, 102, Decimal("0.08"))]


async def test_candles_read_in_pages(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny pages exercise the keyset paging (ties on created_at included)."""
    await candle_trades(api)
    whole = (await api.client.get("/api/v1/candles/BTC-USDT")).json()
    for size in (1, 2, 3):
        monkeypatch.setattr(db_market, "_CANDLE_PAGE", size)
        for limit in (1, 2, 3, 4):
            r = await api.client.get("/api/v1/candles/BTC-USDT", params={"limit": limit})
            assert r.json() == whole[-limit:], (size, limit)


async def test_candles_empty_and_errors(api: Api) -> None:
    r = await api.client.get("/api/v1/candles/SOL-USDT", params={"interval": "1d"})
    assert (r.status_code, r.json()) == (200, [])
    for query, message in (
            ("interval=2m", "Invalid query parameter `interval`: unknown value '2m', "
                            "expected one of 1m, 5m, 15m, 1h, 1d"),
            ("limit=0", "Invalid query parameter `limit`: must be between 1 and 1000"),
            ("limit=1001", "Invalid query parameter `limit`: must be between 1 and 1000")):
        r = await api.client.get(f"/api/v1/candles/BTC-USDT?{query}")
        assert error(r) == (400, message)
    assert error(await api.client.get("/api/v1/candles/BTC-XYZ")) == (
        400, "BTC/XYZ market not supported")
    assert error(await api.client.get("/api/v1/candles/BTC-USDT-X")) == (
        400, "Invalid asset symbol, expected e.g `BTC-USDT`")
    assert error(await api.client.get("/api/v1/candles/..%2F..")) == (404, "Not Found")
