"""What route handlers reach through ``request.state.services``: built by the lifespan,
one per app."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from excentra.db import Database
from excentra.db.accounts import suspended_users, user_roles
from excentra.exchange import Exchange
from excentra.http.auth import Passwords, Principal, Tokens
from excentra.http.config import Settings
from excentra.http.metrics import Metrics
from excentra.http.ratelimit import RateLimiter
from excentra.http.sessions import RefreshGrace
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


class UserRoles:
    """Every user's current role, in memory: every authenticated request checks it (the
    token's ``role`` claim alone kept a demoted admin's rights until the token expired),
    so it must not cost a query. Like ``SuspendedUsers``: loaded at start (one row per
    user), then kept by this process.

    What keeps it: the admin role route (with the row); every access token issued
    (``Tokens.issued``: register adds the new user, login and refresh record the role just
    read from the database); any read of the row (``GET /users/me``, the ``/admin`` routes,
    which read the caller's role from the database on each call, ``require_admin_now``).

    Changes made by another process (``excentra users promote``, a row deleted with SQL)
    are not pushed here. They are seen at once by the ``/admin`` routes (rare, so one
    query each is cheap) and, through the map they correct, by every route after that;
    otherwise at the user's next login or refresh, so within one access-token lifetime
    (15 min), what the claim alone gave before. No periodic re-read: it would cost a
    query per user per period to close a window that only the operator can open.

    A user in no map entry gets 401 (a token for a user that no longer exists). The role
    a request acts with is the lesser of the token's claim and the current role: a
    demotion counts at once, a promotion waits for the next token (login or refresh),
    which keeps the claim's meaning for promotions (reference §1.10) and is safe.
    Memory: one entry per user (a uuid string; role strings are shared).
    """

    LEAST = "user"
    """The role of a token whose claim and current role disagree (no privilege)."""

    def __init__(self) -> None:
        self._roles: dict[str, str] = {}

    async def load(self, db: Database) -> None:
        self._roles = {user_id: sys.intern(role)
                       for user_id, role in (await user_roles(db)).items()}

    def get(self, user_id: str | uuid.UUID) -> str | None:
        return self._roles.get(str(user_id))

    def set(self, user_id: str | uuid.UUID, role: str | None) -> None:
        """The user's role as the database has it; ``None``: there is no such user."""
        if role is None:
            self._roles.pop(str(user_id), None)
        else:
            self._roles[str(user_id)] = sys.intern(role)

    def current(self, claimed: Principal) -> Principal | None:
        """The token's principal acting with its current role, or ``None`` if the user
        does not exist."""
        role = self._roles.get(claimed.user_id)
        if role is None:
            return None
        if role == claimed.role:
            return claimed
        return Principal(claimed.user_id, self.LEAST)


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
    roles: UserRoles = field(default_factory=UserRoles)
    counters: Counters = field(default_factory=Counters)
    ws_per_ip: dict[str, int] = field(default_factory=dict)
    refresh_grace: RefreshGrace = field(init=False)
    """Rotations a repeated refresh may share (``settings.refresh_grace_seconds``)."""
    """Open WebSocket connections per client address (``ws_max_connections_per_ip``)."""
    hub: Hub | None = None
    """The WebSocket hub (set by the market-data start step)."""
    market: MarketView | None = None
    """What is committed of the market: books, tickers (set by the same step)."""
    journal_mean_batch: float = 0.0
    """Commands per journal commit, as last read by ``/health``."""
    decoy_hash: str | None = None
    """A password hash verified for unknown e-mails (login takes as long either way)."""

    def __post_init__(self) -> None:
        self.tokens.issued.append(self.roles.set)
        self.refresh_grace = RefreshGrace(self.settings.refresh_grace_seconds)

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
