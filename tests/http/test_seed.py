"""Startup order-book seeding (reference §8, API.md): the ladder around CoinGecko prices
(a local stub server here, never the internet), the fallback prices when the source is
unreachable, idempotence across restarts, and a rejected seed order not stopping the
rest."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from excentra.db.audit import audit
from excentra.db.orders import list_orders
from excentra.engine import OrderType, PairSpec, Side
from excentra.http.app import create_app
from excentra.pricing.coingecko import PriceError, fetch_usd_prices
from excentra.pricing.seed import LADDERS, SYSTEM_USER_ID, Ladder, ladder_levels
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

SYSTEM = SYSTEM_USER_ID
UNREACHABLE = "http://127.0.0.1:9"
"""The discard port: nothing listens, the connection is refused at once."""

STUB_PRICES = '{"bitcoin": {"usd": 64321.987}, "ethereum": {"usd": 3456.789}, ' \
              '"solana": {"usd": 142.5}, "tether": {"usd": 1.0}}'

D = Decimal
# The ladders from STUB_PRICES, worked by hand: bids round down, asks up, to 0.01.
# e.g. 64321.987 × 0.999 = 64257.665013 → 64257.66; × 1.001 = 64386.308987 → 64386.31
STUB_LADDERS = {
    "BTC/USDT": (
        [("64257.66", "0.1"), ("64193.34", "0.2"), ("64129.02", "0.3"), ("64064.69", "0.4"),
         ("64000.37", "0.5")],
        [("64386.31", "0.1"), ("64450.64", "0.2"), ("64514.96", "0.3"), ("64579.28", "0.4"),
         ("64643.60", "0.5")]),
    "ETH/USDT": (
        [("3453.33", "1.5"), ("3449.87", "3.0"), ("3446.41", "4.5"), ("3442.96", "6.0"),
         ("3439.50", "7.5")],
        [("3460.25", "1.5"), ("3463.71", "3.0"), ("3467.16", "4.5"), ("3470.62", "6.0"),
         ("3474.08", "7.5")]),
    "SOL/USDT": (
        [("142.21", "15"), ("141.93", "30"), ("141.64", "45"), ("141.36", "60"),
         ("141.07", "75"), ("140.79", "90"), ("140.50", "105"), ("140.22", "120")],
        [("142.79", "15"), ("143.07", "30"), ("143.36", "45"), ("143.64", "60"),
         ("143.93", "75"), ("144.21", "90"), ("144.50", "105"), ("144.78", "120")]),
}
# The reference's own example (P = 65000 for BTC) and the other fallbacks.
FALLBACK_LADDERS = {
    "BTC/USDT": (
        [("64935", "0.1"), ("64870", "0.2"), ("64805", "0.3"), ("64740", "0.4"),
         ("64675", "0.5")],
        [("65065", "0.1"), ("65130", "0.2"), ("65195", "0.3"), ("65260", "0.4"),
         ("65325", "0.5")]),
    "ETH/USDT": (
        [("3496.5", "1.5"), ("3493", "3"), ("3489.5", "4.5"), ("3486", "6"), ("3482.5", "7.5")],
        [("3503.5", "1.5"), ("3507", "3"), ("3510.5", "4.5"), ("3514", "6"), ("3517.5", "7.5")]),
    "SOL/USDT": (
        [("149.7", "15"), ("149.4", "30"), ("149.1", "45"), ("148.8", "60"), ("148.5", "75"),
         ("148.2", "90"), ("147.9", "105"), ("147.6", "120")],
        [("150.3", "15"), ("150.6", "30"), ("150.9", "45"), ("151.2", "60"), ("151.5", "75"),
         ("151.8", "90"), ("152.1", "105"), ("152.4", "120")]),
}


# -- a local price server ------------------------------------------------------------------


@dataclass
class PriceStub:
    """An HTTP server on a free loopback port answering every GET with ``body``."""

    body: str = STUB_PRICES
    status: int = 200
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def price_stub() -> Iterator[PriceStub]:
    stub = PriceStub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            stub.requests.append((parts.path, parse_qs(parts.query),
                                  self.headers.get("user-agent", "")))
            payload = stub.body.encode()
            self.send_response(stub.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def seeded_app(database_url: str, coingecko_url: str) -> Any:
    return create_app(settings_for(database_url, seed_book=True, coingecko_url=coingecko_url,
                                    price_timeout=2.0), passwords=FAST_PASSWORDS)


# -- what the seeding left ----------------------------------------------------------------


Ladders = dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]


def as_decimals(ladders: Ladders) -> dict[str, tuple[list[tuple[Decimal, Decimal]], ...]]:
    return {s: tuple([(D(p), D(q)) for p, q in side] for side in sides)
            for s, sides in ladders.items()}


async def books(api: Api) -> dict[str, tuple[list[tuple[Decimal, Decimal]], ...]]:
    """Every pair's book, bids best first then asks best first (the snapshot's order)."""
    out = {}
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        snap = await api.services.exchange.snapshot(symbol, depth=100)
        assert isinstance(snap, dict), snap
        out[symbol] = tuple([(D(lv["price"]), D(lv["quantity"])) for lv in snap[side]]
                            for side in ("bids", "asks"))
    return out


async def system_orders(api: Api) -> list[Any]:
    rows, total = await list_orders(api.services.db, uuid.UUID(SYSTEM),
                                    statuses=["open"], limit=1000, descending=False)
    assert total == len(rows)
    return rows


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_seeds_36_orders_at_the_ladder_of_the_stubbed_prices(
        database_url: str, price_stub: PriceStub) -> None:
    app = seeded_app(database_url, price_stub.url)
    async for api in running_api(app):
        assert await books(api) == as_decimals(STUB_LADDERS)
        rows = await system_orders(api)
        assert len(rows) == 36
        assert all(r["order_type"] == "limit" and r["client_order_id"] is None for r in rows)
        # bids before asks within each pair, in ladder order (nearest level first)
        btc = [(r["side"], r["price"]) for r in rows if r["symbol"] == "BTC/USDT"]
        assert btc == [("buy", D(p)) for p, _ in STUB_LADDERS["BTC/USDT"][0]] + \
            [("sell", D(p)) for p, _ in STUB_LADDERS["BTC/USDT"][1]]
        r = await api.client.get("/api/v1/orderbook/SOL-USDT", params={"levels": 100})
        assert r.status_code == 200, r.text
        assert [(D(lv["price"]), D(lv["quantity"])) for lv in r.json()["bids"]] == \
            as_decimals(STUB_LADDERS)["SOL/USDT"][0]
        assert await audit(api.services.db) == []  # holds match the seeded orders
    [(path, query, agent)] = price_stub.requests  # one request for every pair
    assert path == "/api/v3/simple/price"
    assert query == {"ids": ["bitcoin,ethereum,solana"], "vs_currencies": ["usd"]}
    assert agent == "Excentra-Exchange/1.0"


@pytest.mark.asyncio
async def test_unreachable_source_falls_back_to_reference_prices(database_url: str,
                                                                 caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="excentra")
    app = seeded_app(database_url, UNREACHABLE)
    async for api in running_api(app):
        assert await books(api) == as_decimals(FALLBACK_LADDERS)
        assert len(await system_orders(api)) == 36
    seeded = [r for r in caplog.records if r.getMessage() == "order book seeded"]
    assert sorted((r.pair, r.price_source, r.orders_placed) for r in seeded) == [  # type: ignore[attr-defined]
        ("BTC/USDT", "fallback", 10), ("ETH/USDT", "fallback", 10),
        ("SOL/USDT", "fallback", 16)]


@pytest.mark.asyncio
async def test_a_second_start_adds_no_orders(database_url: str, price_stub: PriceStub) -> None:
    async for api in running_api(seeded_app(database_url, price_stub.url)):
        first = [r["id"] for r in await system_orders(api)]
    price_stub.body = '{"bitcoin": {"usd": 70000}}'  # a new price would move the ladder
    async for api in running_api(seeded_app(database_url, price_stub.url)):
        assert [r["id"] for r in await system_orders(api)] == first
        assert await books(api) == as_decimals(STUB_LADDERS)  # rebuilt from the database
    assert len(price_stub.requests) == 1  # nothing left to seed: no price asked


@pytest.mark.asyncio
async def test_missing_price_falls_back_for_that_pair_only(
        database_url: str, price_stub: PriceStub) -> None:
    price_stub.body = '{"bitcoin": {"usd": 64321.987}, "ethereum": {"usd": "n/a"}}'
    async for api in running_api(seeded_app(database_url, price_stub.url)):
        got = await books(api)
    assert got["BTC/USDT"] == as_decimals(STUB_LADDERS)["BTC/USDT"]
    assert got["ETH/USDT"] == as_decimals(FALLBACK_LADDERS)["ETH/USDT"]
    assert got["SOL/USDT"] == as_decimals(FALLBACK_LADDERS)["SOL/USDT"]


@pytest.mark.asyncio
async def test_a_rejected_seed_order_is_logged_and_the_rest_placed(
        database_url: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="excentra")
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        seller, _ = await api.funded(BTC="0.05")
        # rests below the first fallback bid (64935): that bid would take it; seeding only
        # ever provides liquidity, so that one level is refused
        placed = await api.services.exchange.place_order(
            seller, "BTC/USDT", Side.SELL, OrderType.LIMIT, price=D(64900),
            quantity=D("0.05"))
        assert isinstance(placed, dict)
        assert placed["status"] == "open"
    async for api in running_api(seeded_app(database_url, UNREACHABLE)):
        bids, asks = (await books(api))["BTC/USDT"]
        assert len(await system_orders(api)) == 35
        assert bids == [(D(p), D(q)) for p, q in FALLBACK_LADDERS["BTC/USDT"][0][1:]]
        assert asks[0] == (D(64900), D("0.05"))  # the user's order, untouched
    [rejected] = [r for r in caplog.records if r.getMessage() == "seed order rejected"]
    assert (rejected.pair, rejected.side, D(rejected.price), rejected.code) == (  # type: ignore[attr-defined]
        "BTC/USDT", "buy", D(64935), "POST_ONLY_WOULD_TAKE")


# -- the pieces, without a database ---------------------------------------------------------


def test_ladder_rounds_bids_down_and_asks_up_on_a_coarse_grid() -> None:
    spec = PairSpec("X/USDT", 8, 6, D("0.5"), D("0.01"))
    levels = ladder_levels(D("100.3"), Ladder(D("0.01"), 2, D("0.333")), spec)
    assert [(lv.side, lv.price, lv.quantity) for lv in levels] == [
        (Side.BUY, D("99.0"), D("0.33")),    # 99.297 → 99.0
        (Side.BUY, D("98.0"), D("0.66")),    # 98.294 → 98.0
        (Side.SELL, D("101.5"), D("0.33")),  # 101.303 → 101.5
        (Side.SELL, D("102.5"), D("0.66")),  # 102.306 → 102.5
    ]
    assert LADDERS["SOL"] == Ladder(D("0.002"), 8, D(15))


@pytest.mark.asyncio
async def test_prices_are_read_exactly_and_bad_entries_dropped() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text='{"bitcoin": {"usd": 0.1}, "ethereum": {"usd": -3},'
                                        ' "solana": {"usd": NaN}, "x": {"usd": 1e400}}')

    prices = await fetch_usd_prices("http://prices.test/api/", ["solana", "bitcoin",
                                                                 "ethereum", "x"],
                                    timeout=1, transport=httpx.MockTransport(answer))
    assert prices == {"bitcoin": D("0.1")}
    assert str(prices["bitcoin"]) == "0.1"  # not 0.1000000000000000055511151231257827
    assert str(seen[0].url) == ("http://prices.test/api/simple/price"
                                "?ids=bitcoin%2Cethereum%2Csolana%2Cx&vs_currencies=usd")


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "body"), [(500, "{}"), (200, "not json"), (200, "[1]")])
async def test_a_failed_answer_is_a_price_error(status: int, body: str) -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(status, text=body))
    with pytest.raises(PriceError):
        await fetch_usd_prices("http://prices.test", ["bitcoin"], timeout=1,
                               transport=transport)
