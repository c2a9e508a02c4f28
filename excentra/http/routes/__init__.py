"""All HTTP routes, grouped by area, in matching order (static paths before templated
ones: ``/trades/me`` before ``/trades/{symbol}``, ``/pairs/active`` before
``/pairs/{symbol}``).

A static path owns its methods: ``PATCH /pairs/active`` is a 405 (``Allow: GET``), not a
``PATCH /pairs/{symbol}`` of a pair named "active". Starlette would hand a method the
static path lacks to the first templated route that serves it, so each shadowed static
path gets a guard right after its own routes (:func:`guarded`)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

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


class _MethodNotAllowed:
    """405 for any request (``errors.http_exception`` writes ``Allow`` with the static
    path's own methods). An ASGI app, not a request function: Starlette gives a function
    route ``GET`` alone, and this one must match every method."""

    async def __call__(self, _scope: Scope, _receive: Receive, _send: Send) -> None:
        raise HTTPException(405)


def _shadowed(route: Route, routes: Sequence[BaseRoute]) -> bool:
    """``route`` is static and some templated route also matches its path."""
    return not route.param_convertors and any(
        isinstance(other, Route) and other.param_convertors
        and other.path_regex.match(route.path) for other in routes)


def guarded(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with a guard after the last route of each shadowed static path: it
    matches every other method there and answers 405."""
    last: dict[str, int] = {}
    for i, route in enumerate(routes):
        if isinstance(route, Route) and _shadowed(route, routes):
            last[route.path] = i
    out: list[BaseRoute] = []
    for i, route in enumerate(routes):
        out.append(route)
        if isinstance(route, Route) and last.get(route.path) == i:
            out.append(Route(route.path, _MethodNotAllowed(), methods=None,
                             include_in_schema=False))
    return out


ROUTES: list[BaseRoute] = guarded([
    *health.routes, *docs.routes, *auth.routes, *users.routes, *balances.routes,
    *orders.routes, *trades.routes, *orderbook.routes, *ticker.routes, *candles.routes,
    *pairs.routes, *assets.routes, *admin.routes, *custody.routes,
    WebSocketRoute("/ws", websocket_endpoint),
])
