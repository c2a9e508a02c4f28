"""``GET /api/v1/candles/{symbol}``: OHLCV candles built from trades (an addition; API.md
"Pinned details"). The buckets are the ones the original frontend computed client-side:
``floor(unix_seconds / interval) × interval``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.db.market import Candle, candles
from excentra.http import fields as f
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import dec, json
from excentra.http.routes.trades import SYMBOL, market_pair
from excentra.http.services import Services

API = "/api/v1"

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
"""Interval name → bucket length in seconds."""

INTERVAL = f.choice_param("interval", tuple(INTERVALS), "1m", "Bucket length")
LIMIT = f.int_param("limit", 100, 1, 1000, "Most recent buckets with trades (1..1000)")

CANDLE = schema("Candle", {
    "type": "object", "required": ["time", "open", "high", "low", "close", "volume"],
    "properties": {"time": {"type": "integer", "description": "Bucket start, unix seconds"},
                   "open": {"type": "string"}, "high": {"type": "string"},
                   "low": {"type": "string"}, "close": {"type": "string"},
                   "volume": {"type": "string", "description": "Base units traded"}}})


def candle_json(c: Candle) -> dict[str, Any]:
    return {"time": c.time, "open": dec(c.open), "high": dec(c.high), "low": dec(c.low),
            "close": dec(c.close), "volume": dec(c.volume)}


@operation("get_candles", "Market Data", "OHLCV candles of a pair, oldest first (the most "
           "recent buckets that had trades)", params=[SYMBOL, INTERVAL, LIMIT],
           rate_limited=True, responses={200: array_of(CANDLE)})
async def get_candles(request: Request) -> Response:
    services: Services = request.state.services
    interval, limit = INTERVALS[INTERVAL.get(request)], LIMIT.get(request)
    # Limited like the other public market reads: a long-interval query reads every trade
    # of the buckets it returns (candles are computed from the trades table).
    services.limiter.check(request, "candles")
    pair = market_pair(services, SYMBOL.get(request))
    found = await candles(services.db, pair.id, interval, limit)
    return json([candle_json(c) for c in found])


routes = [
    Route(f"{API}/candles/{{symbol}}", get_candles, methods=["GET"]),
]
