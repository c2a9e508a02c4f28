"""What route handlers reach through ``request.state.services``: built by the lifespan,
one per app."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from excentra.db import Database
from excentra.db.accounts import suspended_users
from excentra.exchange import Exchange
from excentra.http.auth import Passwords, Tokens
from excentra.http.config import Settings
from excentra.http.metrics import Metrics
from excentra.http.ratelimit import RateLimiter
from excentra.registry import Registry

if TYPE_CHECKING:
    from excentra.http.ws.hub import Hub
    from excentra.market.view import MarketView


class SuspendedUsers:
    """The suspended user ids, in memory: every state-changing request checks it, so it
    must not cost a query. Loaded at start; the admin route changes it together with the
    database row (one server process owns the accounts)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self.listeners: list[Callable[[str], None]] = []
        """Told the id of every user being suspended (e.g. to end its WS subscriptions)."""

    async def load(self, db: Database) -> None:
        self._ids = await suspended_users(db)

    def contains(self, user_id: str | uuid.UUID) -> bool:
        return str(user_id) in self._ids

    def set(self, user_id: str | uuid.UUID, suspended: bool) -> None:
        if suspended:
            self._ids.add(str(user_id))
            for listener in self.listeners:
                listener(str(user_id))
        else:
            self._ids.discard(str(user_id))


@dataclass
class Counters:
    """In-memory figures the original reports (reset on restart)."""

    started_at: float = field(default_factory=time.monotonic)
    orders_processed: int = 0
    ws_connections: int = 0

    @property
    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self.started_at)


@dataclass
class Services:
    settings: Settings
    exchange: Exchange
    tokens: Tokens
    passwords: Passwords
    limiter: RateLimiter
    metrics: Metrics
    suspended: SuspendedUsers = field(default_factory=SuspendedUsers)
    counters: Counters = field(default_factory=Counters)
    hub: Hub | None = None
    """The WebSocket hub (set by the market-data start step)."""
    market: MarketView | None = None
    """What is committed of the market: books, tickers (set by the same step)."""
    journal_mean_batch: float = 0.0
    """Commands per journal commit, as last read by ``/health``."""
    decoy_hash: str | None = None
    """A password hash verified for unknown e-mails (login takes as long either way)."""

    @property
    def catalog(self) -> Registry:
        """The exchange's assets and pairs (one registry, owned by the exchange)."""
        return self.exchange.registry

    @property
    def db(self) -> Database:
        return self.exchange.db


def market_view(services: Services) -> MarketView:
    view = services.market
    assert view is not None, "the market-data side is not started"
    return view
