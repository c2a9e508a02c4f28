"""The Starlette application: ``create_app(settings)``.

Lifespan: database → migrations → actors (the ``Exchange``, with its chain watcher when
``ETH_RPC_URL`` is set), then the in-memory account state and price seeding; shutdown in
reverse. Everything a handler needs hangs off ``request.state.services``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from excentra.actors.supervisor import Chain
from excentra.chain.node import Node
from excentra.chain.wallet import HDWallet, resolve_mnemonic
from excentra.db import DatabaseUnavailable
from excentra.exchange import Exchange
from excentra.http import errors
from excentra.http.auth import Passwords, Tokens
from excentra.http.config import Settings, resolve_secret
from excentra.http.metrics import Metrics
from excentra.http.metrics_middleware import MetricsMiddleware
from excentra.http.middleware import RequestIdMiddleware
from excentra.http.ratelimit import RateLimiter
from excentra.http.routes import ROUTES
from excentra.http.routes.auth import sweep_refresh_tokens
from excentra.http.services import Services
from excentra.http.ws.startup import start_ws

log = logging.getLogger("excentra.http")

Startup = Callable[[Services], Any]
"""An extra start step (awaited after the core is up); may return a stop coroutine fn."""


def create_app(settings: Settings | None = None, *, passwords: Passwords | None = None,
               extra_routes: Iterable[BaseRoute] = (),
               startups: Iterable[Startup] = (),
               chain_node: Callable[[], Node] | None = None,
               chain_auto_poll: bool = True) -> Starlette:
    """The exchange's ASGI app. ``passwords`` lets tests use cheap argon2 parameters;
    ``chain_node`` (how the watcher reaches its node, instead of ``ETH_RPC_URL``) and
    ``chain_auto_poll`` (off: it polls only when told) let them run an in-process chain."""
    settings = settings or Settings.from_env()
    steps = list(startups)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        chains = await _chains(settings, chain_node, chain_auto_poll)
        services = await _start(settings, passwords, chains)
        stops: list[Callable[[], Any]] = []
        try:
            for step in [*_default_steps(settings), *steps]:
                stop = await step(services)
                if stop is not None:
                    stops.append(stop)
            log.info("server ready", extra={"database": services.db.url.split("@")[-1]})
            yield {"services": services}
        finally:
            for stop in reversed(stops):
                with contextlib.suppress(Exception):
                    await stop()
            await services.exchange.stop()
            log.info("server stopped")

    return Starlette(
        routes=[*ROUTES, *extra_routes],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=list(settings.frontend_urls),
                       allow_credentials=True,
                       allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                       allow_headers=["content-type", "authorization", "x-request-id",
                                      "idempotency-key"],
                       expose_headers=["x-request-id", "retry-after", "x-ratelimit-limit",
                                       "x-ratelimit-remaining", "x-ratelimit-reset",
                                       "www-authenticate"]),
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware),
        ],
        exception_handlers={
            errors.ApiError: errors.api_error,
            HTTPException: errors.http_exception,
            DatabaseUnavailable: errors.dependency_unavailable,
            Exception: errors.server_error,
        },
        lifespan=lifespan,
    )


async def _chains(settings: Settings, node: Callable[[], Node] | None,
                  auto_poll: bool) -> list[Chain]:
    """The configured chain (none without ``ETH_RPC_URL``), with its wallet. The exchange
    leaves out, at its start, any asset of it that the asset registry does not list."""
    chain = settings.chain
    if not chain.enabled:
        return []
    phrase = await asyncio.to_thread(resolve_mnemonic, settings.wallet_mnemonic,
                                     settings.database_url)
    wallet = await asyncio.to_thread(HDWallet, phrase)  # PBKDF2: tens of milliseconds
    url = chain.rpc_url
    return [Chain(chain, wallet, node or (lambda: Node.connect(url)), auto_poll=auto_poll)]


async def _start(settings: Settings, passwords: Passwords | None,
                 chains: list[Chain]) -> Services:
    secret = await asyncio.to_thread(resolve_secret, settings)
    exchange = Exchange(settings.database_url or None, chains=chains,
                        max_pending=settings.max_pending_commands,
                        read_wait=settings.read_wait,
                        projector_paused=settings.projector_paused,
                        projector=settings.projector)
    await exchange.start()
    services: Services

    def live() -> dict[str, Any]:
        return {"ws_connections": services.counters.ws_connections,
                "uptime_seconds": services.counters.uptime_seconds,
                "mailboxes": exchange.mailbox_depths(),
                "recoveries": exchange.recoveries(),
                "journal_mean_batch": services.journal_mean_batch,
                "ws_delivered": services.hub.delivered if services.hub else 0,
                "ws_dropped": services.hub.dropped_peers if services.hub else 0,
                "chains": dict(exchange.chain_status),
                "pending": (exchange.pending_commands(), exchange.max_pending, exchange.shed),
                "log": exchange.watermarks.report()}

    services = Services(settings, exchange, Tokens(secret), passwords or Passwords(),
                        RateLimiter(settings.rate_limits, settings.trusted_proxies),
                        Metrics(live))
    try:
        await services.suspended.load(services.db)
        await services.roles.load(services.db)
    except BaseException:
        await exchange.stop()
        raise
    return services


def _default_steps(settings: Settings) -> list[Startup]:
    steps: list[Startup] = [sweep_refresh_tokens, start_ws]  # the hub before any order
    if settings.seed_book:
        from excentra.pricing.seed import seed_books  # noqa: PLC0415 (httpx when seeding)

        steps.append(seed_books)
    return steps
