"""``GET /api/v1/orderbook/{symbol}``: the book's top levels, aggregated per price
(reference §1.6, API.md). Read from the WebSocket feed's mirror of the book: committed
state only, and the same ``seq`` as the ``order_book`` events, so a client can line the
snapshot up with the stream (the reply to an order is sent after the mirror applied it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.http import fields as f
from excentra.http.errors import bad_request
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import json
from excentra.http.routes.trades import SYMBOL, market_pair
from excentra.http.services import Services, market_view

API = "/api/v1"

LEVELS = f.int_param("levels", 20, 0, 1000, "Price levels per side (0..1000; 0 → empty)")

LEVEL = schema("PriceLevelResponse", {
    "type": "object", "required": ["price", "quantity"],
    "properties": {"price": {"type": "string"},
                   "quantity": {"type": "string",
                                "description": "Remaining quantity of all orders at the "
                                               "price"}}})
BOOK = schema("OrderBookResponse", {
    "type": "object", "required": ["symbol", "bids", "asks"],
    "properties": {"symbol": {"type": "string"},
                   "bids": {**array_of(LEVEL), "description": "Highest price first"},
                   "asks": {**array_of(LEVEL), "description": "Lowest price first"},
                   "seq": {"type": "integer",
                           "description": "The book's change number (as in WebSocket "
                                          "order_book events); an addition"}}})


@operation("get_orderbook", "Market Data", "The order book's top levels per side",
           params=[SYMBOL, LEVELS], rate_limited=True, responses={200: BOOK})
async def get_orderbook(request: Request) -> Response:
    services: Services = request.state.services
    levels = LEVELS.get(request)
    services.limiter.check(request, "orderbook")
    pair = market_pair(services, SYMBOL.get(request))
    mirror = market_view(services).book(pair.symbol)
    if mirror is None:
        raise bad_request(f"{pair.symbol} market not supported")
    return json({"symbol": pair.symbol, **mirror.snapshot(levels), "seq": mirror.seq})


routes = [
    Route(f"{API}/orderbook/{{symbol}}", get_orderbook, methods=["GET"]),
]
