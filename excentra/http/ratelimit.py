"""Fixed-window rate limits per (route, identity), as the original counts them, with the
standard headers it lacked.

A route's limit is checked inside its handler (after authentication and body parsing,
before semantic validation: the original's order). The headers are stored on the request
scope and added to whatever response the request ends with by the ASGI middleware, so a
400 after a passed check carries them too.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

from starlette.requests import HTTPConnection, Request

from excentra.http.errors import ApiError

RATE_HEADERS_KEY = "excentra.rate_limit_headers"
"""Where a passed or failed check leaves its headers: a key of the request's own ASGI scope
(not ``scope["state"]``, which a server may share between requests)."""


@dataclass(frozen=True, slots=True)
class Policy:
    limit: int
    """Requests allowed per window."""
    window: float
    """Window length in seconds."""


DEFAULT_POLICIES: Mapping[str, Policy] = {
    "login": Policy(10, 15 * 60),
    "register": Policy(5, 60 * 60),
    "forgot_password": Policy(5, 60 * 60),
    "reset_password": Policy(5, 15 * 60),
    "orderbook": Policy(120, 60),
    "ticker": Policy(120, 60),
    "trades": Policy(120, 60),
    "candles": Policy(120, 60),
    "orders": Policy(60, 60),
    "deposit": Policy(60, 60 * 60),
    "withdraw": Policy(60, 60 * 60),
}
"""The original's policies (reference §1.13), by route name; ``candles`` (our addition)
is limited like the other public market reads."""

MAX_WINDOWS = 100_000
"""Open windows kept per route (the original never evicted: unbounded). Past it the oldest
open window is forgotten: its identity starts a fresh count (the price of a bound, paid
only when more than this many identities are counted within one window)."""


@dataclass(slots=True)
class _Window:
    opened: float
    count: int


class RateLimiter:
    """In memory, per process. Not thread-safe: used from the event loop only.

    Memory: per route, one window per identity seen within the route's window, at most
    ``max_windows``. Each route's windows are kept in the order they opened (a window that
    reopens moves to the end) and all last the route's one period, so the expired ones are
    always at the front and are dropped from there as new ones open: O(1) amortised.
    """

    def __init__(self, policies: Mapping[str, Policy],
                 trusted_proxies: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                 clock: Callable[[], float] = time.monotonic,
                 max_windows: int = MAX_WINDOWS) -> None:
        self.policies = dict(policies)
        self.trusted = tuple(trusted_proxies)
        self.clock = clock
        self.max_windows = max_windows
        self._windows: dict[str, dict[str, _Window]] = {name: {} for name in self.policies}

    def sizes(self) -> dict[str, int]:
        """Open windows kept per route (each at most ``max_windows``)."""
        return {name: len(windows) for name, windows in self._windows.items()}

    def check(self, request: Request, route: str, identity: str | None = None) -> None:
        """Count one request of ``identity`` (default: the client IP) on ``route``.

        Raises:
            ApiError: 429 once the window's limit is reached.
        """
        policy = self.policies.get(route)
        if policy is None:
            return
        who = identity if identity is not None else self.client_ip(request)
        now = self.clock()
        windows = self._windows[route]
        window = windows.get(who)
        if window is None or now - window.opened >= policy.window:
            window = self._open(windows, who, now, policy.window)
        reset = max(0.0, policy.window - (now - window.opened))
        allowed = window.count < policy.limit
        if allowed:
            window.count += 1
        headers = {
            "X-RateLimit-Limit": str(policy.limit),
            "X-RateLimit-Remaining": str(policy.limit - window.count),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        request.scope[RATE_HEADERS_KEY] = headers
        if not allowed:
            raise ApiError(429, f"rate limit exceeded, try again after: {int(reset // 60)} mins",
                           {**headers, "Retry-After": str(max(1, math.ceil(reset)))})

    def client_ip(self, request: HTTPConnection) -> str:
        """The peer address; ``X-Forwarded-For``'s first entry only from a trusted proxy."""
        peer = request.client.host if request.client else ""
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and self._trusted(peer):
            first = forwarded.split(",", 1)[0].strip()
            if first:
                return first
        return peer

    def _trusted(self, peer: str) -> bool:
        if not self.trusted:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def _open(self, windows: dict[str, _Window], who: str, now: float,
              period: float) -> _Window:
        """A fresh window for ``who``, at the end of the route's order."""
        windows.pop(who, None)
        for oldest in list(islice(windows, 2)):  # drop expired ones from the front
            if now - windows[oldest].opened < period:
                break
            del windows[oldest]
        while len(windows) >= self.max_windows:
            del windows[next(iter(windows))]
        window = windows[who] = _Window(now, 0)
        return window
