"""``/api/v1/ticker``: 24h statistics per pair (reference §1.7 and §5, API.md).

Served from the 24 h windows the WebSocket feed keeps from committed trades
(``excentra.market.ticker``), so REST and the ``ticker:`` channel never disagree; the
JSON is the channel's event without its ``type``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.http import fields as f
from excentra.http.errors import not_found
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import json
from excentra.http.services import Services, market_view
from excentra.http.symbols import FILTER_PATTERN, MAX_SYMBOL, path_symbol
from excentra.http.ws.hub import ticker_data
from excentra.market import TickerStats
from excentra.registry import PairInfo

API = "/api/v1"

SYMBOL = f.text_param("symbol", "Pair in hyphen form, e.g. BTC-USDT (BTC/USDT is accepted "
                                "too)", location="path", max_length=MAX_SYMBOL * 2,
                      route_rules={"pattern": FILTER_PATTERN})

TICKER = schema("TickerResponse", {
    "type": "object",
    "required": ["symbol", "last_price", "high_24h", "low_24h", "volume_24h",
                 "price_change_pct"],
    "properties": {
        "symbol": {"type": "string"},
        "last_price": {"type": "string", "description": "Price of the latest trade"},
        "high_24h": {"type": "string"}, "low_24h": {"type": "string"},
        "volume_24h": {"type": "string", "description": "Base units traded in 24 h"},
        "price_change_pct": {"type": "string",
                             "description": "Change against the last price before the "
                                            "24 h window (else the window's first), in "
                                            "percent, 8 decimal places"}}})


def ticker_json(symbol: str, stats: TickerStats) -> dict[str, Any]:
    data = ticker_data(symbol, stats)
    del data["type"]
    return data


def pair_ticker(services: Services, pair: PairInfo,
                now: float | None = None) -> dict[str, Any] | None:
    """The pair's ticker JSON, or ``None`` if it had no trade in the last 24 hours. From
    the 24 h window the WebSocket feed keeps from committed trades (the same numbers the
    ``ticker:`` channel sends)."""
    second = int(time.time() if now is None else now)
    found = market_view(services).ticker(pair.symbol, second)
    return None if found is None else ticker_json(pair.symbol, found)


def active_tickers(services: Services, now: float | None = None) -> list[dict[str, Any]]:
    """The tickers of every active pair that traded in the last 24 hours, by symbol."""
    pairs = sorted((p for p in services.catalog.pairs.values() if p.active),
                   key=lambda p: p.symbol)
    found = (pair_ticker(services, p, now) for p in pairs)
    return [t for t in found if t is not None]


@operation("get_all_tickers", "Market Data", "24h tickers of the active pairs that traded",
           responses={200: array_of(TICKER)})
async def get_tickers(request: Request) -> Response:
    return json(active_tickers(request.state.services))


@operation("get_ticker", "Market Data", "One pair's 24h ticker", params=[SYMBOL],
           rate_limited=True, responses={200: TICKER, 404: "Error"})
async def get_ticker(request: Request) -> Response:
    services: Services = request.state.services
    services.limiter.check(request, "ticker")
    symbol = path_symbol(SYMBOL.get(request))
    pair = services.catalog.active_pair(symbol)
    if pair is None:  # the original's message; 404 (it was 400): there is no such ticker
        raise not_found("Invalid pair symbol")
    found = pair_ticker(services, pair)
    if found is None:
        raise not_found(f"No trades found for this pair {symbol}")
    return json(found)


routes = [
    Route(f"{API}/ticker", get_tickers, methods=["GET"]),
    # ``path``: the original frontend also asks for /ticker/BTC/USDT (API.md accepts it)
    Route(f"{API}/ticker/{{symbol:path}}", get_ticker, methods=["GET"]),
]
