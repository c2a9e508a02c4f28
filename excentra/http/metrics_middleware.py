"""Pure-ASGI middleware counting HTTP requests and their latency into the app's metrics.

Requests are labelled by route *template* (``GET /api/v1/orders/{order_id}``), never by
the raw path: ids in paths would give every request its own time series. A request no
route matched is ``unmatched``.
"""

from __future__ import annotations

import time

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            _record(scope, status, time.perf_counter() - started)


def route_label(scope: Scope) -> str:
    """The matched route's method and path template (the router leaves it on the scope)."""
    route = scope.get("route")
    if not isinstance(route, Route):
        return UNMATCHED
    method = scope.get("method", "")
    # Only a method the route serves goes into the label: a 405 for an invented method
    # must not mint a new series.
    return f"{method} {route.path}" if method in (route.methods or ()) else route.path


def _record(scope: Scope, status: int, seconds: float) -> None:
    services = scope.get("state", {}).get("services")
    if services is None:  # the lifespan has not started (or failed): nothing to count into
        return
    label = route_label(scope)
    services.metrics.requests.labels(label, str(status)).inc()
    services.metrics.latency.labels(label).observe(seconds)
