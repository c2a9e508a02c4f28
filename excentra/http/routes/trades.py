"""``/api/v1/trades``: a pair's recent trades (public) and your own trade history
(reference §1.5, API.md)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.db.database import Row
from excentra.db.market import recent_trades, user_trades
from excentra.engine.precision import EXACT
from excentra.http import fields as f
from excentra.http.auth import require_user
from excentra.http.errors import bad_request
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import dec, json, ts
from excentra.http.services import Services
from excentra.http.symbols import FILTER_PATTERN, HYPHEN_PATTERN, MAX_SYMBOL, path_symbol
from excentra.http.validate import pair_filter
from excentra.registry import PairInfo

API = "/api/v1"

SYMBOL = f.text_param("symbol", "Pair in hyphen form, e.g. BTC-USDT", location="path",
                      max_length=MAX_SYMBOL * 2, route_rules={"pattern": HYPHEN_PATTERN})
RECENT_LIMIT = f.int_param("limit", 20, 1, 10_000, "Number of trades (1..10000)")
PAIR_PARAM = f.text_param("pair", "Pair filter in hyphen form, e.g. BTC-USDT",
                          max_length=MAX_SYMBOL * 2, route_rules={"pattern": FILTER_PATTERN})

_SIDE = {"type": "string", "enum": ["buy", "sell"]}
TRADE = schema("TradeResponse", {
    "type": "object", "required": ["id", "symbol", "price", "quantity", "taker_side",
                                   "created_at"],
    "properties": {"id": {"type": "string", "format": "uuid"}, "symbol": {"type": "string"},
                   "price": {"type": "string"}, "quantity": {"type": "string"},
                   "taker_side": _SIDE,
                   "created_at": {"type": "string", "format": "date-time"}}})
USER_TRADE = schema("UserTradeResponse", {
    "type": "object", "required": ["id", "symbol", "side", "price", "quantity", "total",
                                   "created_at"],
    "properties": {"id": {"type": "string", "format": "uuid"}, "symbol": {"type": "string"},
                   "side": _SIDE, "price": {"type": "string"},
                   "quantity": {"type": "string"},
                   "total": {"type": "string", "description": "price × quantity, unrounded"},
                   "created_at": {"type": "string", "format": "date-time"}}})
USER_TRADE_PAGE = schema("PaginatedResponse_UserTradeResponse", {
    "type": "object", "required": ["data", "page", "limit", "total"],
    "properties": {"data": array_of(USER_TRADE), "page": {"type": "integer"},
                   "limit": {"type": "integer"}, "total": {"type": "integer"}}})


def market_pair(services: Services, text: str) -> PairInfo:
    """An active pair named by a path symbol; 400 ``{SYM} market not supported`` for an
    unknown or inactive one (the original's message for trades and the order book)."""
    symbol = path_symbol(text)
    pair = services.catalog.active_pair(symbol)
    if pair is None:
        raise bad_request(f"{symbol} market not supported")
    return pair


def trade_json(symbol: str, row: Row) -> dict[str, Any]:
    return {"id": str(row["id"]), "symbol": symbol, "price": dec(row["price"]),
            "quantity": dec(row["quantity"]), "taker_side": row["taker_side"],
            "created_at": ts(row["created_at"])}


def user_trade_json(row: Row) -> dict[str, Any]:
    return {"id": str(row["id"]), "symbol": row["symbol"], "side": row["side"],
            "price": dec(row["price"]), "quantity": dec(row["quantity"]),
            "total": dec(EXACT.multiply(row["price"], row["quantity"])),
            "created_at": ts(row["created_at"])}


@operation("get_recent_trades_for_a_pair", "Market Data", "A pair's latest trades, newest "
           "first", params=[SYMBOL, RECENT_LIMIT], rate_limited=True,
           responses={200: array_of(TRADE)})
async def get_recent_trades(request: Request) -> Response:
    services: Services = request.state.services
    limit = RECENT_LIMIT.get(request)  # a bad query is refused before it is counted
    services.limiter.check(request, "trades")
    pair = market_pair(services, SYMBOL.get(request))
    rows = await recent_trades(services.db, pair.id, limit)
    return json([trade_json(pair.symbol, r) for r in rows])


@operation("get_trade_history", "Trades", "Your trades, paginated", access="user",
           params=[PAIR_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: USER_TRADE_PAGE, 422: "Error"})
async def get_my_trades(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    page, limit = f.PAGE.get(request), f.LIMIT.get(request)
    descending = f.ORDER.get(request) == "desc"
    pair_id = pair_filter(services.catalog, PAIR_PARAM.get(request))
    rows, total = await user_trades(services.db, uuid.UUID(principal.user_id),
                                    pair_id=pair_id, page=page, limit=limit,
                                    descending=descending)
    return json({"data": [user_trade_json(r) for r in rows], "page": page, "limit": limit,
                 "total": total})




routes = [
    Route(f"{API}/trades/me", get_my_trades, methods=["GET"]),
    Route(f"{API}/trades/{{symbol}}", get_recent_trades, methods=["GET"]),
]
