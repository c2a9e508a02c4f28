"""Pure-ASGI middleware: the request id (reused from ``x-request-id`` when it is sane,
else a fresh UUID) and the rate-limit headers a route's check left on the scope."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from excentra.actors.watermarks import EVERYTHING, READER
from excentra.http.ratelimit import RATE_HEADERS_KEY

log = logging.getLogger("excentra.http.access")

_MAX_ID = 200
REQUEST_ID_KEY = "excentra.request_id"
"""The request's id, a key of its ASGI scope (handlers: ``request.scope[REQUEST_ID_KEY]``)."""


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or str(uuid.uuid4())
        scope[REQUEST_ID_KEY] = request_id
        # A request reads what was acknowledged before it began, until it authenticates
        # as a user (watermarks.READER); set here, so that the caller's own context (a
        # test driving the app in its task) is the same afterwards.
        reader = READER.set(EVERYTHING)
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                for name, value in scope.get(RATE_HEADERS_KEY, {}).items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            READER.reset(reader)
            log.debug("request", extra={
                "request_id": request_id, "method": scope.get("method"),
                "path": scope.get("path"), "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2)})


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if 0 < len(text) <= _MAX_ID and text.isprintable() else None
    return None
