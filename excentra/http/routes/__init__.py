"""All HTTP routes, grouped by area, in matching order (static paths before templated
ones: ``/trades/me`` before ``/trades/{symbol}``, ``/pairs/active`` before
``/pairs/{symbol}``)."""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute

from excentra.http.routes import (
    admin,
    assets,
    auth,
    balances,
    candles,
    custody,
    docs,
    health,
    orderbook,
    orders,
    pairs,
    ticker,
    trades,
    users,
)
from excentra.http.ws.endpoint import websocket_endpoint

ROUTES: list[BaseRoute] = [
    *health.routes, *docs.routes, *auth.routes, *users.routes, *balances.routes,
    *orders.routes, *trades.routes, *orderbook.routes, *ticker.routes, *candles.routes,
    *pairs.routes, *assets.routes, *admin.routes, *custody.routes,
    WebSocketRoute("/ws", websocket_endpoint),
]
